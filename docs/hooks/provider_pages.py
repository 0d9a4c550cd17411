"""MkDocs hook: lists every provider page there is (``docs/providers/*.md``) under "Providers" in the nav.

A provider's documentation joins the site by adding its one file, as its code joins the contract suite by
adding one module; the nav never names a page that does not exist, so ``mkdocs build --strict`` passes
whichever provider pages are written yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SECTION = "Providers"
INDEX = "providers/index.md"


def on_config(config: Any) -> Any:
    pages = sorted(Path(config["docs_dir"]).glob("providers/*.md"))
    found = [f"providers/{page.name}" for page in pages if f"providers/{page.name}" != INDEX]
    for item in config["nav"] or []:
        if isinstance(item, dict) and isinstance(item.get(SECTION), list):
            listed = {entry if isinstance(entry, str) else next(iter(entry.values())) for entry in item[SECTION]}
            item[SECTION] += [page for page in found if page not in listed]
    return config
