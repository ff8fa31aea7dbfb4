"""The kernel's own unprivileged confinement, over its system calls: Landlock (files, TCP, signal
and abstract-socket scoping), seccomp (no new processes, programs or sockets; signals only to
itself), `PR_SET_NO_NEW_PRIVS` and rlimits. All of it holds for root as well.

Runs in the model runners (`app/sandbox/runner.py`), which import it as a plain module, and in
the API process, which only asks the kernel what it supports (`support()`). Standard library only.

References: Documentation/userspace-api/landlock.rst and seccomp_filter.rst in the kernel tree."""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import struct
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
PR_GET_SECCOMP = 21
PR_SET_PDEATHSIG = 1
SECCOMP_MODE_FILTER = 2

# Landlock: the same numbers on every architecture (the generic syscall table).
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

READ = FS_READ_FILE | FS_READ_DIR
READ_WRITE = (
    READ
    | FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SYM
    | FS_REFER
    | FS_TRUNCATE
)
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV

# The least Landlock ABI the sandbox needs: files (1), TCP (4), signal scoping (6).
REQUIRED_ABI = 6


@dataclass(frozen=True)
class Support:
    """What this kernel offers the sandbox, and what is missing for it to be complete."""

    landlock_abi: int
    seccomp: bool
    architecture: str
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "complete": self.complete}


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is absent or disabled."""
    version = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(version), 0)


def support() -> Support:
    abi = landlock_abi()
    seccomp = _libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0
    arch = platform.machine()
    missing = []
    if abi < REQUIRED_ABI:
        missing.append(
            f"Landlock ABI {REQUIRED_ABI} (Linux 6.12) or later; this kernel has "
            + (f"ABI {abi}" if abi else "no Landlock (or it is not in the lsm= list)")
        )
    if not seccomp:
        missing.append("seccomp filters (CONFIG_SECCOMP_FILTER)")
    if arch not in _SYSCALLS:
        missing.append(f"seccomp syscall table for {arch} (have: {', '.join(_SYSCALLS)})")
    return Support(abi, seccomp, arch, missing)


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def no_new_privileges() -> None:
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


def die_with_parent(sig: int = 9) -> None:
    """SIGKILL (by default) when the process that started this one exits."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "PR_SET_PDEATHSIG")


def restrict_files_and_network(
    read: Iterable[str | Path], read_write: Iterable[str | Path], abi: int
) -> None:
    """Landlock: from now on this process (and what it starts) opens only files under `read`
    (read-only) and `read_write`, binds and connects no TCP port, and (ABI 6) signals and
    reaches abstract sockets of no process outside its own domain. Paths that do not exist are
    skipped. Rights this ABI does not know are left out, as the kernel documents."""
    handled_fs = (1 << 13) - 1
    if abi >= 2:
        handled_fs |= FS_REFER
    if abi >= 3:
        handled_fs |= FS_TRUNCATE
    if abi >= 5:
        handled_fs |= FS_IOCTL_DEV
    handled_net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _check(
        _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, buffer, ctypes.c_size_t(size), 0),
        "landlock_create_ruleset",
    )
    try:
        for paths, rights in ((read, READ), (read_write, READ_WRITE)):
            for path in paths:
                _add_path_rule(ruleset, Path(path), rights & handled_fs)
        no_new_privileges()
        _check(_libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _add_path_rule(ruleset: int, path: Path, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS  # a file takes only the rights that apply to files
        rule = struct.pack("=Qi", rights, fd)  # packed, as the kernel's struct is
        buffer = ctypes.create_string_buffer(rule, len(rule))
        _check(
            _libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, buffer, 0),
            f"landlock_add_rule {path}",
        )
    finally:
        os.close(fd)


# seccomp: classic BPF over `struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6];}`.
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL_PROCESS, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_CLONE_THREAD = 0x00010000
_X32_SYSCALL_BIT = 0x40000000
_ARG0 = 16  # low 32 bits of args[0], little-endian

_DENIED = [
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "tkill",
    "pidfd_open",
    "pidfd_getfd",
    "pidfd_send_signal",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "reboot",
]
_SYSCALLS: dict[str, tuple[int, dict[str, int]]] = {
    machine: (audit_arch, {n: int(v) for n, v in (p.split("=") for p in table.split())})
    for machine, audit_arch, table in (
        (
            "x86_64",
            0xC000003E,
            "socket=41 clone=56 fork=57 vfork=58 execve=59 kill=62 ptrace=101 rt_sigqueueinfo=129 "
            "pivot_root=155 chroot=161 mount=165 umount2=166 swapon=167 reboot=169 "
            "init_module=175 delete_module=176 tkill=200 tgkill=234 kexec_load=246 add_key=248 "
            "request_key=249 keyctl=250 unshare=272 rt_tgsigqueueinfo=297 perf_event_open=298 "
            "setns=308 process_vm_readv=310 process_vm_writev=311 finit_module=313 bpf=321 "
            "execveat=322 userfaultfd=323 pidfd_send_signal=424 io_uring_setup=425 "
            "pidfd_open=434 clone3=435 pidfd_getfd=438",
        ),
        (
            "aarch64",
            0xC00000B7,
            "umount2=39 mount=40 pivot_root=41 chroot=51 unshare=97 kexec_load=104 "
            "init_module=105 delete_module=106 ptrace=117 kill=129 tkill=130 tgkill=131 "
            "rt_sigqueueinfo=138 reboot=142 socket=198 add_key=217 request_key=218 keyctl=219 "
            "clone=220 execve=221 swapon=224 rt_tgsigqueueinfo=240 perf_event_open=241 "
            "setns=268 process_vm_readv=270 process_vm_writev=271 finit_module=273 bpf=280 "
            "execveat=281 userfaultfd=282 pidfd_send_signal=424 io_uring_setup=425 "
            "pidfd_open=434 clone3=435 pidfd_getfd=438",
        ),
    )
}


def seccomp_filter(*, zygote: bool) -> bytes:
    """The BPF program: no programs run (execve), no sockets opened (so no network of any kind,
    Unix sockets included), no tracing, mounts, namespaces, keys, BPF or modules; signals only
    to this process, and no new processes (threads are allowed). The zygote's filter leaves
    out those two, since it forks the runners, whose own filter then holds for their pid."""
    arch, numbers = _SYSCALLS[platform.machine()]
    pid = os.getpid()
    program: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, 4),
        (_JEQ, 1, 0, arch),
        (_RET, 0, 0, _KILL_PROCESS),
        (_LD_W_ABS, 0, 0, 0),
    ]
    if arch == 0xC000003E:  # x32 numbers would slip past the table
        program += [(_JGE, 0, 1, _X32_SYSCALL_BIT), (_RET, 0, 0, _ERRNO | errno.EPERM)]

    def refuse(name: str, code: int) -> None:
        if name in numbers:
            program.extend([(_JEQ, 0, 1, numbers[name]), (_RET, 0, 0, _ERRNO | code)])

    refuse("socket", errno.EACCES)
    for name in _DENIED:
        refuse(name, errno.EPERM)
    refuse("clone3", errno.ENOSYS)  # the C library falls back to clone, checked below
    if zygote:
        program.append((_RET, 0, 0, _ALLOW))
        return _assembled(program)
    refuse("fork", errno.EPERM)
    refuse("vfork", errno.EPERM)
    if "clone" in numbers:  # a thread shares this process; anything else is a new one
        program += [
            (_JEQ, 0, 4, numbers["clone"]),
            (_LD_W_ABS, 0, 0, _ARG0),
            (_JSET, 0, 1, _CLONE_THREAD),
            (_RET, 0, 0, _ALLOW),
            (_RET, 0, 0, _ERRNO | errno.EPERM),
        ]
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):  # to itself only
        program += [
            (_JEQ, 0, 4, numbers[name]),
            (_LD_W_ABS, 0, 0, _ARG0),
            (_JEQ, 1, 0, pid),
            (_RET, 0, 0, _ERRNO | errno.EPERM),
            (_RET, 0, 0, _ALLOW),
        ]
    program.append((_RET, 0, 0, _ALLOW))
    return _assembled(program)


def _assembled(program: list[tuple[int, int, int, int]]) -> bytes:
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def restrict_system_calls(*, zygote: bool = False) -> None:
    program = seccomp_filter(zygote=zygote)
    count = len(program) // 8
    buffer = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(count, ctypes.cast(buffer, ctypes.c_void_p))
    no_new_privileges()
    _check(
        _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0),
        "seccomp filter",
    )


def limit_resources(*, memory_bytes: int, max_threads: int, max_file_bytes: int) -> None:
    """Private memory (RLIMIT_DATA: heap and anonymous mappings), so a runaway allocation
    fails; threads and processes of this user (not counted by the kernel for root; seccomp
    refuses new processes anyway); the largest file it may write; no core dumps."""
    for limit, value in (
        (resource.RLIMIT_DATA, memory_bytes),
        (resource.RLIMIT_NPROC, max_threads),
        (resource.RLIMIT_FSIZE, max_file_bytes),
        (resource.RLIMIT_CORE, 0),
    ):
        _, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(limit, (value, value))
