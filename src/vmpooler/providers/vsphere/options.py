"""The vSphere provider's settings: the ``:providers: :vsphere:`` section and the per-pool keys it reads."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from vmpooler.config import VSPHERE_KEYS, describe
from vmpooler.domain import PoolTarget
from vmpooler.errors import PermanentProviderError
from vmpooler.providers.base import ProviderOptions

__all__ = ["LINKED_CLONE_SNAPSHOT", "VSPHERE_GLOBAL_KEYS", "VSphereOptions", "VSpherePoolOptions", "pool_options"]

Seconds = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65535)]

#: the snapshot a linked clone is made from when the template has none of its own
LINKED_CLONE_SNAPSHOT = "vmpooler-linked-clone-base"


class VSphereOptions(ProviderOptions):
    """The ``:providers: :vsphere:`` section, with the original vmpooler-provider-vsphere's keys.

    ``password`` is a secret: ``describe()`` and the log never show it. ``insecure`` skips TLS
    certificate verification (vCenter's self-signed certificate). ``connection_pool_size`` sessions
    are opened lazily, on the first call that needs one; a call waits up to
    ``connection_pool_timeout`` seconds for a free one.
    """

    server: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: SecretStr
    insecure: bool = False
    port: Port = 443
    #: sessions, each running one blocking request at a time; a task being waited for holds none
    connection_pool_size: int = Field(4, ge=1)
    #: the datacenter of pools that name none (may be left out when vCenter has exactly one)
    datacenter: str | None = None
    #: seconds one SOAP request may take before the connection is given up
    http_timeout: Seconds = 60.0
    #: seconds a vCenter task (clone, power on, destroy, ...) may run before the call fails
    task_timeout: Seconds = 600.0
    # The original's ``:config:`` vSphere keys (VSPHERE_GLOBAL_KEYS): :config: sets them for every
    # vSphere provider, a ``:providers:`` section may set its own.
    #: clone pools that do not say ``create_linked_clone`` as linked clones (on, as the original)
    create_linked_clones: bool = True
    #: make a pool's missing VM folder; off (as the original), a missing folder fails the clone
    create_folders: bool = False
    #: before a template's first linked clone, give its disks a delta-disk layer (once, marked on the
    #: template) and link clones to it instead of to a snapshot, as the original
    create_template_delta_disks: bool = False
    #: choose the host of each clone in a cluster (the least used usable one); off, vCenter (DRS) places it
    manage_host_selection: bool = False
    #: seconds a reading of a cluster's host loads is reused for host selection
    host_selection_max_age: Annotated[float, Field(ge=0)] = 60.0
    #: a host whose CPU or memory is more used than this (percent) gets no new clones
    utilization_limit: Annotated[float, Field(gt=0, le=100)] = 90.0
    #: a TCP port that must accept a connection before a VM counts as ready (pools may override)
    ready_port: Port | None = None
    #: seconds the ``ready_port`` probe waits for a connection
    ready_probe_timeout: Seconds = 2.0


class VSpherePoolOptions(BaseModel):
    """The per-pool keys of a vSphere pool (``PoolTarget.provider_options``); other keys are ignored.

    Inventory paths are relative to the datacenter's VM folder (``Templates/debian-12``) unless they
    start with ``/`` (``/DC0/vm/Templates/debian-12``, a full inventory path).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    #: the VM folder new VMs go in; created when missing
    folder: str = Field(min_length=1)
    #: the datastore new VMs are placed on (the template's own when unset)
    datastore: str | None = None
    #: a cluster (the least used host in it is chosen) or a host name
    clone_target: str | None = None
    datacenter: str | None = None
    #: clone from the template's current snapshot (taking one if it has none); unset: the provider's default
    create_linked_clone: bool | None = None
    #: written to each clone's VMX as ``mainMem.ioBlockPages`` / ``mainMem.iowait`` (memory snapshots)
    snapshot_main_mem_io_block_pages: int | str | None = Field(None, alias="snapshot_mainMem_ioBlockPages")
    snapshot_main_mem_iowait: int | str | None = Field(None, alias="snapshot_mainMem_iowait")
    ready_port: Port | None = None
    #: the network (a port group, standard or distributed) the clone's first network card joins
    network: str | None = Field(None, min_length=1)


#: the ``:config:`` keys the vSphere provider reads (see ``Provider.global_keys``)
VSPHERE_GLOBAL_KEYS = VSPHERE_KEYS


def pool_options(pool: PoolTarget) -> VSpherePoolOptions:
    """The pool's vSphere keys, validated; PermanentProviderError names the pool and the bad key."""
    try:
        return VSpherePoolOptions.model_validate(pool.provider_options)
    except ValidationError as exc:
        problems = "; ".join(describe(exc, wording="terse"))
        raise PermanentProviderError(f"pool {pool.name!r}: {problems}") from exc
