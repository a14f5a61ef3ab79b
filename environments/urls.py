from django.urls import path

from environments import views

app_name = "environments"
urlpatterns = [
    path("", views.environment_list, name="list"),
    path("new/", views.environment_create, name="create"),
    path("<int:pk>/", views.environment_detail, name="detail"),
    path("<int:pk>/edit/", views.environment_update, name="update"),
    path("<int:pk>/test-connection/", views.test_connection, name="test_connection"),
]
