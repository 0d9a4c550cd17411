"""What every provider that runs VMs on this host shares (qemu today, libvirt next).

``options`` (the shared option fields and a pool's resolved machine shape), ``records`` (the state
directory: per-VM metadata and file layout), ``images`` (qemu-img overlays, disks, snapshots),
``accel`` (KVM or TCG), ``ports`` (forwarded host ports), ``network`` (MAC and bridged address),
``probe`` (is the guest answering?), ``commands`` (running host tools with time limits) and
``provider`` (the base class both providers extend).
"""

from vmpooler.providers.localvm.options import LocalVMOptions, Machine, machine_for
from vmpooler.providers.localvm.records import RecordStore, VMFiles, VMRecord

__all__ = ["LocalVMOptions", "Machine", "RecordStore", "VMFiles", "VMRecord", "machine_for"]
