"""The FIGURES a chaos run measured: recorded by the tests, printed as a table, kept as JSON for the docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIGURES_FILE = "chaos-figures.json"
TABLE = pytest.StashKey[dict[str, object]]()


class Figures:
    """The measured numbers of one run, by name (``<test>.<what>``), in the order they were recorded."""

    def __init__(self, table: dict[str, object]) -> None:
        self.table = table

    def record(self, name: str, value: object) -> None:
        self.table[name] = round(value, 3) if isinstance(value, float) else value


def report(table: dict[str, object], terminal: pytest.TerminalReporter, cache_dir: Path) -> None:
    """Print ``table`` as a section of the terminal summary and write it to ``cache_dir``/FIGURES_FILE."""
    terminal.section("chaos figures")
    width = max(len(name) for name in table)
    for name, value in table.items():
        terminal.write_line(f"{name:<{width}}  {value}")
    cache_dir.mkdir(exist_ok=True)
    (cache_dir / FIGURES_FILE).write_text(json.dumps(table, indent=1) + "\n")
    terminal.write_line(f"(written to {cache_dir / FIGURES_FILE})")
