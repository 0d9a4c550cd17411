"""How each API version shapes the same answer: FQDN hostnames (v3) or short names plus ``domain`` (v1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmpooler.api.services.vms import VMView
from vmpooler.domain import Checkout


@dataclass(frozen=True, slots=True)
class Flavor:
    """One API version's reply conventions."""

    name: str
    fqdn_hostnames: bool
    domain_key: bool

    def hostname(self, name: str, domain: str | None) -> str:
        return f"{name}.{domain}" if self.fqdn_hostnames and domain else name

    def checkout_body(self, taken: list[Checkout], domain_of: Callable[[str], str | None]) -> dict[str, Any]:
        """``{"<requested>": {"hostname": h | [h, ...]}}``: a list once a name got two or more VMs."""
        grouped: dict[str, list[str]] = {}
        fallbacks: dict[str, set[str]] = {}
        domains: set[str] = set()
        for vm in taken:
            domain = domain_of(vm.pool)
            if domain:
                domains.add(domain)
            grouped.setdefault(vm.requested, []).append(self.hostname(vm.hostname, domain))
            if vm.fallback:
                fallbacks.setdefault(vm.requested, set()).add(vm.pool)
        body: dict[str, Any] = {
            requested: {"hostname": names[0] if len(names) == 1 else names} for requested, names in grouped.items()
        }
        for requested, pools in fallbacks.items():
            # an addition to the original's shape: served by these fallback pools, not the one asked for
            body[requested]["fallback"] = sorted(pools)
        if self.domain_key and domains:
            body["domain"] = sorted(domains)[0]
        return body

    def vm_body(self, view: VMView) -> dict[str, Any]:
        fields = dict(view.fields)
        if self.domain_key:
            if view.domain:
                fields["domain"] = view.domain
        elif view.domain:
            fields["fqdn"] = f"{view.name}.{view.domain}"
        return {view.name: fields}


V3 = Flavor("v3", fqdn_hostnames=True, domain_key=False)
V2 = Flavor("v2", fqdn_hostnames=True, domain_key=False)
#: the seed README's unversioned paths, as API v1 answered them
V1 = Flavor("v1", fqdn_hostnames=False, domain_key=True)
