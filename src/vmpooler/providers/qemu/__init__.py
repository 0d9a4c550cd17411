"""The qemu provider: pools of real VMs run as ``qemu-system-x86_64`` processes on this host.

``provider`` (the Provider), ``argv`` (a VM's command line), ``process`` (launch, find, stop) and
``qmp`` (the control socket's client); what any local hypervisor shares is in ``providers.localvm``.
"""

from vmpooler.providers.qemu.provider import QemuOptions, QemuProvider

__all__ = ["QemuOptions", "QemuProvider"]
