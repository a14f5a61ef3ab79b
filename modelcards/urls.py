from django.urls import path

from modelcards import views

app_name = "modelcards"
urlpatterns = [path("", views.card_list, name="list")]
