from django.urls import path

from playground import views

app_name = "playground"
urlpatterns = [
    path("", views.playground, name="index"),
    path("invoke/", views.invoke_endpoint, name="invoke"),
    path("stream/", views.stream, name="stream"),
    path("history/", views.history, name="history"),
    path("compare/", views.compare, name="compare"),
    path("compare/targets/", views.compare_targets, name="compare_targets"),
    path("invocations/<int:pk>/", views.invocation_detail, name="invocation"),
    path("invocations/<int:pk>/result/", views.invocation_result, name="result"),
    path("invocations/<int:pk>/body/<str:part>/", views.invocation_body, name="body"),
    path("invocations/<int:pk>/rerun/", views.rerun, name="rerun"),
    path("invocations/<int:pk>/pin/", views.pin, name="pin"),
    path("pins/<int:pk>/unpin/", views.unpin, name="unpin"),
]
