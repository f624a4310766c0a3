"""Find the operating system's bcc from any CPython 3 interpreter.

bcc's Python module ships with the OS (Debian/Ubuntu ``python3-bpfcc``, Fedora
``python3-bcc``) as pure Python over ``libbcc.so``. It lives in the system
interpreter's package folder, which a venv, a conda env or pyenv does not see.
PyPI's ``bcc`` is an unrelated project and must never be installed for this.

:func:`import_bcc` imports ``bcc`` normally when it can, else loads just the
``bcc`` package from the OS folder (nothing else from there, so the OS's numpy
or pandas never shadow the environment's) and registers it as ``bcc`` so that
``from bcc import BPF`` works afterwards in a notebook too.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import sys
from types import ModuleType
from typing import List, Optional

from .errors import FeatureUnavailable

INSTALL_HINT = (
    "install the operating system's bcc: `sudo apt-get install python3-bpfcc bpfcc-tools` "
    "(Debian/Ubuntu) or `sudo dnf install python3-bcc bcc-tools` (Fedora/RHEL), "
    "or run `sudo scripts/setup.sh`. Do not `pip install bcc`: that is an unrelated project."
)


def _candidate_dirs() -> List[str]:
    pats = [
        "/usr/lib/python3/dist-packages",
        "/usr/lib/python3*/site-packages",
        "/usr/lib64/python3*/site-packages",
        "/usr/local/lib/python3*/dist-packages",
        "/usr/local/lib/python3*/site-packages",
        "/usr/share/bcc/python",
    ]
    only = os.environ.get("EBPF_LAB_BCC_PATH")
    if only:  # an explicit folder (unusual installs, and tests) replaces the search
        return [only]
    out: List[str] = []
    for pat in pats:
        out.extend(sorted(glob.glob(pat), reverse=True))
    return out


def find_os_bcc() -> Optional[str]:
    """Return the folder holding the OS's ``bcc`` package, or None."""
    for d in _candidate_dirs():
        init = os.path.join(d, "bcc", "__init__.py")
        if os.path.isfile(init) and os.path.isfile(os.path.join(d, "bcc", "libbcc.py")):
            return os.path.join(d, "bcc")
    return None



def import_bcc() -> ModuleType:
    """Import the OS's bcc module, or raise FeatureUnavailable saying what to install."""
    mod = sys.modules.get("bcc")
    if mod is not None and hasattr(mod, "BPF"):
        return mod
    try:
        import bcc  # noqa: F401  (works on the system interpreter)

        if hasattr(bcc, "BPF"):
            return bcc
        # An unrelated PyPI "bcc" shadows the real one: drop it.
        sys.modules.pop("bcc", None)
    except ImportError:
        pass
    except OSError as e:  # libbcc.so missing
        raise FeatureUnavailable("bcc", f"loading bcc failed ({e}); {INSTALL_HINT}") from e
    pkg = find_os_bcc()
    if pkg is None:
        raise FeatureUnavailable("bcc", f"bcc's Python module was not found; {INSTALL_HINT}")
    spec = importlib.util.spec_from_file_location(
        "bcc", os.path.join(pkg, "__init__.py"), submodule_search_locations=[pkg]
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bcc"] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # e.g. libbcc.so missing, syntax too new for this Python
        sys.modules.pop("bcc", None)
        raise FeatureUnavailable(
            "bcc", f"loading bcc from {pkg} with Python {sys.version.split()[0]} failed ({e}); {INSTALL_HINT}"
        ) from e
    return mod


def bcc_version() -> str:
    """bcc's version string, or '' when bcc is absent."""
    try:
        return str(getattr(import_bcc(), "__version__", "unknown"))
    except FeatureUnavailable:
        return ""
