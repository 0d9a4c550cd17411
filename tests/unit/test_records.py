"""VMRecord: the one reading and writing of a VM's record hash, tolerant of what others wrote."""

from __future__ import annotations

import math

import pytest

from vmpooler.store.records import LIFETIME_CEILING_HOURS, VMField, VMRecord, format_time

#: a VM's hash as the original vmpooler 3.9.1 wrote it (run.sh with sample.yaml, 2026-12-05): cloned by its
#: manager, checked out with a token, lifetime and a tag set by PUT /vm, a snapshot and a disk added
ORIGINAL = {
    "clone": "2026-12-05 18:26:44 +0000",
    "template": "conf-a",
    "pool": "conf-a",
    "domain": "example.com",
    "clone_time": "0.00",
    "ip": "127.0.0.1",
    "ready": "2026-12-05 18:26:51 +0000",
    "check": "2026-12-05 18:26:54 +0000",
    "checkout": "2026-12-05 18:27:48 +0000",
    "token:token": "eah7e2j806gvw0m46hn7zc99kv5pd5un",
    "token:user": "alice",
    "lifetime": "5",
    "tag:team": "qa",
    "snapshot:bdkma3nkk52dao1eadx9ieb5qz9hmd9e": "2026-12-05 18:27:49 +0000",
    "disk": "+8gb",
    "user_tagged": "true",
}


def test_a_record_the_original_wrote_reads_field_by_field() -> None:
    record = VMRecord.from_hash(ORIGINAL)
    assert (record.pool, record.template, record.domain, record.ip) == ("conf-a", "conf-a", "example.com", "127.0.0.1")
    assert record.clone_time == 0.0 and record.lifetime == 5 and record.user_tagged == "true"
    assert (record.user, record.token) == ("alice", "eah7e2j806gvw0m46hn7zc99kv5pd5un")
    assert (record.clone, record.ready, record.check) == (1_796_495_204.0, 1_796_495_211.0, 1_796_495_214.0)
    assert record.checkout == 1_796_495_268.0
    assert record.tags == {"team": "qa"} and record.disks == ("+8gb",)
    assert record.snapshots == {"bdkma3nkk52dao1eadx9ieb5qz9hmd9e": "2026-12-05 18:27:49 +0000"}
    assert record.other == {}  # every field the original writes has its attribute
    assert record.lifetime_end(24) == record.checkout + 5 * 3600


def test_a_hash_round_trips_through_the_record() -> None:
    assert VMRecord.from_hash(ORIGINAL).fields() == ORIGINAL
    # a time in another zone is the same instant, written back in UTC
    local = VMRecord.from_hash({**ORIGINAL, "checkout": "2026-12-05 19:27:48 +0100"})
    assert local.fields()["checkout"] == ORIGINAL["checkout"]


def test_a_record_round_trips_through_its_fields() -> None:
    record = VMRecord(
        pool="p", template="t", clone=1_700_000_000.0, clone_owner="m-1", clone_time=2.5, checkout=1_700_000_100.0,
        lifetime=0, token="abc", user="", disks=("+1gb",), expiry_warned="1700018100", tags={"a": "b"},
        snapshots={"s": "x"}, other={"disk_error": "no room"},
    )  # fmt: skip
    assert VMRecord.from_hash(record.fields()) == record
    # only what is set is written: a partial record is a partial update
    assert VMRecord(clone_error="timed out").fields() == {"clone_error": "timed out"}
    assert VMRecord(ready=0.0).fields() == {"ready": format_time(0.0)}
    assert VMRecord().fields() == {}
    assert VMRecord.from_hash({"disk": "+8gb:+16gb"}).disks == ("+8gb", "+16gb")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (VMField.CHECKOUT, "yesterday"),
        (VMField.CHECKOUT, "nan"),
        (VMField.CHECKOUT, "1e300"),
        (VMField.CHECKOUT, ""),
        (VMField.LIFETIME, "two"),
        (VMField.LIFETIME, "2.5"),
        (VMField.LIFETIME, ""),
        (VMField.CLONE_TIME, "inf"),
        (VMField.CLONE_TIME, "fast"),
    ],
)
def test_garbage_reads_as_missing(field: VMField, value: str) -> None:
    record = VMRecord.from_hash({**ORIGINAL, field: value})
    attribute = {VMField.CHECKOUT: "checkout", VMField.LIFETIME: "lifetime", VMField.CLONE_TIME: "clone_time"}[field]
    assert getattr(record, attribute) is None
    assert field not in record.fields()  # an unreadable value is not written back


def test_lifetimes_are_clamped_and_default() -> None:
    def lifetime(value: str) -> int | None:
        return VMRecord.from_hash({VMField.LIFETIME: value}).lifetime

    assert lifetime(" 7 ") == 7 and lifetime("-3") == 0 and lifetime("9" * 40) == LIFETIME_CEILING_HOURS
    assert VMRecord().lifetime_hours(12) == 12 and VMRecord(lifetime=0).lifetime_hours(12) == 0
    # no checkout time, or no limit: it never ends
    assert VMRecord(lifetime=3).lifetime_end(12) == math.inf
    assert VMRecord(checkout=100.0, lifetime=0).lifetime_end(12) == math.inf
    assert VMRecord(checkout=100.0).lifetime_end(1) == 3700.0


def test_the_field_names_are_the_originals() -> None:
    assert {f.value for f in VMField} >= {k for k in ORIGINAL if ":" not in k} | {"token:token", "token:user"}
    assert VMRecord.from_hash({"token:user": "bob"}).user == "bob"
