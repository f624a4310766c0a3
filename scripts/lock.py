#!/usr/bin/env python3
"""The locked Python dependencies: one lock file per supported CPython, made from pyproject.toml.

    python3 scripts/lock.py                 regenerate every lock (needs network; installs uv for itself)
    python3 scripts/lock.py --check 3.11    is lock/python3.11.txt made from today's pyproject.toml?
    python3 scripts/lock.py --path 3.11     print the lock file's path for that Python (nothing else)

What is locked: ``[project] dependencies`` plus the ``lab`` and ``test`` extras,
everything scripts/setup.sh installs. Each lock records a hash of those
requirement strings; scripts/setup.sh, vm/image.sh, vm/vagrant-box.sh and
tests/test_lock.py refuse a lock whose hash differs from pyproject.toml's,
naming the command above. Adding or changing a dependency is therefore two
edits in one commit: pyproject.toml, then ``python3 scripts/lock.py``.
Upgrading a locked version is the same command (it resolves afresh) — a
deliberate change that CI then proves.

Runs on Python 3.9+ without third-party modules (bullseye's python3 has no tomllib).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK_DIR = os.path.join(ROOT, "lock")
EXTRAS = ("lab", "test")
REGENERATE = "python3 scripts/lock.py"
UV_VERSION = "0.13.9"  # the resolver; pinned too, so that the same pyproject gives the same lock

#: CPython minor version -> (platform the lock is resolved for, where that Python is the system's)
TARGETS: Dict[str, tuple] = {
    "3.9": ("x86_64-manylinux_2_31", "Debian 11 bullseye"),
    "3.10": ("x86_64-manylinux_2_35", "Ubuntu 22.04 (not tested by CI)"),
    "3.11": ("x86_64-manylinux_2_36", "Debian 12 bookworm"),
    "3.12": ("x86_64-manylinux_2_39", "Ubuntu 24.04 (not tested by CI)"),
    "3.13": ("x86_64-manylinux_2_40", "Debian 13 trixie"),
}


class LockError(Exception):
    pass


# ----------------------------------------------------------- pyproject
def _toml_project(text: str) -> dict:
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        return _mini_toml_project(text)
    return tomllib.loads(text)["project"]


def _mini_toml_project(text: str) -> dict:
    """Just enough TOML for [project] dependencies and [project.optional-dependencies] (Python < 3.11)."""
    def array_after(header: str, key: str) -> Optional[List[str]]:
        sec = re.search(rf"^\[{re.escape(header)}\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        if not sec:
            return None
        m = re.search(rf"^{re.escape(key)}\s*=\s*\[(.*?)\]", sec.group(1), re.M | re.S)
        if not m:
            return None
        body = re.sub(r"#[^\n]*", "", m.group(1))
        return re.findall(r'"([^"]*)"', body)

    project: dict = {"dependencies": array_after("project", "dependencies") or []}
    project["optional-dependencies"] = {e: array_after("project.optional-dependencies", e) or [] for e in EXTRAS}
    return project


def requirements(pyproject: Optional[str] = None) -> List[str]:
    """The requirement strings setup installs: dependencies + the lab and test extras, in pyproject's order."""
    with open(pyproject or os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        project = _toml_project(f.read())
    reqs = list(project.get("dependencies", []))
    for extra in EXTRAS:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    return reqs


def requirements_hash(reqs: List[str]) -> str:
    norm = sorted({re.sub(r"\s+", "", r).lower() for r in reqs})
    return hashlib.sha256("\n".join(norm).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- locks
def lock_path(python: str) -> str:
    return os.path.join(LOCK_DIR, f"python{python}.txt")


def recorded_hash(path: str) -> Optional[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"#\s*requirements-sha256:\s*([0-9a-f]+)", line)
            if m:
                return m.group(1)
    return None


def check(python: str, pyproject: Optional[str] = None) -> str:
    """The lock's path when it exists and was made from pyproject.toml's requirements; LockError otherwise."""
    if python not in TARGETS:
        raise LockError(f"no lock for Python {python}: the lab locks its dependencies for CPython "
                        f"{', '.join(TARGETS)} (see lock/README.md)")
    path = lock_path(python)
    if not os.path.exists(path):
        raise LockError(f"{os.path.relpath(path, ROOT)} is missing; make it with `{REGENERATE}`")
    want = requirements_hash(requirements(pyproject))
    have = recorded_hash(path)
    if have != want:
        raise LockError(f"pyproject.toml's dependencies changed since {os.path.relpath(path, ROOT)} was made "
                        f"(requirements hash {want}, lock made from {have}); regenerate the locks with "
                        f"`{REGENERATE}` and commit them with the pyproject.toml change")
    return path


def _uv() -> str:
    """uv, installed once into a tool venv of its own (never into the project's venv)."""
    tools = os.environ.get("EBPF_LAB_TOOLS", "/var/cache/ebpf-lab/tools")
    venv = os.path.join(tools, f"uv-{UV_VERSION}")
    uv = os.path.join(venv, "bin", "uv")
    if not os.path.exists(uv):
        os.makedirs(tools, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
        subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"],
                       check=True, timeout=600)
    return uv


def generate(pythons: List[str]) -> None:
    reqs = requirements()
    h = requirements_hash(reqs)
    uv = _uv()
    os.makedirs(LOCK_DIR, exist_ok=True)
    env = dict(os.environ)
    # uv does not read pip's configuration; behind a TLS-inspecting proxy it needs the system's CAs.
    if os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
        env.setdefault("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    for py in pythons:
        platform, where = TARGETS[py]
        out = lock_path(py)
        tmp = out + ".tmp"
        cmd = [uv, "pip", "compile", os.path.join(ROOT, "pyproject.toml"), *[a for e in EXTRAS for a in ("--extra", e)],
               "--python-version", py, "--python-platform", platform, "--only-binary", ":all:",
               "--no-header", "--no-annotate", "--quiet", "-o", tmp]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if r.returncode != 0:
            raise LockError(f"uv could not resolve for Python {py}:\n{r.stderr.strip()}")
        with open(tmp, encoding="utf-8") as f:
            body = f.read()
        header = (f"# ebpf-lab: locked Python dependencies for CPython {py} ({where}; resolved for {platform}).\n"
                  f"# Generated by `{REGENERATE}` (uv {UV_VERSION}) from pyproject.toml's dependencies and the\n"
                  f"# extras {', '.join(EXTRAS)}. Do not edit by hand: change pyproject.toml, then regenerate.\n"
                  f"# requirements-sha256: {h}\n")
        with open(out, "w", encoding="utf-8") as f:
            f.write(header + body)
        os.unlink(tmp)
        n = sum(1 for ln in body.splitlines() if re.match(r"^[A-Za-z0-9]", ln))
        print(f"{os.path.relpath(out, ROOT)}: {n} packages")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", metavar="PYVER", help="check the lock of this CPython (e.g. 3.11) against pyproject.toml")
    ap.add_argument("--path", metavar="PYVER", help="print the lock file of this CPython")
    ap.add_argument("--python", action="append", metavar="PYVER", help="regenerate only these (default: all)")
    a = ap.parse_args(argv)
    try:
        if a.path:
            print(lock_path(a.path))
        elif a.check:
            print(check(a.check))
        else:
            generate(a.python or list(TARGETS))
    except LockError as e:
        print(f"lock: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
