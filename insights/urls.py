from django.urls import path

from insights import views

app_name = "insights"
urlpatterns = [
    path("", views.insights, name="index"),
    path("endpoints/<int:pk>/", views.endpoint_insights, name="endpoint"),
    path("endpoints/<int:pk>/metrics/", views.endpoint_metrics, name="metrics"),
    path("endpoints/<int:pk>/cost/", views.endpoint_cost, name="cost"),
    path("endpoints/<int:pk>/records/", views.record_list, name="records"),
    path("endpoints/<int:pk>/records/download/", views.download_records, name="download"),
    path("endpoints/<int:pk>/records/<int:record_pk>/", views.record_detail, name="record"),
    path("endpoints/<int:pk>/load-tests/", views.start_load_test, name="start_load_test"),
    path("load-tests/<int:run_pk>/", views.load_test_detail, name="load_test"),
    path("load-tests/<int:run_pk>/cancel/", views.cancel_load_test, name="cancel_load_test"),
]
