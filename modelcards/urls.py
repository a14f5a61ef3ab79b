from django.urls import path

from modelcards import views

app_name = "modelcards"
urlpatterns = [
    path("", views.card_list, name="list"),
    path("new/", views.create_card, name="create"),
    path("import/", views.import_card, name="import"),
    path("<int:pk>/", views.card_detail, name="detail"),
    path("<int:pk>/view/", views.stakeholder_view, name="view"),
    path("<int:pk>/edit/<str:key>/", views.edit_section, name="edit"),
    path("<int:pk>/status/", views.change_status, name="status"),
    path("<int:pk>/models/", views.link_models, name="link_models"),
    path("<int:pk>/publish/", views.publish_card, name="publish"),
    path("<int:pk>/diff/", views.version_diff, name="diff"),
    path("<int:pk>/export/<str:format>/", views.export_card, name="export"),
]
