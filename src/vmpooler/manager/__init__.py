"""The pool manager: keeps every pool at its size, replaces failed VMs, destroys expired ones."""

from vmpooler.manager.loop import Manager

__all__ = ["Manager"]
