from django.apps import AppConfig


class ModelcardsConfig(AppConfig):
    name = "modelcards"

    def ready(self) -> None:
        from audit import audit
        from modelcards.models import CardModel, CardVersion, ModelCard, Publication, Transition

        audit.register(ModelCard)
        audit.register(CardModel)
        audit.register(CardVersion, exclude={"content"})  # the versions are the history
        audit.register(Transition)
        audit.register(Publication)
