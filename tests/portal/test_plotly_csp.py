"""Plotly draws under our strict CSP only while includes/plotly.html matches the bundle."""

import re
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders

INCLUDE = Path(settings.BASE_DIR) / "templates" / "includes" / "plotly.html"


def test_the_style_guard_ids_in_the_include_are_the_ones_the_bundled_plotly_checks() -> None:
    bundle = Path(finders.find("vendor/plotly/plotly.min.js")).read_text(encoding="utf-8")
    ids = re.findall(r'id="([^"]+)"', INCLUDE.read_text(encoding="utf-8"))

    assert ids == [
        "plotly.js-style-global",
        "9f215cf04c5486422605d13261cb87401f4e7763b6296af81e98efbc0130da53",
    ]
    assert 'matches(".no-inline-styles")' in bundle
    assert all(
        f'"{element_id}"' in bundle or element_id.startswith("plotly.js-style-")
        for element_id in ids
    )
    assert '"plotly.js-style-"+' in bundle


def test_the_global_plotly_rules_are_served_as_a_static_file() -> None:
    css = Path(finders.find("vendor/plotly/plotly-global.css")).read_text(encoding="utf-8")

    assert ".js-plotly-plot .plotly [data-title]::after" in css
    assert ".plotly-notifier" in css
