from django.urls import path

from endpoints import views, wizard

app_name = "endpoints"
urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("demo/", views.deploy_demo, name="deploy_demo"),
    path("<int:pk>/", views.endpoint_detail, name="detail"),
    path("<int:pk>/delete/", views.delete_endpoint, name="delete"),
    path("<int:pk>/logs/", views.endpoint_logs, name="logs"),
    path("<int:pk>/idle-rules/", views.set_idle_rules, name="idle_rules"),
    path("models/", views.model_list, name="model_list"),
    path("models/new/", views.model_create, name="model_create"),
    path("models/<int:pk>/", views.model_detail, name="model_detail"),
]

urlpatterns += wizard.urlpatterns
