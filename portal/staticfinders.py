"""Serve plotly.js from the copy inside the plotly package, so no CDN and no committed copy."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATIC_PATH = "vendor/plotly/plotly.min.js"


class PlotlyFinder(BaseFinder):
    """Finds exactly one file, `vendor/plotly/plotly.min.js`, and nothing else of the package."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=PLOTLY_JS.parent)
        self.storage.prefix = str(Path(STATIC_PATH).parent)  # collectstatic copies it there

    def check(self, **kwargs: object) -> list:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: object) -> str | list[str]:
        if path == STATIC_PATH:
            return [str(PLOTLY_JS)] if find_all else str(PLOTLY_JS)
        return []

    def list(self, ignore_patterns: list[str] | None) -> "list[tuple[str, FileSystemStorage]]":
        return [("plotly.min.js", self.storage)]
