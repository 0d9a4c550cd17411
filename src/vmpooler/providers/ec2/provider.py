"""The EC2 provider: a pool's VMs are instances tagged with the pool's name and their own.

Every instance (and its root volume) is tagged at launch, inside RunInstances, with
``vmpooler_pool=<pool>``, ``vmpooler_hostname=<vm>`` and ``Name=<vm>``, so there is no moment
when an instance exists untagged: the inventory and the manager's leak cleanup find instances by
tag alone and never need a local record. The launch carries a ClientToken derived from pool and
name, so when botocore resends a RunInstances whose answer was lost, EC2 returns the first
instance instead of launching a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import weakref
from typing import Any

from vmpooler.domain import PoolTarget, VMInfo
from vmpooler.errors import NotSupported, PermanentProviderError, ProviderError
from vmpooler.providers.base import Provider, ProviderOptions
from vmpooler.providers.ec2.client import EC2Client, Response, aws_error_code
from vmpooler.providers.ec2.options import EC2Options, EC2PoolOptions, pool_options
from vmpooler.providers.localvm.probe import tcp_open

__all__ = ["HOSTNAME_TAG", "POOL_TAG", "USER_TAG", "EC2Provider"]

POOL_TAG = "vmpooler_pool"
HOSTNAME_TAG = "vmpooler_hostname"
USER_TAG = "vmpooler_user"
SNAPSHOT_TAG = "vmpooler_snapshot"
#: states of an instance that still counts as a VM; shutting-down and terminated ones are gone
LIVE_STATES = ["pending", "running", "stopping", "stopped"]
#: the device names AWS recommends for attached EBS volumes
DISK_DEVICES = [f"/dev/sd{letter}" for letter in "fghijklmnop"]

Instance = dict[str, Any]


AMI_ID = re.compile(r"ami-[0-9a-f]{8,32}")


class EC2Provider(Provider):
    """Launches, finds and terminates EC2 instances for pools; see the module docstring."""

    options_model = EC2Options
    pool_options_model = EC2PoolOptions

    @classmethod
    def template_problem(cls, options: ProviderOptions, pool: PoolTarget, template: str) -> str | None:
        return None if AMI_ID.fullmatch(template) else "an EC2 template must be an AMI id (ami- and hex digits)"

    options: EC2Options

    def __init__(self, name: str, options: ProviderOptions | None = None) -> None:
        super().__init__(name, options)
        options = self.options
        self.ec2 = EC2Client(name, options)
        #: one create_disk at a time per VM, so two never pick the same free device name
        self._disk_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def vms_in_pool(self, pool: PoolTarget) -> list[str]:
        return sorted({name for instance in await self._instances(pool) if (name := _vm_name(instance))})

    async def get_vm(self, pool: PoolTarget, name: str) -> VMInfo | None:
        instance = await self._instance(pool, name)
        return _info(pool, name, instance, pool_options(pool)) if instance else None

    async def create_vm(self, pool: PoolTarget, name: str) -> VMInfo:
        opts = pool_options(pool)
        if await self._instances(pool, name):
            raise ProviderError(f"ec2: VM {name!r} already exists in pool {pool.name!r}")
        image_key = "amis" if opts.amis else "template"
        image_id, root_device = await self._choose_image(pool, opts, image_key, self.options.volume_size)
        tags = _tag_list({**opts.tags, "Name": name, POOL_TAG: pool.name, HOSTNAME_TAG: name})
        instance_type = opts.instance_type or self.options.instance_type
        launch: dict[str, Any] = {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": _client_token(pool.name, name),
            "TagSpecifications": [{"ResourceType": kind, "Tags": tags} for kind in ("instance", "volume")],
        }
        if opts.subnet_id:
            launch["SubnetId"] = opts.subnet_id
        if opts.security_group_ids:
            launch["SecurityGroupIds"] = opts.security_group_ids
        if opts.key_name:
            launch["KeyName"] = opts.key_name
        zone = opts.zone or self.options.zone
        if zone:
            launch["Placement"] = {"AvailabilityZone": zone}
        volume_size = opts.volume_size or self.options.volume_size
        if volume_size:
            ebs = {"VolumeSize": volume_size, "DeleteOnTermination": True}
            launch["BlockDeviceMappings"] = [{"DeviceName": root_device or "/dev/xvda", "Ebs": ebs}]
        blame = f"pool {pool.name!r}:"
        subjects = {
            "InvalidAMIID": f"{blame} {image_key} {image_id!r}",
            "InvalidSubnetID": f"{blame} subnet_id {opts.subnet_id!r}",
            "InvalidSubnet": f"{blame} subnet_id {opts.subnet_id!r}",
            "InvalidGroup": f"{blame} security_group_ids {opts.security_group_ids}",
            "InvalidGroupId": f"{blame} security_group_ids {opts.security_group_ids}",
            "InvalidSecurityGroupID": f"{blame} security_group_ids {opts.security_group_ids}",
            "InvalidKeyPair": f"{blame} key_name {opts.key_name!r}",
            "InvalidInstanceType": f"{blame} instance_type {instance_type!r}",
            "InvalidAvailabilityZone": f"{blame} zone {zone!r}",
        }
        instance: Instance = (await self.ec2.call("run_instances", subjects, **launch))["Instances"][0]
        state = _state(instance)
        if state not in LIVE_STATES:
            # EC2 answered an earlier launch's ClientToken: this name was used before in this pool
            raise ProviderError(f"ec2: launching {name!r} returned {instance['InstanceId']}, already {state}")
        return _info(pool, name, instance, opts)

    async def destroy_vm(self, pool: PoolTarget, name: str) -> None:
        ids = [instance["InstanceId"] for instance in await self._instances(pool, name)]
        if not ids:
            return
        try:
            await self.ec2.call("terminate_instances", InstanceIds=ids)
        except ProviderError as exc:
            if aws_error_code(exc) != "InvalidInstanceID.NotFound":
                raise

    async def vm_ready(self, pool: PoolTarget, name: str) -> bool:
        opts = pool_options(pool)
        instance = await self._instance(pool, name)
        if instance is None or _state(instance) != "running":
            return False
        address = _address(instance, opts)
        if not address:
            return False
        if opts.ready_port is None:
            return True
        return await tcp_open(address, opts.ready_port, self.options.ready_probe_timeout)

    async def create_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        instance = await self._require(pool, name)
        disks = [(m["DeviceName"], m["Ebs"]["VolumeId"]) for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m]
        if not disks:
            raise PermanentProviderError(f"ec2: VM {name!r} has no EBS volume to snapshot")
        for device, volume_id in disks:
            tags = {"Name": f"{name}-{snapshot}", POOL_TAG: pool.name, HOSTNAME_TAG: name, SNAPSHOT_TAG: snapshot}
            await self.ec2.call(
                "create_snapshot",
                VolumeId=volume_id,
                Description=f"vmpooler snapshot {snapshot!r} of {name} {device}",
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tag_list({**tags, "device": device})}],
            )

    async def revert_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        raise NotSupported(
            f"ec2: cannot revert {name!r} to snapshot {snapshot!r}: EC2 has no in-place revert (it would mean "
            f"stopping the instance and swapping each volume); its snapshots are tagged {SNAPSHOT_TAG}={snapshot}"
        )

    async def create_disk(self, pool: PoolTarget, name: str, size_gb: int) -> None:
        if size_gb < 1:
            raise PermanentProviderError(f"ec2: disk size must be at least 1 GB, not {size_gb}")
        lock = self._disk_locks.setdefault(f"{pool.name}/{name}", asyncio.Lock())
        async with lock:
            instance = await self._require(pool, name)
            instance_id = instance["InstanceId"]
            device = _free_device(instance)
            tags = _tag_list({"Name": f"{name}-{device.rsplit('/', 1)[-1]}", POOL_TAG: pool.name, HOSTNAME_TAG: name})
            volume: Response = await self.ec2.call(
                "create_volume",
                Size=size_gb,
                AvailabilityZone=instance["Placement"]["AvailabilityZone"],
                TagSpecifications=[{"ResourceType": "volume", "Tags": tags}],
            )
            volume_id = volume["VolumeId"]
            timeout = self.options.volume_wait_timeout
            try:
                await self.ec2.wait("volume_available", timeout, VolumeIds=[volume_id])
                await self.ec2.call("attach_volume", VolumeId=volume_id, InstanceId=instance_id, Device=device)
            except ProviderError:
                with contextlib.suppress(ProviderError):  # do not leave a paid-for volume behind
                    await self.ec2.call("delete_volume", VolumeId=volume_id)
                raise
            await self.ec2.wait("volume_in_use", timeout, VolumeIds=[volume_id])
            # an attached volume outlives its instance by default; this one must die with the VM
            await self.ec2.call(
                "modify_instance_attribute",
                InstanceId=instance_id,
                BlockDeviceMappings=[{"DeviceName": device, "Ebs": {"DeleteOnTermination": True}}],
            )

    async def tag_vm_user(self, pool: PoolTarget, name: str, user: str) -> None:
        ids = [instance["InstanceId"] for instance in await self._instances(pool, name)]
        if not ids:
            raise PermanentProviderError(f"ec2: no VM {name!r} in pool {pool.name!r}")
        await self.ec2.call("create_tags", Resources=ids, Tags=_tag_list({USER_TAG: user}))

    async def close(self) -> None:
        await asyncio.to_thread(self.ec2.close)

    def describe(self) -> dict[str, Any]:
        opts = self.options
        return {
            **super().describe(),
            "region": opts.region,
            "endpoint_url": opts.endpoint_url,
            "profile": opts.profile,
            "credentials": "configured" if opts.aws_access_key_id else "default chain",
            "max_attempts": opts.max_attempts,
        }

    async def _instances(self, pool: PoolTarget, name: str | None = None) -> list[Instance]:
        """The pool's live instances, or only those tagged with ``name``."""
        filters = [
            {"Name": f"tag:{POOL_TAG}", "Values": [pool.name]},
            {"Name": "instance-state-name", "Values": LIVE_STATES},
        ]
        if name is not None:
            filters.append({"Name": f"tag:{HOSTNAME_TAG}", "Values": [name]})
        pages = await self.ec2.pages("describe_instances", Filters=filters)
        return [instance for page in pages for group in page["Reservations"] for instance in group["Instances"]]

    async def _instance(self, pool: PoolTarget, name: str) -> Instance | None:
        """The VM's instance; the newest when a name somehow has several."""
        instances = await self._instances(pool, name)
        return max(instances, key=lambda instance: instance["LaunchTime"]) if instances else None

    async def _require(self, pool: PoolTarget, name: str) -> Instance:
        instance = await self._instance(pool, name)
        if instance is None:
            raise PermanentProviderError(f"ec2: no VM {name!r} in pool {pool.name!r}")
        return instance

    async def _choose_image(
        self, pool: PoolTarget, opts: EC2PoolOptions, key: str, default_volume_size: int | None
    ) -> tuple[str, str | None]:
        """The first configured AMI that exists and is available, and its root device name.

        A single AMI is launched without asking (RunInstances reports it if it is unknown) unless
        ``volume_size`` needs its root device name.
        """
        candidates = opts.amis or [pool.template]
        if len(candidates) == 1 and (opts.volume_size or default_volume_size) is None:
            return candidates[0], None
        found = await self.ec2.call("describe_images", Filters=[{"Name": "image-id", "Values": candidates}])
        usable = {image["ImageId"]: image for image in found["Images"] if image.get("State") == "available"}
        for ami in candidates:
            if ami in usable:
                return ami, usable[ami].get("RootDeviceName")
        raise PermanentProviderError(f"pool {pool.name!r}: no AMI in {key} {candidates} exists and is available")


def _client_token(pool: str, name: str) -> str:
    """RunInstances' idempotency token (at most 64 characters), the same on every retry of one launch."""
    return "vmpooler-" + hashlib.sha256(f"{pool}\0{name}".encode()).hexdigest()[:48]


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _tags(instance: Instance) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}


def _vm_name(instance: Instance) -> str | None:
    tags = _tags(instance)
    return tags.get(HOSTNAME_TAG) or tags.get("Name")


def _state(instance: Instance) -> str:
    return str(instance.get("State", {}).get("Name", "unknown"))


def _address(instance: Instance, opts: EC2PoolOptions) -> str | None:
    address = instance.get("PublicIpAddress") if opts.use_public_ip else instance.get("PrivateIpAddress")
    return str(address) if address else None


def _free_device(instance: Instance) -> str:
    used = {mapping["DeviceName"] for mapping in instance.get("BlockDeviceMappings", [])}
    used.add(instance.get("RootDeviceName", ""))
    # the kernel may show /dev/sdf as /dev/xvdf; an AMI may have mapped either spelling
    used |= {device.replace("/dev/xvd", "/dev/sd") for device in used}
    for device in DISK_DEVICES:
        if device not in used:
            return device
    raise PermanentProviderError(f"ec2: instance {instance['InstanceId']} has no free device name for another disk")


def _info(pool: PoolTarget, name: str, instance: Instance, opts: EC2PoolOptions) -> VMInfo:
    launched = instance.get("LaunchTime")
    return VMInfo(
        name=name,
        pool=pool.name,
        template=str(instance.get("ImageId", "")),
        hostname=name,
        ip=_address(instance, opts),
        powered_on=_state(instance) == "running",
        boot_time=launched.timestamp() if launched is not None else None,
        host=instance.get("Placement", {}).get("AvailabilityZone"),
        extra={
            "instance_id": instance["InstanceId"],
            "instance_type": instance.get("InstanceType"),
            "state": _state(instance),
        },
    )
