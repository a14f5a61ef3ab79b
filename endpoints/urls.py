from django.urls import path

from endpoints import views

app_name = "endpoints"
urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("models/", views.model_list, name="model_list"),
]
