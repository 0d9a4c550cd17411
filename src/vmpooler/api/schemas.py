"""The OpenAPI description of request and reply bodies (the routes parse bodies themselves, tolerantly)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorBody(BaseModel):
    """Every error reply: ``ok`` is false and ``error`` says what to do; some add the original's keys."""

    model_config = ConfigDict(extra="allow")

    ok: bool = False
    error: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    text = {
        400: "Bad input (malformed JSON, a value out of range)",
        401: "A token or basic-auth credentials are needed or were wrong",
        403: "Not yours, or more than the configured maximum",
        404: "No such pool, VM, token or request",
        405: "Switched off by configuration",
        409: "Already exists",
        408: "The request's head or body took too long to arrive",
        413: "Request body too large",
        415: "A body that is not JSON (Content-Type: application/json)",
        429: "Rate limit exceeded",
        503: "Not enough ready VMs, or Redis/LDAP unavailable",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}


COUNT = {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 100}, {"type": "string", "pattern": "^[0-9]+$"}]}

#: ``{"<pool or alias>": count}``
CHECKOUT_BODY = {
    "type": "object",
    "additionalProperties": COUNT,
    "minProperties": 1,
    "example": {"debian-12-x86_64": "2", "centos": 1},
}

#: ``{"lifetime": hours, "tags": {...}}``
MODIFY_BODY = {
    "type": "object",
    "properties": {
        "lifetime": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]+$"}]},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "example": {"lifetime": "2", "tags": {"team": "qa"}},
}

#: ``{"<pool>": value}`` for the run-time configuration routes
POOL_VALUES = {"type": "object", "additionalProperties": {"type": "string"}, "example": {"debian-12-x86_64": "3"}}

ONDEMAND_BODY = {
    "type": "object",
    "properties": {"request_id": {"type": "string"}},
    "additionalProperties": COUNT,
    "example": {"debian-12-x86_64": "2", "request_id": "build-1234"},
}


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body (read by the route from the raw bytes)."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}
