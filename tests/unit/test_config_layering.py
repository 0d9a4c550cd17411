"""The config package stands below the providers and the API: importing all of it loads neither."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import pkgutil, importlib, sys
import vmpooler.config
for module in pkgutil.iter_modules(vmpooler.config.__path__, "vmpooler.config."):
    importlib.import_module(module.name)
above = ("vmpooler.providers", "vmpooler.api", "vmpooler.validate")
print(" ".join(sorted(m for m in sys.modules if m.startswith(above))))
"""


def test_the_config_package_imports_no_provider_and_no_api() -> None:
    # a fresh interpreter: this test session has long since imported everything
    run = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True)
    assert run.stdout.split() == []
