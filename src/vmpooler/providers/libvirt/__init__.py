"""The libvirt provider: pools of real VMs as libvirt domains, on this host or one sharing its state directory.

``provider`` (the Provider), ``options`` (its keys), ``connection`` (the lazily opened, reopened
connection), ``domains`` (blocking work on domains), ``domain_xml`` (the XML written and read),
``layout`` (each VM's directory) and ``faults`` (libvirt's errors as ours); what any local hypervisor
shares is in ``providers.localvm``.
"""

from vmpooler.providers.libvirt.options import LibvirtOptions
from vmpooler.providers.libvirt.provider import LibvirtProvider

__all__ = ["LibvirtOptions", "LibvirtProvider"]
