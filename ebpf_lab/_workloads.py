"""Built-in workloads: small C programs compiled on first use and cached."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from importlib import resources

from .errors import FeatureUnavailable

BIN_CACHE = os.environ.get("EBPF_LAB_BIN_CACHE", "/var/cache/ebpf-lab/bin")


def source_path(name: str) -> str:
    return str(resources.files("ebpf_lab") / "workloads" / f"{name}.c")


def _digest(src: str, extra_flags: tuple) -> str:
    """What the binary is built from: the source, the headers beside it (``#include "x.h"``), the flags."""
    h = hashlib.sha256()
    folder = os.path.dirname(src)
    for path in [src] + sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".h")):
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + b"\0" + f.read())
    h.update(repr(extra_flags).encode())
    return h.hexdigest()[:12]


def binary(name: str, extra_flags: tuple = ()) -> str:
    """Path of the compiled workload ``name`` (ebpf_lab/workloads/NAME.c), building it if needed.

    The cached binary is named by a digest of the source, the headers of ebpf_lab/workloads
    (a shared header changed rebuilds every workload) and the flags.
    """
    src = source_path(name)
    digest = _digest(src, extra_flags)
    out = os.path.join(BIN_CACHE, f"{name}-{digest}")
    if os.path.exists(out):
        return out
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise FeatureUnavailable("cc",
                                 f"building the workload {name}: no C compiler; install gcc (sudo apt-get install gcc libc6-dev)")
    os.makedirs(BIN_CACHE, exist_ok=True)
    tmp = f"{out}.tmp{os.getpid()}"
    try:
        r = subprocess.run([cc, "-O2", "-o", tmp, src, *extra_flags], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise FeatureUnavailable("cc", f"building the workload {name}: {cc} did not finish within 300 s "
                                       "(an overloaded machine?); try again") from None
    if r.returncode != 0:
        raise FeatureUnavailable("cc", f"building the workload {name} failed:\n{r.stderr}")
    os.replace(tmp, out)
    return out
