"""The original's vSphere keys (``:config:`` and per pool) on vcsim: linked clones by default, folders, host
selection, delta disks and a pool's network; and how :config:, the provider section and the environment combine."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from tests.support.fixtures.vcsim import CLUSTER, TEMPLATE, Vcsim, clone_vm
from vmpooler.config import parse_settings
from vmpooler.errors import PermanentProviderError
from vmpooler.manager.loop import Manager
from vmpooler.providers import registry
from vmpooler.providers.vsphere import VSphereOptions, VSphereProvider
from vmpooler.providers.vsphere.specs import DELTA_DISKS_KEY, delta_disk_spec, option
from vmpooler.store.redis import Store

VSPHERE = {"server": "vcenter.example", "username": "u", "password": "p"}


def _effective(raw: dict[str, Any], env: dict[str, str] | None = None) -> VSphereOptions:
    settings, _ = parse_settings({"providers": {"vsphere": VSPHERE}, **raw}, env=env or {})
    return VSphereOptions.model_validate(
        registry.options_for(settings.providers.get("vsphere"), settings.config, VSphereProvider)
    )


def test_the_originals_defaults_and_how_config_provider_section_and_environment_combine() -> None:
    default = _effective({})
    assert (default.create_linked_clones, default.create_folders, default.manage_host_selection) == (True, False, False)
    assert (default.utilization_limit, default.host_selection_max_age, default.create_template_delta_disks) == (
        90,
        60,
        False,
    )
    keys = {"create_folders": True, "manage_host_selection": True, "utilization_limit": 75, "host_selection_max_age": 5}
    from_config = _effective({"config": {**keys, "create_template_delta_disks": True}})
    assert from_config.model_dump(include=set(keys) | {"create_template_delta_disks"}) == {
        **keys,
        "create_template_delta_disks": True,
    }
    # the provider's own section wins over :config:
    own = _effective(
        {"config": {"utilization_limit": 75}, "providers": {"vsphere": {**VSPHERE, "utilization_limit": 50}}}
    )
    assert own.utilization_limit == 50
    assert _effective({}, env={"CREATE_LINKED_CLONES": "false"}).create_linked_clones is False


@pytest.fixture
async def original(vcsim: Vcsim) -> AsyncIterator[VSphereProvider]:
    """A provider with the original's defaults for every key the fixture's options() sets otherwise."""
    made = VSphereProvider(
        "vsphere", vcsim.options(create_folders=False, create_linked_clones=True, manage_host_selection=False)
    )
    yield made
    await made.close()


def _name() -> str:
    return f"vm-{uuid.uuid4().hex[:8]}"


async def test_by_default_clones_are_linked_a_missing_folder_is_an_error_and_vcenter_picks_the_host(
    vcsim: Vcsim, original: VSphereProvider, caplog: pytest.LogCaptureFixture
) -> None:
    template = vcsim.make_template(f"linked-{uuid.uuid4().hex[:6]}")
    pool = vcsim.pool(template=f"Templates/{template.name}")

    with pytest.raises(PermanentProviderError, match=r"folder 'vmpooler/pool-\w+' not found .*create_folders"):
        await original.create_vm(pool, _name())
    content = vcsim.admin().content
    vm_folder = content.searchIndex.FindByInventoryPath("DC0/vm")
    parent = content.searchIndex.FindChild(vm_folder, "vmpooler") or vm_folder.CreateFolder("vmpooler")
    parent.CreateFolder(pool.name)
    with caplog.at_level(logging.INFO, logger="vmpooler.providers.vsphere"):
        await original.create_vm(pool, _name())

    assert "(linked to snapshot 'vmpooler-linked-clone-base') onto host chosen by vCenter" in caplog.text
    assert vcsim.read(template, "snapshot").get("snapshot") is not None


async def test_host_loads_are_read_once_per_host_selection_max_age(
    vcsim: Vcsim, caplog: pytest.LogCaptureFixture
) -> None:
    reads = {}
    for max_age in (3600, 0):
        provider = VSphereProvider("vsphere", vcsim.options(host_selection_max_age=max_age))
        pool = vcsim.pool()
        try:
            caplog.clear()
            with caplog.at_level(logging.DEBUG, logger="vmpooler.providers.vsphere"):
                for _ in range(2):
                    await provider.create_vm(pool, _name())
        finally:
            await provider.close()
        reads[max_age] = caplog.text.count(f"host(s) of {CLUSTER}")
        assert len(re.findall(rf"onto host {CLUSTER}_H\d", caplog.text)) == 2  # manage_host_selection: a host each
    assert reads == {3600: 1, 0: 2}


@pytest.mark.parametrize(("network", "distributed"), [("DC0_DVPG0", True), ("VM Network", False)])
async def test_a_pools_network_connects_the_clones_network_card(
    vcsim: Vcsim, original: VSphereProvider, network: str, distributed: bool
) -> None:
    provider = VSphereProvider("vsphere", vcsim.options())
    pool = vcsim.pool(network=network)
    name = _name()
    try:
        await provider.create_vm(pool, name)
    finally:
        await provider.close()

    vm = vcsim.find(f"{pool.provider_options['folder']}/{name}")
    devices = vcsim.read(vm, "config.hardware.device")["config.hardware.device"]
    card = next(d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard))
    if distributed:
        port_group = vcsim.admin().content.searchIndex.FindByInventoryPath(f"DC0/network/{network}")
        assert card.backing.port.portgroupKey == port_group.key
    else:
        assert card.backing.deviceName == network


async def test_an_unknown_network_is_permanent_and_named(vcsim: Vcsim) -> None:
    provider = VSphereProvider("vsphere", vcsim.options())
    pool = vcsim.pool(network="nope")
    try:
        with pytest.raises(PermanentProviderError, match=r"network 'nope' not found in datacenter 'DC0'"):
            await provider.create_vm(pool, _name())
    finally:
        await provider.close()
    assert vcsim.folder_vm_names(pool.provider_options["folder"]) == set()


async def test_template_delta_disks_are_added_once_and_linked_clones_share_them(
    vcsim: Vcsim, caplog: pytest.LogCaptureFixture
) -> None:
    template = vcsim.make_template(f"delta-{uuid.uuid4().hex[:6]}")
    provider = VSphereProvider("vsphere", vcsim.options(create_template_delta_disks=True, create_linked_clones=True))
    pool = vcsim.pool(template=f"Templates/{template.name}")
    try:
        with caplog.at_level(logging.INFO, logger="vmpooler.providers.vsphere"):
            for _ in range(2):
                await provider.create_vm(pool, _name())
    finally:
        await provider.close()

    # vcsim keeps no disk chains (see its fixture): the spec is checked below, here that it is sent once
    assert option(vcsim.read(template, "config.extraConfig")["config.extraConfig"], DELTA_DISKS_KEY) == "true"
    assert caplog.text.count("adding delta disks to template") == 1
    assert caplog.text.count("(linked to the template's delta disks)") == 2
    assert vcsim.read(template, "snapshot").get("snapshot") is None  # linked to the delta disks, not a snapshot
    assert len(vcsim.folder_vm_names(pool.provider_options["folder"])) == 2
    assert len(_disks(vcsim, template)) == 1


def test_the_delta_disk_layer_makes_each_old_disk_the_parent_of_a_new_one() -> None:
    store = vim.Datastore("datastore-1")
    old = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
        fileName="[LocalDS_0] t/t.vmdk", datastore=store, diskMode="persistent"
    )
    disk = vim.vm.device.VirtualDisk(key=2000, controllerKey=1000, unitNumber=0, capacityInKB=1024, backing=old)
    nic = vim.vm.device.VirtualE1000(key=4000)

    spec = delta_disk_spec([disk, nic], {store: "LocalDS_0"})

    remove, add = spec.deviceChange
    assert (remove.operation, remove.device) == ("remove", disk)
    assert (add.operation, add.fileOperation) == ("add", "create")
    assert add.device.backing.parent == old and add.device.backing.fileName == "[LocalDS_0]"
    assert (add.device.key, add.device.unitNumber) == (2000, 0)
    assert option(spec.extraConfig, DELTA_DISKS_KEY) == "true"


def _disks(vcsim: Vcsim, vm: vim.VirtualMachine) -> list[vim.vm.device.VirtualDisk]:
    devices = vcsim.read(vm, "config.hardware.device")["config.hardware.device"]
    return [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]


def _folders(vcsim: Vcsim, *paths: str) -> None:
    content = vcsim.admin().content
    for path in paths:
        parent = content.searchIndex.FindByInventoryPath("DC0/vm")
        for part in path.split("/"):
            parent = content.searchIndex.FindChild(parent, part) or parent.CreateFolder(part)


async def test_purge_unconfigured_resources_deletes_unknown_folders_beside_the_pools_only(
    vcsim: Vcsim, store: Store
) -> None:
    base = f"purge-{uuid.uuid4().hex[:6]}"
    _folders(vcsim, f"{base}/a", f"{base}/b", f"{base}/stale", f"{base}/keep", f"{base}-elsewhere/stale")
    stray = clone_vm(vcsim.admin(), TEMPLATE, f"{base}/stale", "stray")
    WaitForTask(stray.PowerOnVM_Task())
    options = vcsim.options()
    provider_section = {
        "server": options.server,
        "port": options.port,
        "username": options.username,
        "password": options.password.get_secret_value(),
        "insecure": True,
        "datacenter": "DC0",
        "resources_allowlist": ["keep"],
    }
    pools = [{"name": f"{base}-{x}", "template": TEMPLATE, "size": 0, "folder": f"{base}/{x}"} for x in "ab"]
    settings, _ = parse_settings(
        {"config": {"purge_unconfigured_resources": True}, "providers": {"vsphere": provider_section}, "pools": pools},
        env={},
    )
    providers = registry.build_all(
        settings.pools, settings.providers, settings.config
    )  # :config: purge_unconfigured_resources reaches the provider
    try:
        await Manager(settings, store, providers).purge_unconfigured()
    finally:
        await providers["vsphere"].close()

    assert vcsim.find(f"{base}/stale") is None
    assert all(vcsim.find(f"{base}/{kept}") is not None for kept in ("a", "b", "keep"))
    assert vcsim.find(f"{base}-elsewhere/stale") is not None  # not beside a pool's folder
