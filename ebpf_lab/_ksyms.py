"""Kernel addresses -> function names, for whole numpy arrays at once.

``/proc/kallsyms`` is read once per lookup (~5 MB, ~0.1 s) and parsed with
numpy, without a Python loop over its 100,000+ lines: the line starts are
found with one comparison, the 16 hex digits of every address decoded as a
(lines, 16) matrix, and only text symbols (types t/T/w/W: code) kept, sorted.
A lookup is then one ``searchsorted`` for all the distinct addresses: each
address gets the function whose start is at or below it (as bcc's
``BPF.ksym(addr)`` does), and only the names of the functions hit are
decoded. Addresses below the first symbol, or with kallsyms hidden (all
zero: not root, or kptr_restrict), come back as hex text.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np



def _load(path: str = "/proc/kallsyms") -> Tuple[np.ndarray, np.ndarray, np.ndarray, bytes]:
    with open(path, "rb") as f:
        data = f.read()
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    starts = starts[starts + 19 < len(buf)]
    # "ffffffff81000000 T _stext [module]": type at +17, name from +19
    kind = buf[starts + 17]
    text = np.isin(kind, np.frombuffer(b"tTwW", np.uint8))
    starts = starts[text]
    # 16 hex digits, one column at a time (no (lines, 16) matrix: this table stays small)
    nib = np.full(256, 0, np.uint64)
    nib[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10, dtype=np.uint64)
    nib[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16, dtype=np.uint64)
    addrs = np.zeros(len(starts), np.uint64)
    for k in range(16):
        addrs = (addrs << np.uint64(4)) | nib[buf[starts + k]]
    order = np.argsort(addrs, kind="stable")
    addrs, starts = addrs[order], starts[order]
    name_end = np.searchsorted(ends, starts)  # the newline of each line
    line_end = ends[np.minimum(name_end, len(ends) - 1)]
    return addrs, starts + 19, line_end, data


def table() -> Tuple[np.ndarray, np.ndarray, np.ndarray, bytes]:
    """(sorted addresses, name offsets, line ends, the file's bytes), read afresh (~12 MB, freed after use:
    a collection's peak memory matters more than 0.1 s, and modules loaded since are seen)."""
    return _load()


def names(addrs: np.ndarray) -> List[str]:
    """Function names of distinct kernel addresses (0 -> '')."""
    a = np.asarray(addrs, dtype=np.uint64)
    if not len(a):
        return []
    try:
        syms, name_at, line_end, data = table()
    except OSError:
        syms = np.zeros(0, np.uint64)
    if len(syms) == 0 or not syms.any():  # kallsyms hidden: all addresses read as 0
        return ["" if x == 0 else hex(int(x)) for x in a.tolist()]
    i = np.searchsorted(syms, a, side="right") - 1
    out: List[str] = []
    for x, k in zip(a.tolist(), i.tolist()):
        if x == 0:
            out.append("")
        elif k < 0:
            out.append(hex(x))
        else:
            raw = data[name_at[k]:line_end[k]]
            out.append(raw.split(b"\t", 1)[0].split(b" ", 1)[0].decode(errors="replace"))
    return out
