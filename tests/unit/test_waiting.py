"""The shared wait helper: it returns what ended the wait, names what it awaited, and lets real errors through."""

from __future__ import annotations

import itertools

import pytest

from tests.support.waiting import until, until_sync


async def test_until_returns_the_value_that_ended_the_wait_and_how_many_checks_it_took() -> None:
    counter = itertools.count()

    async def third() -> int:
        return next(counter)

    waited = await until(third, "the third check", done=lambda n: n >= 2, pause=0)
    assert (waited.value, waited.checks) == (2, 3)


async def test_a_timeout_names_what_was_awaited_and_the_last_value_seen() -> None:
    async def never() -> dict[str, int]:
        return {"ready": 1}

    with pytest.raises(AssertionError, match=r"waiting for 2 ready VMs .*last seen: \{'ready': 1\}"):
        await until(never, "2 ready VMs", done=lambda c: c["ready"] == 2, timeout=0.05, pause=0.01)


async def test_an_unexpected_error_surfaces_at_once_instead_of_as_a_timeout() -> None:
    async def broken() -> bool:
        raise KeyError("a bug in the check")

    with pytest.raises(KeyError, match="a bug in the check"):
        await until(broken, "anything", timeout=30)


async def test_only_the_named_not_yet_errors_are_retried_and_the_last_one_is_reported() -> None:
    async def down() -> bool:
        raise ConnectionError("redis is down")

    with pytest.raises(AssertionError, match=r"last seen: ConnectionError\('redis is down'\)"):
        await until(down, "redis back", timeout=0.05, pause=0.01, retry_on=(ConnectionError,))


def test_the_sync_variant_waits_alike() -> None:
    seen = iter([None, "", "up"])
    assert until_sync(lambda: next(seen), "a non-empty reply", pause=0).value == "up"
    with pytest.raises(AssertionError, match="waiting for a miracle"):
        until_sync(lambda: False, "a miracle", timeout=0.02, pause=0.01)
