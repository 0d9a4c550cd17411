"""Chooses the accelerator: KVM when it really runs guest code on this host, TCG (emulation) otherwise.

A present ``/dev/kvm`` is not enough. Nested virtualisation can answer every ioctl and even run
real-mode code, then hang forever when the guest enters protected mode. So after the cheap check
(open ``/dev/kvm``, ``KVM_GET_API_VERSION`` == 12) a throw-away QEMU boots a 64 KiB firmware that
switches real -> protected -> long mode and reports on an ``isa-debug-exit`` port; KVM is used only
when that finishes within a few seconds. The answer is cached for the life of the process.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Literal

from vmpooler.errors import PermanentProviderError
from vmpooler.providers.localvm.options import Accel

log = logging.getLogger("vmpooler.providers.localvm")

Accelerator = Literal["kvm", "tcg"]
KVM_DEVICE = Path("/dev/kvm")
KVM_GET_API_VERSION = 0xAE00
KVM_API_VERSION = 12
PROBE_TIMEOUT = 5.0
#: the firmware writes 0x31 to port 0xf4 from long mode; isa-debug-exit exits with (0x31 << 1) | 1
PROBE_EXIT_STATUS = 99

# Built from this source with `as --32` and `ld -m elf_i386 -Ttext 0 --oformat binary`; it runs
# from the BIOS's low alias at 0xF0000, where the reset vector jumps (see _firmware):
#   cli; xor ax,ax; mov ds,ax; lgdt cs:[gdt_ptr]; cr0 |= PE; ljmp 0x08:pm32
#   pm32: load 0x10 into ds/es/ss; zero 0x1000-0x3fff; PML4[0]=0x2003, PDPT[0]=0x3003,
#         PD[0]=0x83 (identity-map 2 MiB); cr4 |= PAE; cr3 = 0x1000; EFER |= LME; cr0 |= PG;
#         ljmp 0x18:lm64
#   lm64: mov al,0x31; out 0xf4,al; hlt
#   gdt: null, 32-bit code, data, 64-bit code; gdt_ptr: limit, base 0xF0090
_PROBE_CODE = bytes.fromhex(
    "fa31c08ed82e660f0116b0000f20c06683c8010f22c066ea1e000f00080066b810008ed88ec08ed0bf0010000031c0b9000c"
    "0000f3abc7050010000003200000c7050020000003300000c70500300000830000000f20e083c8200f22e0b8001000000f22"
    "d8b9800000c00f320d000100000f300f20c00d000000800f22c0ea85000f001800b031e6f4f48db600000000000000000000"
    "0000ffff0000009acf00ffff00000092cf00ffff0000009aaf001f0090000f00"
)
_HUNG = f"a test guest under KVM did not reach long mode within {PROBE_TIMEOUT:.0f}s"
# coreutils timeout's statuses for a command it stopped; with KILL it may die of the signal itself
_KILLED_BY_TIMEOUT = (124, 128 + signal.SIGKILL, -signal.SIGKILL)
_RESET_VECTOR = 0xFFF0
_FAR_JUMP_TO_F000_0000 = bytes([0xEA, 0x00, 0x00, 0x00, 0xF0])


async def choose(requested: Accel, qemu_binary: str) -> Accelerator:
    """The accelerator to boot with; ``kvm`` asked for on a host where it does not work is an error."""
    if requested == "tcg":
        return "tcg"
    works, why = await asyncio.to_thread(kvm_works, qemu_binary)
    if works:
        return "kvm"
    if requested == "kvm":
        raise PermanentProviderError(f"accel: kvm was asked for, but KVM does not work here: {why}")
    return "tcg"


# A fact about the host, not about one provider: every provider in the process shares the answer,
# so a broken KVM costs one probe time-out per process rather than one per provider or pool.
_verdicts: dict[str, tuple[bool, str]] = {}
_verdicts_lock = threading.Lock()


def kvm_works(qemu_binary: str) -> tuple[bool, str]:
    """(works, why not); probed once per binary per process (blocking: call it in a thread)."""
    qemu_binary = shutil.which(qemu_binary) or qemu_binary  # one verdict whether named by path or not
    with _verdicts_lock:
        if qemu_binary not in _verdicts:
            works, why = _verdicts[qemu_binary] = _probe(qemu_binary)
            if works:
                log.info("accel: KVM works; VMs boot with -accel kvm")
            else:
                log.warning("accel: KVM is not usable (%s); VMs boot with TCG emulation, several times slower", why)
        return _verdicts[qemu_binary]


def _probe(qemu_binary: str) -> tuple[bool, str]:
    try:
        fd = os.open(KVM_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return False, f"cannot open {KVM_DEVICE}: {exc.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        return False, f"KVM_GET_API_VERSION failed: {exc.strerror}"
    finally:
        os.close(fd)
    if version != KVM_API_VERSION:
        return False, f"KVM API version {version}, expected {KVM_API_VERSION}"
    # the firmware lives in an anonymous memory file: nothing to clean up however this process ends
    firmware = os.memfd_create("vmpooler-kvm-probe")
    try:
        os.write(firmware, _firmware())
        argv = [qemu_binary, "-accel", "kvm", "-M", "pc", "-m", "16", "-bios", f"/dev/fd/{firmware}"]
        argv += ["-device", "isa-debug-exit,iobase=0xf4,iosize=1", "-display", "none", "-nodefaults"]
        argv += ["-no-user-config"]
        # a guest hung in KVM must not outlive its time even when this process is killed meanwhile
        # (the manager restarted mid-probe): coreutils' timeout kills it on its own
        killer = shutil.which("timeout")
        if killer:
            argv = [killer, "--signal=KILL", f"{PROBE_TIMEOUT:g}", *argv]
        done = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT + 5, check=False, pass_fds=(firmware,))
    except subprocess.TimeoutExpired:
        return False, _HUNG
    except OSError as exc:
        return False, f"cannot run {qemu_binary}: {exc}"
    finally:
        os.close(firmware)
    if done.returncode in _KILLED_BY_TIMEOUT:
        return False, _HUNG
    if done.returncode != PROBE_EXIT_STATUS:
        detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return False, f"a test guest under KVM failed: {detail[0]}"
    return True, ""


def _firmware() -> bytes:
    """A 64 KiB BIOS image: the probe code at its start and a jump to it at the reset vector."""
    image = bytearray(b"\xf4" * 0x10000)  # hlt everywhere else
    image[: len(_PROBE_CODE)] = _PROBE_CODE
    image[_RESET_VECTOR : _RESET_VECTOR + len(_FAR_JUMP_TO_F000_0000)] = _FAR_JUMP_TO_F000_0000
    return bytes(image)
