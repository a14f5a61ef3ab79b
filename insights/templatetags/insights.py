"""Template filters for insights pages."""

import json

from django import template

register = template.Library()


@register.filter
def as_json(value: object) -> str:
    """A chart's figure as JSON text for a data-figure attribute. Autoescaping makes it safe
    there. Not json_script: htmx drops every <script> from the fragments it swaps in
    (allowScriptTags is false), and the provider charts and load-test progress are fragments."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
