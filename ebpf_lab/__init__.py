"""ebpf-lab: a Jupyter workbook that teaches eBPF with bcc on the running kernel.

Public API (everything else is private and may change)::

    from ebpf_lab import doctor, lessons, get_lesson, KmallocLesson, LabError
"""
from __future__ import annotations

from .errors import (
    AttachError,
    CompileError,
    FeatureUnavailable,
    LabError,
    LabParameterError,
    LessonStateError,
    PrivilegeError,
    VerifierError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "doctor",
    "lessons",
    "get_lesson",
    "KmallocLesson",
    "LabError",
    "PrivilegeError",
    "FeatureUnavailable",
    "CompileError",
    "VerifierError",
    "AttachError",
    "LessonStateError",
    "LabParameterError",
]


def __getattr__(name: str):  # lazy: importing ebpf_lab stays cheap (no bcc, no LLVM)
    if name == "doctor":
        from .diagnose import doctor

        return doctor
    if name in ("lessons", "get_lesson"):
        from . import catalog

        return getattr(catalog, name)
    if name == "KmallocLesson":
        from .lessons.kmalloc import KmallocLesson

        return KmallocLesson
    raise AttributeError(f"module 'ebpf_lab' has no attribute {name!r}")
