"""Run a command as llama.cpp runs on a CPU without AMX, on a CPU that has it.

Linux hands AMX to a process only when it asks (``arch_prctl(ARCH_REQ_XCOMP_PERM)``);
llama.cpp asks once, and without the permission it registers no AMX buffers and
repacks weights for the CPU's other instructions only, as on a CPU without AMX.
A seccomp filter here refuses that one request (EPERM) for the command and
everything it starts; every other system call is untouched. This is for
measuring weight repacking without AMX (bench/answer.py's figures), not for use.

Run: .venv/bin/python bench/no_amx.py COMMAND [ARG...]
  e.g. RAG_LLM_REPACK=on .venv/bin/python bench/no_amx.py .venv/bin/python bench/answer.py
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM = 158, 0x1023  # x86-64
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, EPERM = 0x7FFF0000, 0x00050000, 1
LD_ABS_W, JEQ_K, RET_K = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def refuse_amx() -> None:
    """Install the filter in this process (inherited by what it executes)."""
    program = [
        (LD_ABS_W, 0, 0, 0),                      # seccomp_data.nr
        (JEQ_K, 0, 3, SYS_ARCH_PRCTL),            # not arch_prctl: allow
        (LD_ABS_W, 0, 0, 16),                     # args[0], low 32 bits
        (JEQ_K, 0, 1, ARCH_REQ_XCOMP_PERM),       # another arch_prctl: allow
        (RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        (RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
    filters = (SockFilter * len(program))(*(SockFilter(*ins) for ins in program))
    prog = SockFprog(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                                                                  ctypes.byref(prog), 0, 0):
        raise OSError(ctypes.get_errno(), "cannot install the seccomp filter")


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        raise SystemExit("bench/no_amx.py works on Linux x86-64 only")
    refuse_amx()
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
