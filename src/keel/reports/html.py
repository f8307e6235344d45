"""keel's Jinja2 templates: one environment for every page keel renders.

The HTML reports (`keel drift --report`, `keel monitor --report`, templates under `report/`
here) and the web UI (`keel.web`, which adds its own folder in front) load their templates
through `environment`, with the same settings: autoescape on for every template and string,
so a column, model or file name is text wherever it is shown.
"""

from __future__ import annotations

from jinja2 import BaseLoader, ChoiceLoader, Environment, PackageLoader, select_autoescape

__all__ = ["environment"]


def environment(*loaders: BaseLoader) -> Environment:
    """An environment that finds templates in `loaders` first, then keel's shared ones
    (`report/page.html`, `report/parts.html`, ...)."""
    return Environment(
        loader=ChoiceLoader([*loaders, PackageLoader("keel.reports", "templates")]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
