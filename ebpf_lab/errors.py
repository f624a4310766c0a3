"""The exceptions ebpf-lab raises, all in one place.

Every error says what the lab was doing, then why it failed, then what to do::

    LabError                    root: catch this to catch everything below
    ├── PrivilegeError          not root / missing capabilities
    ├── FeatureUnavailable      the kernel or machine lacks a feature (names it)
    ├── CompileError            clang rejected the C source (carries the log)
    ├── VerifierError           the kernel's verifier rejected a program (carries the log)
    ├── AttachError             a hook could not be attached
    ├── LessonStateError        a step was used out of order (e.g. collect before attach)
    └── LabParameterError       an absurd or mistyped parameter

bcc itself raises bare ``Exception``; the lab wraps those in the types above.
"""
from __future__ import annotations

__all__ = [
    "LabError",
    "PrivilegeError",
    "FeatureUnavailable",
    "CompileError",
    "VerifierError",
    "AttachError",
    "LessonStateError",
    "LabParameterError",
]


class LabError(Exception):
    """Root of every error ebpf-lab raises."""


class PrivilegeError(LabError):
    """The lab needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_NET_ADMIN)."""


class FeatureUnavailable(LabError):
    """The running kernel or machine lacks a feature; ``feature`` names it."""

    def __init__(self, feature: str, message: str) -> None:
        super().__init__(message)
        self.feature = feature


class CompileError(LabError):
    """clang could not compile the program; ``log`` is the compiler's output."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message + (("\n" + log) if log else ""))
        self.log = log


class VerifierError(LabError):
    """The kernel refused to load a program; ``log`` is the verifier's log."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message + (("\n--- verifier log ---\n" + log) if log else ""))
        self.log = log


class AttachError(LabError):
    """A program loaded but could not be attached to its hook."""


class LessonStateError(LabError):
    """A lesson step was called out of order."""


class LabParameterError(LabError, ValueError):
    """A parameter is missing, mistyped or absurd."""
