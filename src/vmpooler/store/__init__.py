"""The Redis data layer: key names, atomic Lua scripts, and the Store every other layer uses."""

from vmpooler.store.redis import Store

__all__ = ["Store"]
