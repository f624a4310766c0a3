"""Building, loading and attaching bcc programs: the one place that talks to bcc's BPF class.

- :func:`build` compiles a program (a file of ``ebpf_lab/programs`` or text)
  into a bcc ``BPF`` object and turns bcc's bare ``Exception`` into a
  :class:`~ebpf_lab.errors.CompileError` carrying clang's messages.
- :func:`load_function` loads one function for a hook kind and turns a refusal
  into a :class:`~ebpf_lab.errors.VerifierError` carrying the verifier's log
  (or :class:`~ebpf_lab.errors.FeatureUnavailable` where the kernel refuses
  the whole program type).
- :data:`HOOK_KINDS` is the one table of hook kinds: the program type each
  kind loads as, how it attaches, and what detaches it. Tracing lessons,
  network lessons and the exercise graders all attach through it.
- :func:`program_path` finds a program file, :func:`capture_stderr` captures
  what C code (clang, libbpf) writes to file descriptor 2.

Nothing here imports bcc at import time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
from importlib import resources
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ._bcc import import_bcc
from .errors import AttachError, CompileError, FeatureUnavailable, VerifierError

__all__ = ["Hook", "HookKind", "HOOK_KINDS", "build", "load_function", "attach_hook", "prog_type",
           "program_path", "capture_stderr", "lab_bpf_class", "syscall_fnname", "is_syscall_wrapper"]


def program_path(name: str) -> str:
    """Absolute path of a program file in ``ebpf_lab/programs`` (bcc resolves relative paths oddly)."""
    return str(resources.files("ebpf_lab") / "programs" / name)


def include_flags() -> List[str]:
    """The ``-I`` that lets a program ``#include "lab_ring.h"`` (a header of ``ebpf_lab/programs``).

    bcc compiles a file as if it were ``/virtual/main.c``, so a quoted include does not
    look beside the file: every compile of a lab program gets this flag (:func:`build` adds it).
    """
    return ["-I" + os.path.dirname(program_path("lab_ring.h"))]


@contextlib.contextmanager
def capture_stderr() -> Iterator[Callable[[], str]]:
    """Capture what C code (clang, libbpf) writes to file descriptor 2; the yielded function returns it."""
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        with contextlib.suppress(ValueError, OSError):  # a closed or detached sys.stderr
            sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        text: List[str] = []

        def get() -> str:
            return "".join(text)

        try:
            yield get
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text.append(tmp.read().decode(errors="replace"))


def syscall_fnname(name: str) -> str:
    """The kernel function behind system call ``name`` on this kernel, e.g. ``__x64_sys_kill``.

    bcc's ``BPF.get_syscall_fnname`` finds the prefix by looking up the ``bpf``
    syscall's symbol with each known prefix (``sys_``, ``__x64_sys_``,
    ``__arm64_sys_``, ...), so lessons never hard-code ``__x64_sys_kill``.
    """
    B = import_bcc().BPF
    # bcc's get_syscall_prefix() is an instance method that only uses class
    # attributes and the static ksymname(), so no BPF object is needed.
    return (B.get_syscall_prefix(B) + name.encode()).decode()


def is_syscall_wrapper(fnname: str) -> bool:
    """True when the syscall function takes a ``struct pt_regs *`` (x86-64 4.17+, arm64 4.19+)."""
    return not fnname.startswith("sys_")


_CLASS_CACHE: Dict[int, Any] = {}


def lab_bpf_class(bcc: Any) -> Any:
    """bcc's BPF without its auto-attach at compile time: the lab attaches in its own step."""
    cls = _CLASS_CACHE.get(id(bcc))
    if cls is None:
        class LabBPF(bcc.BPF):
            def _trace_autoload(self) -> None:
                pass

        cls = _CLASS_CACHE[id(bcc)] = LabBPF
    return cls


def build(*, src_file: Optional[str] = None, text: Optional[str] = None, cflags: Sequence[str] = (),
          doing: str, explain: Optional[Callable[[str], str]] = None) -> Tuple[Any, str]:
    """Compile a program with clang through bcc: ``(bpf, clang's log)``.

    Give ``src_file`` (an absolute path, see :func:`program_path`) or ``text``.
    bcc raises a bare ``Exception`` when clang fails; this raises
    :class:`CompileError` instead, saying what was being done (``doing``) and
    carrying clang's messages (passed through ``explain`` when given, e.g. to
    map line numbers back to the learner's). Nothing is left loaded on failure.
    """
    if (src_file is None) == (text is None):
        raise ValueError("build() takes exactly one of src_file and text")
    bcc = import_bcc()
    kw: Dict[str, Any] = {"cflags": list(cflags) + include_flags()}
    if text is not None:
        kw["text"] = text
    else:
        kw["src_file"] = src_file
    err: Optional[BaseException] = None
    with capture_stderr() as log:
        try:
            b = lab_bpf_class(bcc)(**kw)
        except Exception as e:  # bcc raises bare Exception
            err = e
    if err is not None:
        raise CompileError(f"{doing} failed: clang reported errors ({err})", explain(log()) if explain else log())
    return b, log()


def prog_type(kind: str) -> int:
    """bcc's program type constant for a hook kind (``tracepoint`` -> ``BPF.TRACEPOINT``)."""
    try:
        return int(getattr(import_bcc().BPF, HOOK_KINDS[kind].prog_type))
    except KeyError:
        raise AttachError(f"unknown hook kind {kind!r}; known: {', '.join(HOOK_KINDS)}") from None


def load_function(bpf: Any, fn: str, kind: str, *, doing: str) -> Any:
    """Load one function of a compiled program for a hook kind: the verifier checks it here.

    Raises :class:`VerifierError` with the verifier's log when the kernel
    refuses the function, :class:`FeatureUnavailable` when it refuses every
    program of that type (fentry/fexit on some kernels).
    """
    ptype = prog_type(kind)
    err: Optional[BaseException] = None
    with capture_stderr() as log:
        try:
            f = bpf.load_func(fn, ptype)
        except Exception as e:  # bcc raises bare Exception
            err = e
    if err is not None:
        if "Need super-user" in str(err) and kind in ("fentry", "fexit"):
            raise FeatureUnavailable(kind, f"{doing}: this kernel refuses {kind} programs")
        raise VerifierError(f"{doing} failed: {err}. The verifier's log below says which instruction it "
                            "refused and why.", log().strip())
    return f


@dataclasses.dataclass
class Hook:
    """Where a handler runs: a kind of :data:`HOOK_KINDS`, its target, and the program's function.

    Network kinds (``sched_cls``, ``xdp``) attach on a lab network: give ``net``
    (a :class:`~ebpf_lab.netlab.LabNetwork`) and the ``side`` of it.
    """

    kind: str
    target: str
    fn: str
    note: str = ""
    attached: bool = False
    net: Any = None
    side: str = "rcv"
    xdp_mode: str = "generic"

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}"


Detach = Callable[[], None]


@dataclasses.dataclass(frozen=True)
class HookKind:
    """One kind of hook: the bcc program type its functions load as, and how it attaches.

    ``attach(bpf, hook, doing)`` attaches and returns the function that detaches; ``doing``
    starts its error messages.
    """

    name: str
    prog_type: str
    attach: Callable[[Any, Hook, str], Detach]
    doc: str


def _tracepoint(b: Any, h: Hook, doing: str) -> Detach:
    b.attach_tracepoint(tp=h.target, fn_name=h.fn)
    return lambda: b.detach_tracepoint(tp=h.target)


def _raw_tracepoint(b: Any, h: Hook, doing: str) -> Detach:
    b.attach_raw_tracepoint(tp=h.target, fn_name=h.fn)
    return lambda: b.detach_raw_tracepoint(tp=h.target)


def _kprobe(b: Any, h: Hook, doing: str) -> Detach:
    b.attach_kprobe(event=h.target, fn_name=h.fn)
    return lambda: b.detach_kprobe(event=h.target, fn_name=h.fn)


def _kretprobe(b: Any, h: Hook, doing: str) -> Detach:
    b.attach_kretprobe(event=h.target, fn_name=h.fn)
    return lambda: b.detach_kretprobe(event=h.target, fn_name=h.fn)


def _uprobe(b: Any, h: Hook, doing: str) -> Detach:
    lib, _, sym = h.target.rpartition(":")
    b.attach_uprobe(name=lib, sym=sym, fn_name=h.fn)
    return lambda: b.detach_uprobe(name=lib, sym=sym)


def _uretprobe(b: Any, h: Hook, doing: str) -> Detach:
    lib, _, sym = h.target.rpartition(":")
    b.attach_uretprobe(name=lib, sym=sym, fn_name=h.fn)
    return lambda: b.detach_uretprobe(name=lib, sym=sym)


def _fentry(b: Any, h: Hook, doing: str) -> Detach:
    b.attach_kfunc(fn_name=h.fn)
    return lambda: None  # freed with the program fd


def _fexit(b: Any, h: Hook, doing: str) -> Detach:
    b.attach_kretfunc(fn_name=h.fn)
    return lambda: None  # freed with the program fd


def _need_net(h: Hook, doing: str) -> Any:
    if h.net is None:
        raise AttachError(f"{doing}: the hook names no lab network (Hook.net)")
    return h.net


def _sched_cls(b: Any, h: Hook, doing: str) -> Detach:
    from .lessons import _net

    net = _need_net(h, doing)
    fn = b.load_func(h.fn, prog_type("sched_cls"))  # bcc hands back the function loaded before
    return _net.attach_tc_ingress(net, h.side, fn.fd, h.fn, doing=doing)


def _xdp(b: Any, h: Hook, doing: str) -> Detach:
    from .lessons import _net

    net = _need_net(h, doing)
    fn = b.load_func(h.fn, prog_type("xdp"))
    return _net.attach_xdp(net, h.side, fn.fd, h.xdp_mode, doing=doing)


#: every hook kind a lesson or an exercise can use
HOOK_KINDS: Dict[str, HookKind] = {k.name: k for k in (
    HookKind("tracepoint", "TRACEPOINT", _tracepoint, "a static kernel tracepoint, CATEGORY:EVENT"),
    HookKind("raw_tracepoint", "RAW_TRACEPOINT", _raw_tracepoint, "a raw tracepoint (untyped arguments)"),
    HookKind("kprobe", "KPROBE", _kprobe, "entry of a kernel function (CONFIG_KPROBES)"),
    HookKind("kretprobe", "KPROBE", _kretprobe, "return of a kernel function (CONFIG_KPROBES)"),
    HookKind("uprobe", "KPROBE", _uprobe, "entry of a user-space function, FILE:SYMBOL"),
    HookKind("uretprobe", "KPROBE", _uretprobe, "return of a user-space function, FILE:SYMBOL"),
    HookKind("fentry", "TRACING", _fentry, "entry of a kernel function through a BPF trampoline (BTF)"),
    HookKind("fexit", "TRACING", _fexit, "return of a kernel function through a BPF trampoline (BTF)"),
    HookKind("sched_cls", "SCHED_CLS", _sched_cls, "TC clsact ingress on a lab network's veth"),
    HookKind("xdp", "XDP", _xdp, "XDP on a lab network's veth (generic or native)"),
)}


def attach_hook(bpf: Any, hook: Hook, *, doing: Optional[str] = None) -> Detach:
    """Attach ``hook`` through :data:`HOOK_KINDS`; returns the function that detaches it."""
    doing = doing or f"attaching {hook.fn} to {hook.name}"
    kind = HOOK_KINDS.get(hook.kind)
    if kind is None:
        raise AttachError(f"{doing}: unknown hook kind {hook.kind!r}; known: {', '.join(HOOK_KINDS)}")
    return kind.attach(bpf, hook, doing)
