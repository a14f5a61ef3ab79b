from django.urls import include, path

from portal import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("audit/", include("audit.urls")),
    path("environments/", include("environments.urls")),
    path("endpoints/", include("endpoints.urls")),
    path("model-cards/", include("modelcards.urls")),
    path("playground/", include("playground.urls")),
    path("insights/", include("insights.urls")),
    path("alerts/", include("alerts.urls")),
]

handler403 = "portal.views.forbidden"
