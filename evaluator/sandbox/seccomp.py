"""The seccomp profile handed to bubblewrap (`--seccomp FD`): system calls generation has no use for.

Built with libseccomp (through `pyseccomp`), which writes the BPF program and handles the
architecture checks: a system call made through another ABI (32-bit `int 0x80`, x32) kills the
process instead of slipping past the rules. Everything not listed is allowed: PyTorch, NumPy and
Pillow need a wide, changing set of calls, and the sandbox's namespaces, read-only binds, dropped
capabilities and limits already confine them. Documented in the README ("The seccomp profile").
"""

from __future__ import annotations

import errno
import os
from functools import lru_cache

# Denied with EPERM: namespaces and mounts (no user namespace can be created inside, and none of the
# sandbox's own mounts can be undone), kernel keyrings, BPF, tracing other processes, loading
# kernel code, the clock, swap, reboot, accounting, io_uring (a frequent kernel attack surface),
# userfaultfd, file handles that bypass paths, and the terminal-injection ioctl.
DENIED = (
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "ptrace",
    "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "vhangup",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    "iopl", "ioperm", "lookup_dcookie", "uselib", "userfaultfd", "open_by_handle_at",
    "name_to_handle_at", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "personality", "fanotify_init",
)
# clone() with any of these flags creates a namespace (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
# NEWUSER, NEWPID, NEWNET): denied. clone3() passes its flags in memory, where seccomp cannot read
# them, so it answers ENOSYS and the C library falls back to clone(), whose flags it can read.
CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000
TIOCSTI = 0x5412


@lru_cache(maxsize=1)
def program() -> bytes | None:
    """The BPF program, or None where libseccomp or its Python binding is missing."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError):  # the binding, or libseccomp.so.2 itself, is absent
        return None
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    for name in DENIED:
        try:
            rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (OSError, ValueError):  # a call this kernel/architecture does not have
            continue
    for flag in _bits(CLONE_NAMESPACE_FLAGS):
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.add_rule(seccomp.ERRNO(errno.EPERM), "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, TIOCSTI))
    with os.fdopen(os.memfd_create("mnist-eval-seccomp-export", 0), "w+b") as handle:
        try:
            rules.export_bpf(handle)
        except OSError:
            return None
        handle.seek(0)
        return handle.read()


def _bits(mask: int) -> list[int]:
    return [1 << bit for bit in range(mask.bit_length()) if mask >> bit & 1]


def program_fd() -> int | None:
    """A fresh readable file descriptor holding the program (bubblewrap reads it to the end)."""
    bpf = program()
    if bpf is None:
        return None
    fd = os.memfd_create("mnist-eval-seccomp", 0)
    os.write(fd, bpf)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
