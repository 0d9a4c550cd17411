"""The base of the providers that run VMs on this host: pool options, template checks, state dir, forwards."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from vmpooler.domain import PoolTarget
from vmpooler.errors import NotSupported, PermanentProviderError, ProviderError, ProviderTimeout
from vmpooler.providers.base import Provider, ProviderOptions
from vmpooler.providers.localvm import options as localvm_options
from vmpooler.providers.localvm.commands import require_binary
from vmpooler.providers.localvm.options import LocalVMOptions, Machine, MachineOptions, machine_for


class LocalVMProvider(Provider):
    """What qemu and libvirt share: a pool's machine shape, its template check, and where state lives."""

    pool_options_model = MachineOptions
    options: LocalVMOptions

    @classmethod
    def template_problem(cls, options: ProviderOptions, pool: PoolTarget, template: str) -> str | None:
        return localvm_options.template_problem(options, pool, template)

    def __init__(self, name: str, options: ProviderOptions | None = None) -> None:
        super().__init__(name, options)
        self.state_dir = self.options.state_path(name)

    @property
    def _local_address(self) -> str:
        """Where this host reaches its own forwards (a wildcard listen address is reached on loopback)."""
        # a comparison, not a bind (bandit B104)
        wildcard = self.options.listen_address in ("0.0.0.0", "")  # nosec B104
        return "127.0.0.1" if wildcard else self.options.listen_address

    async def _clone_inputs(self, pool: PoolTarget) -> tuple[Machine, str, Path]:
        """The pool's machine shape, the qemu-img binary and the template's path, each known to exist."""
        machine = machine_for(self.options, pool.name, pool.provider_options)
        qemu_img = require_binary(self.options.qemu_img)
        return machine, qemu_img, await asyncio.to_thread(_input_files, pool.template, machine)

    @contextlib.contextmanager
    def _about(self, pool: PoolTarget, name: str) -> Iterator[None]:
        """Prefix every provider error with the provider, pool and VM it is about, keeping its kind."""
        try:
            yield
        except ProviderError as exc:
            kinds = (PermanentProviderError, ProviderTimeout, NotSupported, ProviderError)
            kind = next(k for k in kinds if isinstance(exc, k))
            raise kind(f"{self.name}: pool {pool.name!r} VM {name!r}: {exc}") from exc


def _input_files(template: str, machine: Machine) -> Path:
    """The template's absolute path, once it and the machine's kernel and initrd are known to exist."""
    base = Path(template).expanduser().absolute()
    for what, path in (("template", base), ("kernel", machine.kernel), ("initrd", machine.initrd)):
        if path is not None and not path.is_file():
            raise PermanentProviderError(f"{what} {path} does not exist or is not a file")
    return base
