"""Errors carry their context, and the cause their count is recorded under."""

from __future__ import annotations

from vmpooler.errors import NotFound, PermanentProviderError, ProviderError, ProviderTimeout, ServiceUnavailable


def test_context_added_on_the_way_up_never_overwrites_what_the_raiser_knew() -> None:
    error = ProviderError("boom").with_context(vm="deb-1")
    error.with_context(pool="deb", vm="other", op="destroy_vm")
    assert (error.pool, error.vm, error.op) == ("deb", "deb-1", "destroy_vm")


def test_a_failed_calls_metric_key_is_the_originals_cause() -> None:
    assert ProviderError("x").metric_key == "provider"
    assert ProviderTimeout("x").with_context(op="create_vm").metric_key == "clone_failed"
    assert PermanentProviderError("x").with_context(op="create_vm").metric_key == "permanently_failed"
    assert PermanentProviderError("x").with_context(op="destroy_vm").metric_key == "destroy_failed"
    assert ProviderError("x").with_context(op="vm_ready").metric_key == "provider"


def test_an_api_errors_pool_is_its_context() -> None:
    assert ServiceUnavailable("full", pool="deb").pool == "deb"
    assert NotFound("no such VM").pool is None
