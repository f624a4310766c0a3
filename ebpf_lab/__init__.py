"""ebpf-lab: a Jupyter workbook that teaches eBPF with bcc on the running kernel.

Public API (everything else is private and may change)::

    from ebpf_lab import doctor, lessons, get_lesson, KmallocLesson, LabError

Every lesson class (discovered from ``ebpf_lab/lessons/``), the error tree, ``program_path`` (a program file's path),
``kprobes_available`` and ``receive_path_figure`` are here; ``ebpf_lab.bpf``
builds, loads and attaches programs (its ``HOOK_KINDS`` table). Modules and
names starting with ``_`` are private.
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

# public name -> "module:attribute", imported on first use: importing ebpf_lab stays cheap (no bcc, no LLVM)
_LAZY = {
    "doctor": "ebpf_lab.diagnose:doctor",
    "lessons": "ebpf_lab.catalog:lessons",
    "get_lesson": "ebpf_lab.catalog:get_lesson",
    "lesson_files": "ebpf_lab.catalog:lesson_files",
    "Lesson": "ebpf_lab.engine:Lesson",
    "Param": "ebpf_lab.engine:Param",
    "Hook": "ebpf_lab.bpf:Hook",
    "program_path": "ebpf_lab.bpf:program_path",
    "kprobes_available": "ebpf_lab._kernel:kprobes_available",
    "receive_path_figure": "ebpf_lab.lessons._net:receive_path_figure",
}


def _lesson_classes() -> dict:
    """Every lesson class by name, as discovered from ebpf_lab/lessons/ (read with ast: nothing is imported)."""
    from .catalog import discover

    return {f.cls: f.target for f in discover("lessons")}


_LAZY.update(_lesson_classes())  # each lesson class is public the moment its module exists

__all__ = [
    "__version__",
    *_LAZY,
    "LabError",
    "PrivilegeError",
    "FeatureUnavailable",
    "CompileError",
    "VerifierError",
    "AttachError",
    "LessonStateError",
    "LabParameterError",
]


def __getattr__(name: str) -> object:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'ebpf_lab' has no attribute {name!r}")
    import importlib

    mod, _, attr = target.partition(":")
    return getattr(importlib.import_module(mod), attr)
