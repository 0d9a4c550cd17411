"""The ``:providers: :libvirt:`` keys: the shared local-VM keys plus where libvirt is and how long it may take."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field

from vmpooler.providers.localvm.options import LocalVMOptions


class LibvirtOptions(LocalVMOptions):
    """``:providers: :libvirt:`` keys: the shared local-VM keys plus the libvirt connection.

    ``state_dir`` holds each VM's overlay, added disks and console log; the libvirt daemon opens
    them by path, so it must run on this host (or see the directory at the same path) and its QEMU
    user must be able to read it.
    """

    uri: str = Field("qemu:///system", description="The libvirt connection URI, e.g. qemu:///system.")
    #: the QEMU machine type, which libvirt expands to the newest version (``pc``: i440fx; ``q35`` works too)
    machine_type: str = "pc"
    #: the QEMU binary libvirt runs (the domain's ``<emulator>``); none: libvirt's own choice. Also the
    #: binary ``accel: auto`` tries KVM with when libvirt is local
    emulator: str | None = None
    #: seconds opening the connection may take
    connect_timeout: float = Field(30.0, gt=0)
    #: seconds any other libvirt call may take (starting a domain included)
    call_timeout: float = Field(60.0, gt=0)
    #: seconds a snapshot or a revert may take: both copy the whole guest memory
    snapshot_timeout: float = Field(300.0, gt=0)

    def is_local(self) -> bool:
        """True when the URI names no remote host: overlays, KVM and the neighbour table are this host's."""
        return not urlsplit(self.uri).hostname
