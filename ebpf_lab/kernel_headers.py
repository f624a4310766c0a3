"""Kernel headers for bcc: matching when the distribution has them, else a fallback.

bcc compiles every program against kernel headers found through
``/lib/modules/$(uname -r)/build``. When no headers package matches the running
kernel, the lab points bcc at the distribution's nearest generic headers through
bcc's own ``BCC_KERNEL_SOURCE`` variable. Debian splits headers in two halves
(``linux-headers-<v>-<arch>`` and ``linux-headers-<v>-common``) and bcc needs
both in one tree, so the lab builds a tree of symlinks under
``/var/cache/ebpf-lab/kernel-headers/`` — it never writes into ``/lib/modules``.

With fallback headers, tracepoint arguments stay correct (bcc reads them from
the running kernel's tracefs format files) but **kernel struct layouts may
differ**: a lesson must not present a struct field read through them as true.

Run ``python -m ebpf_lab.kernel_headers --prepare`` (set-up does) to build the tree.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
from typing import List, Optional, Tuple

CACHE = os.environ.get("EBPF_LAB_HEADERS_CACHE", "/var/cache/ebpf-lab/kernel-headers")

__all__ = ["HeadersInfo", "headers_info", "prepare"]


@dataclasses.dataclass(frozen=True)
class HeadersInfo:
    """Which headers bcc will compile against."""

    status: str  # "matching", "fallback" or "none"
    kernel: str  # uname -r
    headers: str  # version of the headers used ('' when none)
    path: str  # tree given to bcc ('' when bcc finds it itself)
    detail: str

    @property
    def struct_reads_trustworthy(self) -> bool:
        """False when struct offsets may differ from the running kernel's."""
        return self.status == "matching"


def _arch_suffixes() -> Tuple[str, ...]:
    m = platform.machine()
    return {"x86_64": ("amd64", "generic"), "aarch64": ("arm64", "generic", "generic-64k")}.get(m, ("generic",))


def _vkey(v: str) -> List[int]:
    return [int(x) for x in re.findall(r"\d+", v)]


def _fallback_candidates() -> List[Tuple[str, List[str]]]:
    """[(version, [dirs to merge, common first])], newest first."""
    found = {}
    for d in glob.glob("/usr/src/linux-headers-*"):
        name = os.path.basename(d)[len("linux-headers-"):]
        for suf in _arch_suffixes():
            if name.endswith("-" + suf):
                base = name[: -len(suf) - 1]
                halves = [p for p in (f"/usr/src/linux-headers-{base}-common",
                                      f"/usr/src/linux-headers-{base}") if os.path.isdir(p)]
                found[name] = halves + [d]
    return sorted(found.items(), key=lambda kv: _vkey(kv[0]), reverse=True)


def _matching_build_dir(kernel: str) -> Optional[str]:
    for sub in ("build", "source"):
        p = f"/lib/modules/{kernel}/{sub}"
        if os.path.isdir(os.path.join(p, "include")) or os.path.isfile(os.path.join(p, "Makefile")):
            return p
    return None


def headers_info() -> HeadersInfo:
    """Say which headers bcc will use for the running kernel (does not build anything)."""
    kernel = platform.release()
    env = os.environ.get("BCC_KERNEL_SOURCE")
    build = _matching_build_dir(kernel)
    if build:
        return HeadersInfo("matching", kernel, kernel, "", f"headers for {kernel} in {build}")
    if os.path.exists("/sys/kernel/kheaders.tar.xz"):
        return HeadersInfo("matching", kernel, kernel, "", "the kernel's own headers (/sys/kernel/kheaders.tar.xz)")
    cands = _fallback_candidates()
    if env and not any(env == os.path.join(CACHE, v) for v, _ in cands):
        return HeadersInfo("fallback", kernel, "?", env, f"BCC_KERNEL_SOURCE={env} set by the user")
    if cands:
        v, _ = cands[0]
        return HeadersInfo(
            "fallback", kernel, v, os.path.join(CACHE, v),
            f"no headers package for {kernel}; compiling against the distribution's {v} headers. "
            "Tracepoint arguments stay correct; kernel struct layouts may differ, so lessons "
            "do not read kernel structs through these headers.",
        )
    return HeadersInfo("none", kernel, "", "", "no kernel headers installed")


def prepare(info: Optional[HeadersInfo] = None) -> HeadersInfo:
    """Build the fallback tree if needed and point bcc at it (sets BCC_KERNEL_SOURCE)."""
    info = info or headers_info()
    if info.status != "fallback" or not info.path.startswith(CACHE):
        return info
    if not os.path.isfile(os.path.join(info.path, ".complete")):
        halves = dict(_fallback_candidates())[info.headers]
        tmp = info.path + f".tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        for half in halves:  # later halves (the arch one) win
            subprocess.run(["cp", "-rsf", half + "/.", tmp + "/"], check=True, timeout=600)
        open(os.path.join(tmp, ".complete"), "w").close()
        shutil.rmtree(info.path, ignore_errors=True)
        os.makedirs(os.path.dirname(info.path), exist_ok=True)
        os.rename(tmp, info.path)
    os.environ["BCC_KERNEL_SOURCE"] = info.path
    return info


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    info = prepare() if "--prepare" in argv else headers_info()
    print(f"kernel {info.kernel}: headers {info.status} ({info.detail})" + (f" -> {info.path}" if info.path else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
