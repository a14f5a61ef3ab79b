from django.apps import AppConfig


class ModelcardsConfig(AppConfig):
    name = "modelcards"
