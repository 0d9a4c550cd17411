"""Builds a tiny bootable test guest (kernel, initramfs, template disk) from Debian packages, cached.

``build_guest(cache_dir)`` returns a ``Guest``; the files are made once and reused while ``cache_dir``
holds them (``guest_key()`` names a cache directory that changes when the recipe or kernel changes).

1. the kernel: the package the ``linux-image-amd64`` metapackage depends on is fetched with
   ``apt-get download`` (``apt-get update`` first only when that fails) and unpacked with
   ``dpkg-deb -x``, never installed;
2. the initramfs (newc cpio, gzip, written here): a static busybox with its applet links, the modules
   for virtio, e1000 and ext4 with every dependency (read from each module's ``depends=`` field,
   since the package ships no modules.dep; ``.ko.xz`` modules are decompressed here because busybox
   ``insmod`` may not read xz) and an ``/init`` script;
3. the template disk: a 64 MiB ext4 file system holding one marker file, converted to qcow2.

The guest's ``/init`` mounts proc/sys/dev, loads the modules, takes its hostname from
``vmpooler.hostname=`` on the kernel command line, configures eth0 with the user-mode (slirp) address,
mounts ``/dev/vda`` when present, and answers on port 22 with one line, ``SSH-2.0-vmpooler_testguest
<hostname> disk=<ok|none> hostkey=<hash> mac=<eth0's MAC> random=<32 bytes of /dev/urandom, hex>
count=<banners served> disks=vda[,vdb...]``, and on port 80 over HTTP (the line as it was at boot). A
test that reads the banner through the reported address proves it reached that very guest, booted
from the template disk; ``count`` and ``disks`` show a revert and a new disk. ``hostkey`` stands for
SSH host keys (32 random bytes made at boot); ``/bin/agent`` gives a clone restored from a saved
memory state a new name, MAC and host key (see ``AGENT_SCRIPT``), which ``hostkey``/``mac``/``random`` show.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import lzma
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KERNEL_METAPACKAGE = "linux-image-amd64"
BUSYBOX = Path("/bin/busybox")
#: the modules the guest loads (dependencies are added): network, disk, and the checksum ext4 asks for
WANTED_MODULES = ("virtio_pci", "virtio_net", "e1000", "virtio_blk", "crc32c_generic", "ext4", "virtio_console")
TEMPLATE_MARKER = "vmpooler-template"
BANNER_PREFIX = "SSH-2.0-vmpooler_testguest"
#: the virtio-serial port the thaw agent listens on (the provider's ``thaw.AGENT_PORT``)
AGENT_PORT = "org.vmpooler.agent"
DOWNLOAD_TIMEOUT = 600.0

INIT_SCRIPT = f"""#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /etc/modules); do insmod "/lib/modules/$module.ko" 2>/dev/null; done
name=testguest
for word in $(cat /proc/cmdline); do
    case "$word" in vmpooler.hostname=*) name="${{word#vmpooler.hostname=}}" ;; esac
done
hostname "$name"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
disk=none
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.2; done
mkdir -p /mnt/template
if mount -t ext4 /dev/vda /mnt/template && [ -f /mnt/template/{TEMPLATE_MARKER} ]; then disk=ok; fi
echo "$disk" > /etc/template-disk
/bin/new-host-key
/bin/agent &
mkdir -p /www
/bin/banner > /www/index.html
httpd -p 80 -h /www
nc -ll -p 22 -e /bin/banner &
echo "vmpooler test guest $name ready (disk=$disk)" > /dev/console
while true; do sleep 3600; done
"""


# run for every connection to port 22, so it reports the guest as it is now: how many banners it has
# served (a counter in guest memory, which a snapshot revert winds back) and its block devices (a
# hot-plugged disk appears)
BANNER_SCRIPT = f"""#!/bin/sh
count=$(( $(cat /etc/banner-count 2>/dev/null || echo 0) + 1 ))
echo "$count" > /etc/banner-count
disks=$(ls /sys/block | grep '^vd' | tr '\\n' ',')
read -r hostkey < /etc/ssh_host_key.id
read -r mac < /sys/class/net/eth0/address
random=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
echo "{BANNER_PREFIX} $(hostname) disk=$(cat /etc/template-disk) hostkey=$hostkey mac=$mac random=$random \
count=$count disks=${{disks%,}}"
"""

# the stand-in for ssh-keygen: 32 random bytes, and the short hash the banner shows (made once, not per banner,
# so that the banner stays quick under TCG)
NEW_HOST_KEY_SCRIPT = """#!/bin/sh
head -c 32 /dev/urandom > /etc/ssh_host_key
sha256sum /etc/ssh_host_key | cut -c1-16 > /etc/ssh_host_key.id
"""

# the thaw agent of a clone restored from a saved memory state (vmpooler.providers.qemu.thaw): on the host's
# "thaw <hostname> <mac> <hex entropy>" over the virtio-serial port it takes the new name and MAC, mixes the
# entropy in and makes a new host key (the stand-in for ssh-keygen), then answers "thawed <hostname> <mac>".
# A port with no host connected reads as end-of-file at once, hence the pause before it is opened again.
AGENT_SCRIPT = f"""#!/bin/sh
device=
for port in /sys/class/virtio-ports/*; do
    [ "$(cat "$port/name" 2>/dev/null)" = {AGENT_PORT} ] && device="/dev/${{port##*/}}"
done
[ -n "$device" ] || exit 0
while true; do
    exec 3<>"$device"
    while read -r verb name mac seed <&3; do
        [ "$verb" = thaw ] || continue
        echo "$seed" > /dev/urandom
        hostname "$name"
        if ! ip link set eth0 address "$mac" 2>/dev/null; then
            ip link set eth0 down && ip link set eth0 address "$mac" && ip link set eth0 up
            ip route add default via 10.0.2.2 2>/dev/null
        fi
        arping -U -c 1 -I eth0 10.0.2.15 >/dev/null 2>&1 &
        /bin/new-host-key
        echo "thawed $name $(cat /sys/class/net/eth0/address)" >&3
    done
    exec 3<&-
    sleep 0.2
done
"""


class GuestUnavailable(Exception):
    """The guest cannot be built on this machine; the message says what is missing."""


@dataclass(frozen=True)
class Guest:
    kernel: Path
    initrd: Path
    template_disk: Path


def guest_key() -> str:
    """A short hash of the recipe (this file) and the kernel package it would use: the cache name."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(kernel_package().encode())
    return digest.hexdigest()[:12]


def build_guest(cache_dir: Path) -> Guest:
    """The guest in ``cache_dir``, built there first unless a previous build completed."""
    guest = Guest(cache_dir / "vmlinuz", cache_dir / "initrd.gz", cache_dir / "template.qcow2")
    if (cache_dir / "complete").exists():
        return guest
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir.parent / f".{cache_dir.name}.lock"):
        if (cache_dir / "complete").exists():  # another session built it while we waited
            return guest
        missing = [tool for tool in ("apt-get", "dpkg-deb", "mkfs.ext4", "qemu-img") if shutil.which(tool) is None]
        if missing or not BUSYBOX.exists():
            raise GuestUnavailable(f"cannot build the test guest: missing {', '.join(missing) or BUSYBOX}")
        with tempfile.TemporaryDirectory(prefix="vmpooler-guest-") as scratch:
            work = Path(scratch)
            build = work / "out"
            build.mkdir()
            root = _unpack_kernel(work)
            modules_dir = next((root / "lib/modules").iterdir())
            shutil.copyfile(next((root / "boot").glob("vmlinuz-*")), build / "vmlinuz")
            (build / "initrd.gz").write_bytes(_initramfs(modules_dir))
            _template_disk(work, build / "template.qcow2")
            (build / "complete").write_text(kernel_package() + "\n")
            shutil.rmtree(cache_dir, ignore_errors=True)
            shutil.copytree(build, cache_dir)
    return guest


def kernel_package() -> str:
    """The real kernel package behind ``linux-image-amd64`` (e.g. ``linux-image-6.1.0-26-amd64``)."""
    if shutil.which("apt-cache") is None:
        raise GuestUnavailable("cannot build the test guest: no apt-cache (not a Debian-like system)")
    output = _run(["apt-cache", "depends", KERNEL_METAPACKAGE], 60).stdout
    match = re.search(r"Depends:\s*(linux-image-\S+)", output)
    if match is None:
        raise GuestUnavailable(f"apt-cache knows no kernel behind {KERNEL_METAPACKAGE}: {output.strip()!r}")
    return match.group(1)


def _unpack_kernel(work: Path) -> Path:
    package = kernel_package()
    download = work / "download"
    download.mkdir()
    try:
        _run(["apt-get", "download", package], DOWNLOAD_TIMEOUT, cwd=download)
    except GuestUnavailable:
        _run(["apt-get", "update"], DOWNLOAD_TIMEOUT)
        _run(["apt-get", "download", package], DOWNLOAD_TIMEOUT, cwd=download)
    (deb,) = download.glob("*.deb")
    root = work / "root"
    _run(["dpkg-deb", "-x", str(deb), str(root)], 300)
    return root


def _initramfs(modules_dir: Path) -> bytes:
    archive = _Cpio()
    for directory in ("bin", "sbin", "dev", "etc", "proc", "sys", "mnt", "tmp", "lib", "lib/modules"):
        archive.directory(directory)
    archive.device("dev/console", major=5, minor=1)
    archive.file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
    applets = _run([str(BUSYBOX), "--list"], 30).stdout.split()
    for applet in applets:
        if applet != "busybox":
            archive.symlink(f"bin/{applet}", "busybox")
    archive.file("init", INIT_SCRIPT.encode(), 0o755)
    archive.file("bin/banner", BANNER_SCRIPT.encode(), 0o755)
    archive.file("bin/agent", AGENT_SCRIPT.encode(), 0o755)
    archive.file("bin/new-host-key", NEW_HOST_KEY_SCRIPT.encode(), 0o755)
    order = _load_order(modules_dir, WANTED_MODULES)
    for module, path in order:
        data = path.read_bytes()
        archive.file(f"lib/modules/{module}.ko", lzma.decompress(data) if path.suffix == ".xz" else data, 0o644)
    archive.file("etc/modules", "".join(f"{module}\n" for module, _ in order).encode(), 0o644)
    return gzip.compress(archive.finish(), compresslevel=6, mtime=0)


def _load_order(modules_dir: Path, wanted: tuple[str, ...]) -> list[tuple[str, Path]]:
    """``wanted`` and their dependencies, each after what it depends on; builtin ones are skipped."""
    files = {_module_name(path): path for path in modules_dir.rglob("*.ko*") if path.name.endswith((".ko", ".ko.xz"))}
    builtin = {_module_name(Path(line)) for line in (modules_dir / "modules.builtin").read_text().split()}
    order: dict[str, Path] = {}

    def visit(module: str) -> None:
        module = module.replace("-", "_")
        if module in order or module in builtin:
            return
        path = files.get(module)
        if path is None:
            raise GuestUnavailable(f"kernel module {module} is not in {modules_dir}")
        data = path.read_bytes()
        info = lzma.decompress(data) if path.suffix == ".xz" else data
        found = re.search(rb"\x00depends=([^\x00]*)", info)
        for dependency in found.group(1).decode().split(",") if found else []:
            if dependency:
                visit(dependency)
        order[module] = path

    for module in wanted:
        visit(module)
    return list(order.items())


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def _template_disk(work: Path, target: Path) -> None:
    content = work / "content"
    content.mkdir()
    (content / TEMPLATE_MARKER).write_text("made by tests/support/guest.py\n")
    raw = work / "template.raw"
    with raw.open("wb") as image:
        image.truncate(64 * 1024 * 1024)
    _run(["mkfs.ext4", "-F", "-q", "-L", "vmpooler-tmpl", "-d", str(content), str(raw)], 120)
    _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(target)], 120)


def _run(argv: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GuestUnavailable(f"{argv[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise GuestUnavailable(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return done


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time across processes (parallel test sessions share the cache)."""
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class _Cpio:
    """Writes a newc ("070701") cpio archive, the format the kernel unpacks as an initramfs."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._inode = 1

    def directory(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755, b"")

    def file(self, name: str, data: bytes, mode: int) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, b"", rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, b"", inode=0)
        return self._out.getvalue()

    def _entry(
        self, name: str, mode: int, data: bytes, rdev: tuple[int, int] = (0, 0), inode: int | None = None
    ) -> None:
        encoded = name.encode() + b"\x00"
        if inode is None:
            inode, self._inode = self._inode, self._inode + 1
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (inode, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self._out.write(b"070701" + b"".join(b"%08X" % value for value in fields) + encoded)
        self._pad()
        self._out.write(data)
        self._pad()

    def _pad(self) -> None:
        self._out.write(b"\x00" * (-self._out.tell() % 4))


__all__ = ["BANNER_PREFIX", "Guest", "GuestUnavailable", "build_guest", "guest_key", "kernel_package"]
