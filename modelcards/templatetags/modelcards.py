"""Template helpers: a card's Markdown made safe, and the cards of a model or an endpoint."""

from django import template
from django.utils.safestring import SafeString

from endpoints.models import Endpoint, RegisteredModel
from modelcards.models import CardModel, ModelCard
from modelcards.render import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    """`{{ text|markdown }}`: rendered, then sanitised; wrap it in an hx-disable element."""
    return render_markdown(text)


@register.simple_tag
def cards_for(subject: RegisteredModel | Endpoint) -> list[dict]:
    """Each model of `subject` (a model, or an endpoint's models) with the cards describing it,
    for templates/modelcards/_card_badge.html."""
    if isinstance(subject, Endpoint):
        ids = [variant.get("model_id") for variant in subject.spec.get("variants", [])]
        models = list(RegisteredModel.objects.filter(pk__in=[i for i in ids if i]))
    else:
        models = [subject]
    links = CardModel.objects.filter(model__in=models).select_related("card")
    cards: dict[int, list[ModelCard]] = {}
    for link in links.order_by("card__name"):
        cards.setdefault(link.model_id, []).append(link.card)
    approved = set(
        ModelCard.objects.approved()
        .filter(pk__in=[link.card_id for link in links])
        .values_list("pk", flat=True)
    )
    return [
        {
            "model": model,
            "cards": [
                {"card": card, "deployable": card.pk in approved}
                for card in cards.get(model.pk, [])
            ],
        }
        for model in models
    ]
