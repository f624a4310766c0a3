"""What lessons 01 and 03 share: tracing one system call at entry and return.

The hook is chosen once per lesson object, in this order (``hook="auto"``):

1. kprobe + kretprobe on the syscall's kernel function, where the kernel has kprobes;
2. fentry + fexit on it, for lessons that offer them, only after such a program
   really loaded here (bcc's ``support_kfunc()`` can say yes where the kernel refuses);
3. the tracepoints ``syscalls:sys_enter_<name>`` + ``syscalls:sys_exit_<name>``.

A fallback is never silent: the reason lands in the first hook's note, hence in
``df.attrs['hook_notes']``. A forced hook the kernel lacks raises
:class:`FeatureUnavailable` saying what to use instead.
"""
from __future__ import annotations

import errno
import subprocess
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import pandas as pd

from .. import _kernel
from ..bpf import is_syscall_wrapper, syscall_fnname
from ..engine import Hook, Lesson, lab_headers
from ..errors import FeatureUnavailable, LabError, LabParameterError

__all__ = ["NO_KPROBES", "syscall_fnname", "is_syscall_wrapper", "errno_name", "ReportingLesson", "SyscallLesson"]

NO_KPROBES = "this kernel has no kprobes (CONFIG_KPROBES is not set: tracefs has no kprobe_events)"


def errno_name(ret: int) -> str:
    """``-3`` -> ``ESRCH``; ``0`` or positive -> ``''``: a syscall's result as its errno's name."""
    if ret >= 0:
        return ""
    return errno.errorcode.get(-ret, f"errno {-ret}")


class ReportingLesson(Lesson):
    """A lesson whose workload prints what it did (read once it has ended)."""

    #: how long the workload may take to end once its report is asked for
    report_timeout_s: ClassVar[float] = 60.0

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._report: Optional[pd.DataFrame] = None

    def _workload_output(self) -> str:
        """The workload's standard output, once it has ended (raises if it failed)."""
        wl = self.workload
        if wl is None:
            raise LabError(f"reading the workload's report of lesson {self.id}: no workload ran (call trigger())")
        try:
            out, err = wl.proc.communicate(timeout=self.report_timeout_s)
        except subprocess.TimeoutExpired:
            wl.stop()
            raise LabError(f"reading the workload's report of lesson {self.id}: the workload did not finish "
                           f"in {self.report_timeout_s:.0f} s") from None
        if wl.proc.returncode != 0:
            raise LabError(f"the workload of lesson {self.id} failed (exit {wl.proc.returncode}): {(err or '').strip()}")
        return out


class SyscallLesson(ReportingLesson):
    """A lesson on one system call, seen at entry and at return."""

    #: the system call, e.g. "kill"
    syscall: ClassVar[str]
    #: the hook variants the lesson's one program file offers, each compiled with -DHOOK_<VARIANT>:
    #: "kprobe", "tracepoint" and optionally "fexit"
    variants: ClassVar[Tuple[str, ...]] = ("kprobe", "tracepoint")
    #: the BPF functions of the kprobe and tracepoint variants
    entry_fn: ClassVar[str]
    return_fn: ClassVar[str]

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._variant: Optional[str] = None
        self._note = ""

    # ------------------------------------------------------- hook choice
    def fexit_check(self, fn: str) -> Tuple[bool, str]:
        """(loads, why not) for this lesson's fentry/fexit program; lessons offering fexit override it."""
        return False, "this lesson has no fentry/fexit variant"

    def variant(self) -> str:
        """'kprobe', 'fexit' or 'tracepoint': which program this kernel gets (decided once)."""
        if self._variant is not None:
            return self._variant
        want = self.values["hook"]
        fn = syscall_fnname(self.syscall)
        has_kprobes = _kernel.kprobes_available()
        if want == "kprobe" and not has_kprobes:
            raise FeatureUnavailable("kprobes", f"preparing lesson {self.id} with hook=kprobe: {NO_KPROBES}, so "
                                     f"{fn} cannot be probed; use hook=auto or hook=tracepoint")
        if want == "kprobe" or (want == "auto" and has_kprobes):
            self._variant, self._note = "kprobe", ""
            return self._variant
        why_fexit = ""
        if want == "fexit" or (want == "auto" and "fexit" in self.variants):
            ok, why_fexit = self.fexit_check(fn)
            if ok:
                self._variant = "fexit"
                self._note = f"{NO_KPROBES}; fentry/fexit on {fn} instead" if want == "auto" else "hook=fexit was asked for"
                return self._variant
            if want == "fexit":
                raise FeatureUnavailable("fentry/fexit", f"preparing lesson {self.id} with hook=fexit: {why_fexit}; "
                                         "use hook=auto or hook=tracepoint")
        for ev in (f"sys_enter_{self.syscall}", f"sys_exit_{self.syscall}"):
            if not _kernel.tracepoint_exists("syscalls", ev):
                raise FeatureUnavailable(f"tracepoint syscalls:{ev}", f"preparing lesson {self.id}: this kernel has "
                                         f"neither kprobes nor the tracepoint syscalls:{ev} (CONFIG_FTRACE_SYSCALLS)")
        self._variant = "tracepoint"
        if want == "auto":
            also = f", and fentry/fexit do not work here either ({why_fexit})" if why_fexit else ""
            self._note = (f"{NO_KPROBES}{also}; so instead of a kprobe + kretprobe on {fn} the lesson uses the "
                          f"tracepoints syscalls:sys_enter_{self.syscall} + syscalls:sys_exit_{self.syscall}: "
                          "same arguments, same result")
        else:
            self._note = "hook=tracepoint was asked for"
        return self._variant

    @staticmethod
    def hook_flag(variant: str) -> str:
        """The -D flag that selects a variant's entry points in the program: ``-DHOOK_KPROBE``, ..."""
        return f"-DHOOK_{variant.upper()}"

    def cflags_for(self, variant: str) -> List[str]:
        """The -D flags that compile the program as ``variant``, whatever this kernel allows."""
        if variant not in self.variants:
            raise LabParameterError(f"lesson {self.id}: no hook variant {variant!r}; "
                                    f"its program offers {', '.join(self.variants)}")
        flags = [f for f in Lesson.cflags(self)] + [self.hook_flag(variant)]
        if variant == "tracepoint":
            return flags
        fn = syscall_fnname(self.syscall)
        flags.append(f"-DSYSCALL_WRAPPER={int(is_syscall_wrapper(fn))}")
        if variant == "fexit":
            flags.append(f"-D{self.syscall.upper()}_FN={fn}")
        return flags

    def cflags(self) -> List[str]:
        return self.cflags_for(self.variant())

    def source(self, variant: Optional[str] = None) -> str:
        """The exact C that will be compiled, headed by its -D flags and the hook variant they select.

        ``variant`` ("kprobe", "fexit", "tracepoint") shows the flags another
        variant would get, even one this kernel cannot run; by default, the
        variant this kernel gets.
        """
        chosen = variant or self.variant()
        flags = self.cflags_for(chosen)
        text = self.program_text if self.program_text is not None else open(self.program_file()).read()
        where = "your program" if self.program_text is not None else self.program_file()
        why = f" ({self._note})" if variant is None and self._note else ""
        return (f"// {where}\n// hook variant: {chosen}, selected by {self.hook_flag(chosen)}{why}; "
                f"the program also offers: {', '.join(v for v in self.variants if v != chosen)}\n"
                f"// compiled by bcc with: {' '.join(flags)}\n\n{text}" + lab_headers(text))

    def select_hooks(self) -> List[Hook]:
        v = self.variant()
        fn = syscall_fnname(self.syscall)
        if v == "kprobe":
            return [Hook("kprobe", fn, self.entry_fn), Hook("kretprobe", fn, self.return_fn)]
        if v == "fexit":
            return [Hook("fentry", fn, f"kfunc__{fn}", note=self._note), Hook("fexit", fn, f"kretfunc__{fn}")]
        return [Hook("tracepoint", f"syscalls:sys_enter_{self.syscall}", self.entry_fn, note=self._note),
                Hook("tracepoint", f"syscalls:sys_exit_{self.syscall}", self.return_fn)]

    def describe(self, elapsed: float = 0.0) -> Dict[str, Any]:
        d = super().describe(elapsed)
        d["syscall_function"] = syscall_fnname(self.syscall)
        return d
