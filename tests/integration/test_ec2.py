"""The EC2 provider against moto_server: a manager filling a pool, disks and snapshots, bad input,
a restarted endpoint, throttling and refused credentials, duplicates and leaked instances."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from tests.support.fixtures.moto import MotoServer
from tests.support.pools import run_until, settings_with, settle
from tests.support.servers import ApiThread
from vmpooler.domain import PoolTarget
from vmpooler.errors import NotSupported, PermanentProviderError, ProviderError
from vmpooler.manager.loop import Manager
from vmpooler.providers.ec2 import EC2Options, EC2Provider
from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store import keys
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store

UNKNOWN_AMI = "ami-0123456789abcdef0"


def _ec2(server: MotoServer, **options: Any) -> EC2Provider:
    return EC2Provider("ec2", EC2Options.model_validate(server.provider_options(**options)))


def _pool(server: MotoServer, **provider_options: Any) -> PoolTarget:
    return PoolTarget(f"ec2-{uuid.uuid4().hex[:8]}", server.default_ami, provider_options)


def _manager(store: Store, provider: EC2Provider, pool: PoolTarget, size: int) -> Manager:
    settings = settings_with([{"name": pool.name, "template": pool.template, "size": size, "provider": "ec2"}])
    return Manager(settings, store, {"ec2": provider}, call_timeout=10, ready_poll_interval=0.02)


def _instances(server: MotoServer, pool: str, states: tuple[str, ...] = ("pending", "running")) -> list[dict[str, Any]]:
    """The pool's instances as EC2 reports them, read without the provider."""
    filters = [{"Name": "tag:vmpooler_pool", "Values": [pool]}, {"Name": "instance-state-name", "Values": states}]
    reservations = server.client().describe_instances(Filters=filters)["Reservations"]
    return [instance for reservation in reservations for instance in reservation["Instances"]]


def _name(instance: dict[str, Any]) -> str:
    return str(next(tag["Value"] for tag in instance["Tags"] if tag["Key"] == "vmpooler_hostname"))


def _count_requests(provider: EC2Provider, operation: str) -> list[int]:
    """A counter of HTTP requests the provider's client sends for ``operation``, retries included."""
    sent = [0]

    def count(**_: Any) -> None:
        sent[0] += 1

    provider.ec2.boto.meta.events.register(f"before-send.ec2.{operation}", count)
    return sent


async def test_manager_fills_a_pool_and_a_checked_out_vm_comes_back(
    moto_server: MotoServer, store: Store, redis_port: int
) -> None:
    provider = _ec2(moto_server)
    pool = _pool(moto_server)
    manager = _manager(store, provider, pool, size=2)

    async def two_ready() -> bool:
        return (await store.counts([pool.name]))[pool.name][VMState.READY] == 2

    await run_until(manager, two_ready)
    assert {_name(i) for i in _instances(moto_server, pool.name)} == await store.members(pool.name, VMState.READY)

    with ApiThread(manager.settings, redis_port) as api, httpx.Client(base_url=api.url, timeout=10) as client:
        host = client.post(f"/api/v3/vm/{pool.name}").json()[pool.name]["hostname"]
        (instance,) = [i for i in _instances(moto_server, pool.name) if _name(i) == host]
        assert client.get(f"/api/v3/vm/{host}").json()[host]["ip"] == instance["PrivateIpAddress"]
        assert client.delete(f"/api/v3/vm/{host}").json()["ok"] is True

    async def returned_vm_terminated() -> bool:
        await settle(manager)
        return host not in {_name(i) for i in _instances(moto_server, pool.name, ("pending", "running", "stopped"))}

    await run_until(manager, returned_vm_terminated)
    await settle(manager)
    members = await store.all_members(pool.name)
    known = set().union(*(members[state] for state in LIVE_STATES))
    live = {_name(i) for i in _instances(moto_server, pool.name)}
    assert live <= known, f"instances Redis does not know: {live - known}"
    assert await store.locate(host) == (pool.name, VMState.DESTROYED)


async def test_disks_snapshots_and_user_tags_are_ebs_resources(moto_server: MotoServer) -> None:
    provider = _ec2(moto_server)
    pool = _pool(moto_server, volume_size=12, tags={"team": "qa", "temporary": True})
    info = await provider.create_vm(pool, "disky")
    instance_id = info.extra["instance_id"]
    ec2 = moto_server.client()

    await provider.create_disk(pool, "disky", 3)
    await provider.create_disk(pool, "disky", 4)
    await provider.create_snapshot(pool, "disky", "before-upgrade")
    await provider.tag_vm_user(pool, "disky", "alice")

    attached = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]
    by_device = {volume["Attachments"][0]["Device"]: volume["Size"] for volume in attached}
    assert by_device.pop("/dev/sdf") == 3 and by_device.pop("/dev/sdg") == 4
    assert list(by_device.values()) == [12]  # the root volume, at the pool's volume_size
    (instance,) = _instances(moto_server, pool.name)
    assert all(m["Ebs"]["DeleteOnTermination"] for m in instance["BlockDeviceMappings"])
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert tags["vmpooler_user"] == "alice" and tags["team"] == "qa" and tags["temporary"] == "true"
    assert tags["Name"] == "disky" and tags["vmpooler_pool"] == pool.name
    snapshots = ec2.describe_snapshots(Filters=[{"Name": "tag:vmpooler_snapshot", "Values": ["before-upgrade"]}])
    assert sorted(s["VolumeId"] for s in snapshots["Snapshots"]) == sorted(v["VolumeId"] for v in attached)
    with pytest.raises(NotSupported, match="before-upgrade"):
        await provider.revert_snapshot(pool, "disky", "before-upgrade")

    await provider.destroy_vm(pool, "disky")
    left = ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [v["VolumeId"] for v in attached]}])
    assert left["Volumes"] == [], "a VM's disks must go with it"


@pytest.mark.parametrize(
    ("options", "template", "words"),
    [
        ({}, UNKNOWN_AMI, f"template '{UNKNOWN_AMI}' does not exist (InvalidAMIID.NotFound"),
        ({"amis": ["ami-00000000000000001", UNKNOWN_AMI]}, "", "no AMI in amis"),
        ({"subnet_id": "subnet-nope"}, None, "subnet_id 'subnet-nope' does not exist (InvalidSubnetID.NotFound"),
        ({"security_group_ids": "sg-nope"}, None, "security_group_ids ['sg-nope'] does not exist (InvalidGroup"),
        ({"ready_port": "http"}, None, "ready_port"),
    ],
)
async def test_bad_pool_input_is_permanent_and_names_the_key(
    moto_server: MotoServer, options: dict[str, Any], template: str | None, words: str
) -> None:
    provider = _ec2(moto_server)
    pool = _pool(moto_server, **options)
    if template is not None:
        pool = PoolTarget(pool.name, template, pool.provider_options)
    launches = _count_requests(provider, "RunInstances")

    with pytest.raises(PermanentProviderError) as raised:
        await provider.create_vm(pool, "bad")

    assert words in str(raised.value) and pool.name in str(raised.value)
    assert launches[0] <= 1, "a request AWS refused must not be retried"
    assert await provider.vms_in_pool(pool) == []


async def test_manager_marks_a_permanent_clone_failure_without_retrying_it(
    moto_server: MotoServer, store: Store
) -> None:
    provider = _ec2(moto_server)
    pool = PoolTarget(f"ec2-{uuid.uuid4().hex[:8]}", UNKNOWN_AMI)
    manager = _manager(store, provider, pool, size=1)
    launches = _count_requests(provider, "RunInstances")

    async def clone_errors() -> dict[str, str]:
        records = [await store.client.hgetall(key) for key in await store.client.keys(keys.vm("*"))]
        return {
            str(r["clone_error"]): str(r["clone_error_class"])
            for r in records
            if r.get("pool") == pool.name and "clone_error" in r
        }

    async def failed_once() -> bool:
        await settle(manager)
        return bool(await clone_errors())

    passes = await run_until(manager, failed_once)
    for _ in range(4):  # a few more passes, as the manager's loop would make
        await manager.run_once()
        await settle(manager)
    passes += 4
    errors = await clone_errors()
    assert set(errors.values()) == {"PermanentProviderError"}
    assert all(UNKNOWN_AMI in error and "InvalidAMIID.NotFound" in error for error in errors)
    # exactly one RunInstances per failed clone (no SDK retry of what AWS refused), at most one clone per pass
    attempts = len(
        [key for key in await store.client.keys(keys.vm("*")) if await store.client.hget(key, "pool") == pool.name]
    )
    assert launches[0] == attempts <= passes
    assert _instances(moto_server, pool.name) == []


async def test_provider_survives_a_restarted_endpoint(moto_server: MotoServer) -> None:
    provider = _ec2(moto_server)
    pool = _pool(moto_server)
    await provider.create_vm(pool, "before")

    moto_server.kill()
    with pytest.raises(ProviderError) as raised:
        await provider.vms_in_pool(pool)
    assert not isinstance(raised.value, PermanentProviderError), "an unreachable endpoint may come back"
    moto_server.start()

    assert await provider.vms_in_pool(pool) == []  # a new simulator remembers nothing
    await provider.create_vm(pool, "after")
    assert await provider.vms_in_pool(pool) == ["after"]


async def test_a_duplicate_name_is_refused_and_launches_nothing(moto_server: MotoServer) -> None:
    provider = _ec2(moto_server)
    pool = _pool(moto_server)
    await provider.create_vm(pool, "twice")

    with pytest.raises(ProviderError, match="already exists"):
        await provider.create_vm(pool, "twice")

    assert [_name(i) for i in _instances(moto_server, pool.name)] == ["twice"]


async def test_a_leaked_instance_is_found_by_tag_and_cleaned_up(moto_server: MotoServer, store: Store) -> None:
    provider = _ec2(moto_server)
    pool = _pool(moto_server)
    tags = [{"Key": "vmpooler_pool", "Value": pool.name}, {"Key": "vmpooler_hostname", "Value": "leaked"}]
    moto_server.client().run_instances(
        ImageId=pool.template, MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
    )
    assert await provider.vms_in_pool(pool) == ["leaked"]
    manager = _manager(store, provider, pool, size=0)

    async def leak_gone() -> bool:
        await settle(manager)
        return not _instances(moto_server, pool.name)

    await run_until(manager, leak_gone)
    assert "leaked" not in set().union(*(await store.all_members(pool.name)).values())


async def test_addresses_and_readiness(moto_server: MotoServer) -> None:
    provider = _ec2(moto_server)
    options = {"instance_type": "t3.small", "amis": [UNKNOWN_AMI, moto_server.default_ami]}
    pool = PoolTarget(_pool(moto_server).name, "debian-12 (a label: amis decides)", options)
    public = PoolTarget(pool.name, pool.template, {"use_public_ip": True})
    await provider.create_vm(pool, "addr")
    (instance,) = _instances(moto_server, pool.name)

    private_info, public_info = await provider.get_vm(pool, "addr"), await provider.get_vm(public, "addr")
    assert private_info is not None and private_info.ip == instance["PrivateIpAddress"]
    assert public_info is not None and public_info.ip == instance["PublicIpAddress"] != private_info.ip
    assert private_info.template == instance["ImageId"] == moto_server.default_ami  # the first usable of amis
    assert private_info.host == instance["Placement"]["AvailabilityZone"] and private_info.powered_on
    assert private_info.boot_time == instance["LaunchTime"].timestamp()
    assert private_info.extra == {
        "instance_id": instance["InstanceId"],
        "instance_type": "t3.small",
        "state": "running",
    }
    assert await provider.vm_ready(pool, "addr")


async def test_ready_port_probe_and_a_missing_public_address(moto_server: MotoServer) -> None:
    # moto hands out addresses from the subnet's range: a loopback subnet puts the VM where a test can listen
    ec2 = moto_server.client()
    vpc = ec2.create_vpc(CidrBlock="127.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="127.0.0.0/24")["Subnet"]["SubnetId"]
    provider = _ec2(moto_server, ready_probe_timeout=1)
    pool = _pool(moto_server, subnet_id=subnet)
    address = (await provider.create_vm(pool, "probed")).ip
    assert address is not None and address.startswith("127.0.0.")
    public = PoolTarget(pool.name, pool.template, {"use_public_ip": True})
    with socket.socket() as listener:
        listener.bind((address, 0))
        listener.listen()
        probed = PoolTarget(pool.name, pool.template, {"ready_port": listener.getsockname()[1]})
        assert await provider.vm_ready(probed, "probed")
    assert not await provider.vm_ready(probed, "probed"), "the port no longer accepts connections"
    assert await provider.vm_ready(pool, "probed")
    public_info = await provider.get_vm(public, "probed")
    assert public_info is not None and public_info.ip is None  # this subnet gives no public address
    assert not await provider.vm_ready(public, "probed"), "ready needs a known address"


class _FaultyFront:
    """Forwards EC2 requests to moto but answers the first ``failures`` of them with an AWS error of its own."""

    def __init__(self, upstream: str) -> None:
        self.failures, self.requests = 0, 0
        self.code, self.status = "RequestLimitExceeded", 503
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                front.requests += 1
                if front.requests <= front.failures:
                    status, reply = front.status, front.error_body()
                else:
                    # moto routes by the signed Authorization header, so everything but hop headers goes along
                    skip = {"host", "content-length", "connection"}
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                    forwarded = urllib.request.Request(upstream + self.path, body, headers)
                    try:
                        with urllib.request.urlopen(forwarded, timeout=10) as answer:
                            status, reply = answer.status, answer.read()
                    except urllib.error.HTTPError as error:
                        status, reply = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail(self, failures: int, code: str, status: int) -> None:
        self.failures, self.code, self.status, self.requests = failures, code, status, 0

    def error_body(self) -> bytes:
        """An error as EC2 sends it (its query protocol's XML)."""
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{self.code}</Code>'
            f"<Message>injected {self.code}</Message></Error></Errors><RequestID>1</RequestID></Response>"
        ).encode()

    def __enter__(self) -> _FaultyFront:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def faulty(moto_server: MotoServer) -> Iterator[_FaultyFront]:
    with _FaultyFront(moto_server.url) as front:
        yield front


async def test_throttling_is_retried_then_reported_as_retriable(moto_server: MotoServer, faulty: _FaultyFront) -> None:
    provider = _ec2(moto_server, endpoint_url=faulty.url, max_attempts=3)
    pool = _pool(moto_server)

    faulty.fail(2, "RequestLimitExceeded", 503)
    assert await provider.vms_in_pool(pool) == []
    assert faulty.requests == 3  # two throttled, the third answered

    impatient = _ec2(moto_server, endpoint_url=faulty.url, max_attempts=2)
    faulty.fail(100, "Throttling", 400)
    with pytest.raises(ProviderError, match="Throttling: injected") as raised:
        await impatient.vms_in_pool(pool)
    assert not isinstance(raised.value, PermanentProviderError)
    assert faulty.requests == 2  # max_attempts, then it gives up


@pytest.mark.parametrize(("code", "status"), [("AuthFailure", 401), ("UnrecognizedClientException", 400)])
async def test_rejected_credentials_are_permanent_and_not_retried(
    moto_server: MotoServer, faulty: _FaultyFront, code: str, status: int
) -> None:
    provider = _ec2(moto_server, endpoint_url=faulty.url, max_attempts=3)
    faulty.fail(100, code, status)

    with pytest.raises(PermanentProviderError, match=f"refused the credentials for describe_instances \\({code}"):
        await provider.create_vm(_pool(moto_server), "vm")
    assert faulty.requests == 1


async def test_construction_never_calls_aws_and_secrets_stay_hidden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    options = {"region": "eu-west-1", "endpoint_url": closed, "aws_secret_access_key": "s3cr3t", "max_attempts": 1}
    options |= {"aws_access_key_id": "AKIDEXAMPLE", "aws_session_token": "t0k3n"}
    provider = EC2Provider("ec2", EC2Options.model_validate(options))
    shown = f"{provider.describe()} {provider.options!r}"
    assert "s3cr3t" not in shown and "t0k3n" not in shown and provider.describe()["credentials"] == "configured"
    with pytest.raises(ProviderError) as unreachable:
        await provider.vms_in_pool(PoolTarget("p", "ami-1"))
    assert not isinstance(unreachable.value, PermanentProviderError)

    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    no_region = EC2Provider("ec2", EC2Options.model_validate({**options, "region": None}))
    with pytest.raises(PermanentProviderError, match="no region: set `region`"):
        await no_region.vms_in_pool(PoolTarget("p", "ami-1"))


async def test_the_originals_amisize_zone_and_volume_size_reach_the_launch(moto_server: MotoServer) -> None:
    region = moto_server.client().meta.region_name
    provider = _ec2(moto_server, amisize="t3.small", zone=f"{region}b")  # the provider-level defaults
    own = _pool(moto_server, amisize="m5.large", zone=f"{region}c", volume_size=12)
    inherits = _pool(moto_server)

    await provider.create_vm(own, "own")
    await provider.create_vm(inherits, "inherits")

    (launched,) = _instances(moto_server, own.name)
    assert (launched["InstanceType"], launched["Placement"]["AvailabilityZone"]) == ("m5.large", f"{region}c")
    volume = moto_server.client().describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [launched["InstanceId"]]}]
    )["Volumes"][0]
    assert volume["Size"] == 12
    (default,) = _instances(moto_server, inherits.name)
    assert (default["InstanceType"], default["Placement"]["AvailabilityZone"]) == ("t3.small", f"{region}b")


@pytest.mark.parametrize("key", ["provision", "project", "dns_zone_resource_name", "domain"])
async def test_a_key_of_the_original_with_no_ec2_meaning_is_refused_by_name(moto_server: MotoServer, key: str) -> None:
    provider = _ec2(moto_server)
    pool = _pool(moto_server, **{key: "x"})
    launches = _count_requests(provider, "RunInstances")

    with pytest.raises(PermanentProviderError, match=rf"{key}: not read by the EC2 provider"):
        await provider.create_vm(pool, "refused")
    with pytest.raises(ValidationError, match=rf"{key}\n.*not read by the EC2 provider"):
        EC2Options.model_validate(moto_server.provider_options(**{key: "x"}))
    assert launches == [0]
