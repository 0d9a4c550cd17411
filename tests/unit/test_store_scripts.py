"""The Lua scripts take every key name from Python: ``store/keys.py`` is the one place names are spelled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vmpooler.states import VMState
from vmpooler.store import keys

#: every script, those of its subfolders (shared Lua) too
SCRIPTS = sorted((Path(keys.__file__).parent / "scripts").rglob("*.lua"))
#: a Lua string literal, single- or double-quoted, on one line
_LUA_STRING = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def _code(source: str) -> str:
    """The script without its ``--`` comments (they may name keys to explain them)."""
    return "\n".join(line.split("--", 1)[0] for line in source.splitlines())


def test_the_scripts_are_found() -> None:
    assert len(SCRIPTS) >= 10 and any(p.name == "counts.lua" for p in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_script_spells_a_key_name(script: Path) -> None:
    source = script.read_text("utf-8")
    assert keys.PREFIX not in source
    # the separator of a composed name ('__' as in vmpooler__ready__<pool>) is a key name half-spelled
    assert [s for s in _LUA_STRING.findall(_code(source)) if "__" in s] == []


def test_the_prefixes_scripts_append_names_to_give_the_names_keys_gives() -> None:
    # checkout.lua and pool_view.lua append a VM's name to VM_PREFIX, counts.lua a pool's to a state's prefix
    assert keys.vm("vm-1") == keys.VM_PREFIX + "vm-1"
    for state in VMState:
        assert keys.state_set(state, "pool-a") == keys.state_set_prefix(state) + "pool-a"
