"""The REST API: one FastAPI app serving every API version from one service layer."""

from vmpooler.api.app import create_app

__all__ = ["create_app"]
