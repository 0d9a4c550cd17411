"""The provider interface: the few async calls the manager makes to create and destroy VMs.

A provider is constructed once per ``:providers:`` entry with its own validated options and is
shared by every pool that names it. It never sees Redis or the service's other settings: the
manager records state, the provider only acts on machines. Every call is async; blocking SDKs run
their work in a thread (``asyncio.to_thread``). Errors are raised as ``ProviderError`` subclasses:
``PermanentProviderError`` when retrying cannot help. ``destroy_vm`` of a VM that does not exist
succeeds, so a destroy interrupted by a crash can simply be repeated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from vmpooler.domain import PoolTarget, VMInfo
from vmpooler.errors import NotSupported


class ProviderOptions(BaseModel):
    """Options every provider accepts; a provider subclasses this with its own keys."""

    model_config = ConfigDict(extra="allow")

    provider_class: str | None = None
    #: at manager start, delete what the provider holds that no pool is configured for (see purge_unconfigured)
    purge_unconfigured_resources: bool = False
    #: names purge_unconfigured never deletes (the original's ``folder_whitelist`` is the old name)
    resources_allowlist: list[str] | None = Field(
        None, validation_alias=AliasChoices("resources_allowlist", "folder_whitelist")
    )
    connection_pool_size: int = 1
    connection_pool_timeout: int = 10
    #: the most VMs this provider may hold at once over all its pools (a quota, a host's memory);
    #: clones wait while it is reached. None: no limit
    max_vms: int | None = Field(None, ge=1)

    #: the options that name a file or folder: a relative one is taken relative to the state folder
    #: (``--state-dir``), so a configuration works whatever folder the service is started from
    path_options: ClassVar[tuple[str, ...]] = ()

    def under(self, state_dir: Path) -> Self:
        """A copy whose relative ``path_options`` are resolved against ``state_dir``."""
        update = {}
        for option in self.path_options:
            value = getattr(self, option)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                update[option] = str((state_dir / value).absolute())
        return self.model_copy(update=update) if update else self

    def paths(self) -> dict[str, Path]:
        """The ``path_options`` set: option -> path."""
        return {o: Path(v).expanduser() for o in self.path_options if isinstance(v := getattr(self, o), str) and v}


class Provider(ABC):
    """Creates, inspects and destroys the VMs of pools. Subclass and register under
    the ``vmpooler.providers`` entry point."""

    #: the pydantic model this provider's ``:providers: <name>:`` section is validated with
    options_model: ClassVar[type[ProviderOptions]] = ProviderOptions
    #: the model a pool's own keys (``PoolTarget.provider_options``) are validated with, at start-up and by
    #: ``validate-config``; None: the provider checks them itself when the pool is first used
    pool_options_model: ClassVar[type[BaseModel] | None] = None
    #: ``:config:`` keys this provider reads (the original's global vSphere keys): each becomes the default
    #: of the option of the same name, which the ``:providers:`` section may still set
    global_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, options: ProviderOptions | None = None) -> None:
        self.name = name
        # what the registry builds is already this provider's model; a plain one (or none, in
        # tests and scripts) is validated into it here, once for every provider
        if not isinstance(options, self.options_model):
            options = self.options_model.model_validate(options.model_dump() if options else {})
        self.options = options

    @abstractmethod
    async def vms_in_pool(self, pool: PoolTarget) -> list[str]:
        """Names of every VM the provider holds for ``pool`` (the inventory used for leak cleanup)."""

    @abstractmethod
    async def get_vm(self, pool: PoolTarget, name: str) -> VMInfo | None:
        """The VM, or None when the provider has no VM of that name in the pool."""

    @abstractmethod
    async def create_vm(self, pool: PoolTarget, name: str) -> VMInfo:
        """Clone ``pool.template`` into a new VM ``name`` and start it; return once it exists."""

    @abstractmethod
    async def destroy_vm(self, pool: PoolTarget, name: str) -> None:
        """Power off and delete the VM; succeed when it is already gone."""

    @abstractmethod
    async def vm_ready(self, pool: PoolTarget, name: str) -> bool:
        """True once the VM has booted and is reachable; False (not an error) while it is not."""

    @classmethod
    def template_problem(cls, options: ProviderOptions, pool: PoolTarget, template: str) -> str | None:
        """Why ``template`` cannot replace ``pool``'s configured template at run time
        (``POST /config/pooltemplate``), or None when it can. The API asks before storing one and the
        manager before cloning from one; neither runs I/O here, so check only the template's form and
        place. A provider whose templates reach the host's files must refuse arbitrary paths."""
        return None

    async def get_vm_ip_address(self, pool: PoolTarget, name: str) -> str | None:
        vm = await self.get_vm(pool, name)
        return vm.ip if vm else None

    async def create_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        raise NotSupported(f"provider {self.name!r} cannot take snapshots")

    async def revert_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        raise NotSupported(f"provider {self.name!r} cannot revert snapshots")

    async def suspend_vm(self, pool: PoolTarget, name: str) -> None:
        """Save the booted VM's memory and stop it, so it holds no CPU (and, where the platform allows, no
        RAM) until ``resume_vm``; the manager's suspended tier (a pool's ``suspended: N``) needs both."""
        raise NotSupported(f"provider {self.name!r} cannot suspend VMs")

    async def resume_vm(self, pool: PoolTarget, name: str) -> None:
        """Run a suspended VM again from its saved memory: the same machine (name, address, identity).
        Succeeds when it already runs, so a resume interrupted by a crash can simply be repeated."""
        raise NotSupported(f"provider {self.name!r} cannot resume VMs")

    @classmethod
    def suspends(cls) -> bool:
        """Whether this provider implements ``suspend_vm`` and ``resume_vm`` (a pool's ``suspended`` needs it)."""
        return cls.suspend_vm is not Provider.suspend_vm and cls.resume_vm is not Provider.resume_vm

    async def create_disk(self, pool: PoolTarget, name: str, size_gb: int) -> None:
        raise NotSupported(f"provider {self.name!r} cannot add disks")

    async def tag_vm_user(self, pool: PoolTarget, name: str, user: str) -> None:
        """Record who checked the VM out, where the platform supports it; a no-op by default."""
        return None

    async def purge_unconfigured(self, pools: list[PoolTarget]) -> list[str]:
        """Delete what this provider holds that none of ``pools`` (all its configured pools) is for, except
        ``resources_allowlist``; return what was deleted. The manager calls it once at start when
        ``purge_unconfigured_resources`` is set. The default deletes nothing (see ``purges``)."""
        return []

    #: whether purge_unconfigured deletes anything (validate-config reports the option as having no effect if not)
    purges: ClassVar[bool] = False

    async def close(self) -> None:
        """Release connections; called once at shutdown."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "class": type(self).__name__}
