"""The option fields every local-hypervisor provider shares, and their per-pool resolution."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vmpooler.config import describe
from vmpooler.domain import PoolTarget
from vmpooler.errors import PermanentProviderError
from vmpooler.providers.base import ProviderOptions

Network = Literal["user", "bridge"]
ReadyProbe = Literal["ssh", "http", "tcp"]
Accel = Literal["auto", "kvm", "tcg"]
Port = Annotated[int, Field(ge=1, le=65535)]


class MachineOptions(BaseModel):
    """What a pool may set for its own VMs (per-pool keys override the provider's)."""

    model_config = ConfigDict(extra="ignore")

    memory_mb: int | None = Field(None, ge=16)
    cpus: int | None = Field(None, ge=1, le=64)
    network: Network | None = None
    bridge: str | None = None
    ready_probe: ReadyProbe | None = None
    guest_port: Port | None = None
    kernel: str | None = None
    initrd: str | None = None
    append: str | None = None


class LocalVMOptions(ProviderOptions):
    """The ``:providers: <name>:`` keys of a provider that runs VMs on this host. A pool may set
    ``memory_mb``, ``cpus``, ``network``, ``bridge``, ``ready_probe``, ``guest_port``, ``kernel``,
    ``initrd`` and ``append`` for its own VMs; the pool's ``template`` is the path of a qcow2 base image."""

    #: the directory of every VM's overlay, metadata, pid file, sockets and logs (default ``.vmpooler/<provider name>``;
    #: a relative one is under the state folder, --state-dir)
    state_dir: str | None = None
    path_options = ("state_dir",)
    #: memory of each VM, MiB
    memory_mb: int = Field(1024, ge=16)
    #: virtual CPUs of each VM
    cpus: int = Field(1, ge=1, le=64)
    #: ``user``: user-mode networking, a host port forwarded to the guest; ``bridge``: a tap on ``bridge``
    network: Network = "user"
    #: the host bridge of ``network: bridge`` (qemu-bridge-helper must allow it in /etc/qemu/bridge.conf)
    bridge: str = "virbr0"
    #: what makes a VM ready: an SSH banner, an HTTP answer, or (bridge only) an accepted connection
    ready_probe: ReadyProbe = "ssh"
    #: the guest port the probe and the forward reach
    guest_port: Port = 22
    #: a kernel to boot directly (the guest reads its name from ``vmpooler.hostname=`` on its command line)
    kernel: str | None = None
    #: the initramfs booted with ``kernel``
    initrd: str | None = None
    #: the kernel command line with ``kernel``; ``vmpooler.hostname=<name>`` is added to it
    append: str = "console=ttyS0 quiet"
    #: ``auto``: KVM when it really works here, else TCG emulation; ``kvm`` fails when KVM does not work
    accel: Accel = "auto"
    #: the host address user-mode forwards listen on; 0.0.0.0 lets other machines reach the VMs
    listen_address: str = "127.0.0.1"
    #: the host name or address reported as the VM's address with user networking
    advertise_host: str | None = None
    #: host ports handed out for user-mode forwards; keep them outside the kernel's ephemeral range
    port_range: tuple[Port, Port] = (17000, 17999)
    #: seconds one readiness probe may take
    probe_timeout: float = Field(3.0, gt=0)
    #: the qemu-img command that makes overlays and disks
    qemu_img: str = "qemu-img"
    #: the directory templates set at run time (``POST /config/pooltemplate``) must be in; unset, the
    #: directory of the pool's configured template
    image_dir: str | None = None

    @model_validator(mode="after")
    def _check_port_range(self) -> LocalVMOptions:
        low, high = self.port_range
        if low > high:
            raise ValueError(f"port_range: {low} is above {high}")
        return self

    def state_path(self, provider_name: str) -> Path:
        return Path(self.state_dir or Path(".vmpooler") / provider_name).expanduser().absolute()


def template_problem(options: ProviderOptions, pool: PoolTarget, template: str) -> str | None:
    """A run-time template must be an image inside ``image_dir`` (or beside the configured template):
    it becomes the backing file of every overlay, so ``/etc/shadow`` must never be one."""
    image_dir = options.image_dir if isinstance(options, LocalVMOptions) else None
    allowed = Path(image_dir or Path(pool.template).expanduser().absolute().parent).expanduser().absolute()
    # resolved, so neither ``..`` nor a symbolic link leads out of the directory
    wanted = Path(os.path.realpath(Path(template).expanduser().absolute()))
    if not wanted.is_relative_to(os.path.realpath(allowed)) or wanted == Path(os.path.realpath(allowed)):
        return f"a template must be an image in {allowed}"
    return None


@dataclass(frozen=True)
class Machine:
    """One pool's VM shape: the provider's options with the pool's own keys laid over them."""

    memory_mb: int
    cpus: int
    network: Network
    bridge: str
    ready_probe: ReadyProbe
    guest_port: int
    kernel: Path | None
    initrd: Path | None
    append: str


def machine_for(options: LocalVMOptions, pool_name: str, pool_options: dict[str, Any]) -> Machine:
    """The shape of ``pool_name``'s VMs; PermanentProviderError names the pool key that is wrong."""
    try:
        own = MachineOptions.model_validate(pool_options)
    except ValidationError as exc:
        problems = "; ".join(describe(exc, wording="terse"))
        raise PermanentProviderError(f"pool {pool_name!r} options: {problems}") from exc
    kernel = own.kernel or options.kernel
    initrd = own.initrd or options.initrd
    return Machine(
        memory_mb=own.memory_mb or options.memory_mb,
        cpus=own.cpus or options.cpus,
        network=own.network or options.network,
        bridge=own.bridge or options.bridge,
        ready_probe=own.ready_probe or options.ready_probe,
        guest_port=own.guest_port or options.guest_port,
        kernel=Path(kernel).expanduser() if kernel else None,
        initrd=Path(initrd).expanduser() if initrd else None,
        append=own.append if own.append is not None else options.append,
    )
