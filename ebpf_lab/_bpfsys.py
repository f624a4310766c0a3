"""Thin ctypes access to the bpf() syscall for what bcc does not expose.

Only two commands: BPF_OBJ_GET_INFO_BY_FD (instruction counts, run statistics)
and BPF_PROG_TEST_RUN (run a program on a crafted packet).
"""
from __future__ import annotations

import ctypes
import os
import platform
from typing import Dict, Optional, Tuple

_NR_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351, "riscv64": 280}
BPF_PROG_TEST_RUN = 10
BPF_OBJ_GET_INFO_BY_FD = 15

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def sys_bpf(cmd: int, attr: ctypes.Array) -> int:
    """The bpf(2) system call: ``bpf(cmd, &attr, sizeof attr)``; raises OSError with errno on failure."""
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        raise OSError(f"bpf() syscall number unknown for {platform.machine()}")
    ret = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(len(attr)))
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return int(ret)



def _u32(buf: bytes, off: int) -> int:
    return int.from_bytes(buf[off:off + 4], "little")


def _u64(buf: bytes, off: int) -> int:
    return int.from_bytes(buf[off:off + 8], "little")


def prog_info(fd: int) -> Dict[str, object]:
    """What the kernel says of a loaded program: ids, sizes, verified instructions, run stats."""
    info = ctypes.create_string_buffer(256)
    attr = ctypes.create_string_buffer(16)
    ctypes.memmove(ctypes.addressof(attr), fd.to_bytes(4, "little") + (256).to_bytes(4, "little")
                   + ctypes.addressof(info).to_bytes(8, "little"), 16)
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    raw = info.raw
    info_len = _u32(attr.raw, 4)
    out: Dict[str, object] = {
        "prog_id": _u32(raw, 4),
        "tag": raw[8:16].hex(),
        "jited_bytes": _u32(raw, 16),
        "xlated_insns": _u32(raw, 20) // 8,
        "name": raw[64:80].split(b"\0", 1)[0].decode(errors="replace"),
        "run_time_ns": _u64(raw, 192) if info_len >= 200 else None,
        "run_cnt": _u64(raw, 200) if info_len >= 208 else None,
        # verified_insns (Linux 5.16+): instructions the verifier walked.
        "verified_insns": _u32(raw, 216) if info_len >= 220 else None,
    }
    return out


def prog_test_run(fd: int, data: bytes, repeat: int = 1, data_size_out: int = 0) -> Tuple[int, int, bytes]:
    """Run a loaded program on ``data`` (BPF_PROG_TEST_RUN). Returns (retval, duration_ns, data_out)."""
    data_in = ctypes.create_string_buffer(data, len(data))
    out_len = data_size_out or len(data) + 256
    data_out = ctypes.create_string_buffer(out_len)
    attr = ctypes.create_string_buffer(80)
    fields = (
        fd.to_bytes(4, "little")            # prog_fd
        + (0).to_bytes(4, "little")          # retval (out)
        + len(data).to_bytes(4, "little")    # data_size_in
        + out_len.to_bytes(4, "little")      # data_size_out (in/out)
        + ctypes.addressof(data_in).to_bytes(8, "little")
        + ctypes.addressof(data_out).to_bytes(8, "little")
        + max(1, repeat).to_bytes(4, "little")
        + (0).to_bytes(4, "little")          # duration (out)
    )
    ctypes.memmove(ctypes.addressof(attr), fields, len(fields))
    sys_bpf(BPF_PROG_TEST_RUN, attr)
    raw = attr.raw
    n_out = _u32(raw, 12)
    return _u32(raw, 4), _u32(raw, 36), data_out.raw[:min(n_out, out_len)]


def bpf_stats_enabled() -> Optional[bool]:
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            return f.read().strip() == "1"
    except OSError:
        return None


def map_info(fd: int) -> Dict[str, int]:
    """type, id, key/value sizes and max_entries of a map (BPF_OBJ_GET_INFO_BY_FD)."""
    info = ctypes.create_string_buffer(88)
    attr = ctypes.create_string_buffer(16)
    ctypes.memmove(ctypes.addressof(attr), fd.to_bytes(4, "little") + (88).to_bytes(4, "little")
                   + ctypes.addressof(info).to_bytes(8, "little"), 16)
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    raw = info.raw
    return {"type": _u32(raw, 0), "id": _u32(raw, 4), "key_size": _u32(raw, 8),
            "value_size": _u32(raw, 12), "max_entries": _u32(raw, 16)}
