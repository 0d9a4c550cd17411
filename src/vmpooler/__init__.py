"""vmpooler: keeps pools of ready, running virtual machines and hands them out over a REST API."""

__version__ = "0.1.0"
__all__ = ["__version__"]
