"""Lesson 04 — the tutorial's TC classifier on a disposable lab network.

Notebook: ``notebooks/04_tc_classifier.ipynb``. Programs:
``ebpf_lab/programs/tc_classifier.bpf.c`` (the tutorial's, as printed, built
with its own clang | llc pipeline and attached with its own ``tc`` commands),
the one-line fix clang 16+ needs, composed from it (:func:`fixed_source`,
shown as a diff by :func:`fix_diff`, never a second copy of the file), and
``tc_classifier_bcc.bpf.c`` (the same rule through bcc, LIMIT as a -D flag,
pass/drop counters in a map).

    with TcClassifierLesson(limit=500) as lab:
        lab.compile(); lab.load(); lab.attach()     # a new LabNetwork, clsact ingress on the receiver
        df = lab.sweep()                            # real `ping -s` sizes -> delivered or not
        lab.test_run()                              # BPF_PROG_TEST_RUN on crafted frames
"""
from __future__ import annotations

import functools
import os
import shutil
import struct
import subprocess
import tempfile
import time
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Optional, Sequence

import numpy as np
import pandas as pd

from .. import _registry
from ..bpf import Hook, attach_hook, prog_type, program_path
from ..engine import Lesson, Param, State
from ..errors import AttachError, CompileError, LabError, LabParameterError, LessonStateError
from ..netlab import LabNetwork
from . import _net
from ._net import CommandResult, require_tools, run_shell

__all__ = ["TcClassifierLesson", "TutorialTC", "HEADER_BYTES", "OVERHEAD", "craft_frame", "plot_sweep",
           "limit_explorer", "default_payloads", "fixed_source", "fix_diff", "FIX_DECLARATION", "boundary_table"]

#: what skb->len counts at TC ingress on top of the ping payload
HEADER_BYTES = {"Ethernet": 14, "IPv4": 20, "ICMP": 8}
OVERHEAD = sum(HEADER_BYTES.values())  # 42
MAX_PAYLOAD = 1500 - 20 - 8  # the biggest unfragmented ping on a 1500-byte MTU: 1472
#: BPF_PROG_TEST_RUN refuses an IPv4 frame shorter than Ethernet + IPv4 headers (EINVAL)
MIN_TEST_FRAME = 14 + 20


def default_payloads(limit: int, *, coarse_step: int = 100, window: int = 3) -> List[int]:
    """A coarse grid over every unfragmented ping size, plus every size around the predicted boundary."""
    b = limit - OVERHEAD
    sizes = set(range(0, MAX_PAYLOAD + 1, coarse_step)) | {MAX_PAYLOAD}
    sizes |= {p for p in range(b - window, b + window + 1) if 0 <= p <= MAX_PAYLOAD}
    return sorted(sizes)


def boundary_table(payload: int) -> pd.DataFrame:
    """What ``skb->len`` counts for ``ping -s payload``, part by part (the rows add up to the frame length)."""
    return pd.DataFrame([
        {"part": "Ethernet header (dst MAC, src MAC, EtherType)", "bytes": HEADER_BYTES["Ethernet"]},
        {"part": "IPv4 header (no options)", "bytes": HEADER_BYTES["IPv4"]},
        {"part": "ICMP echo header (type, code, checksum, id, sequence)", "bytes": HEADER_BYTES["ICMP"]},
        {"part": f"ping -s {payload}: payload", "bytes": int(payload)},
    ])


def craft_frame(frame_bytes: int) -> bytes:
    """An Ethernet + IPv4 + ICMP echo request of exactly ``frame_bytes`` bytes (truncated below 42)."""
    if not 14 <= frame_bytes <= 65535:
        raise LabParameterError(f"crafting a test frame: {frame_bytes} bytes is outside [14, 65535]")
    payload = max(0, frame_bytes - OVERHEAD)
    eth = bytes.fromhex("02eb1000000202eb10000001") + struct.pack("!H", 0x0800)
    total = 20 + 8 + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total & 0xFFFF, 1, 0x4000, 64, 1, 0,
                     bytes([10, 200, 0, 1]), bytes([10, 200, 0, 2]))
    csum = _checksum(ip)
    ip = ip[:10] + struct.pack("!H", csum) + ip[12:]
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + bytes(payload)
    icmp = icmp[:2] + struct.pack("!H", _checksum(icmp)) + icmp[4:]
    return (eth + ip + icmp)[:frame_bytes]


#: the warning (clang <= 15) / error (clang >= 16) flag of a call to an undeclared function
IMPLICIT_DECL_FLAG = "-Wimplicit-function-declaration"
FIXED_PROGRAM = "tc_classifier_fixed.bpf.c"


@functools.lru_cache(maxsize=None)
def clang_rejects_implicit_declarations() -> bool:
    """Whether this machine's clang refuses a call to an undeclared function by default.

    Decided by asking clang, not by its version number: clang 16 and newer make
    ``-Wimplicit-function-declaration`` an error in C99 and later (the
    tutorial's file then fails to build as printed); clang 15 and older warn.
    """
    import shutil

    clang = shutil.which("clang")
    if clang is None:
        return False
    try:
        r = subprocess.run([clang, "-fsyntax-only", "-x", "c", "-"], input="int f(void) { return g(); }\n",
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode != 0 and IMPLICIT_DECL_FLAG in r.stderr


def _checksum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


TUTORIAL_PROGRAM = "tc_classifier.bpf.c"
#: the fix clang 16+ needs: declare process_packet() before classifier() calls it
FIX_DECLARATION = "int process_packet(struct __sk_buff *skb);  // the fix: declare before use"
_FIX_AFTER = "#define SEC(NAME)"


def fixed_source() -> str:
    """The tutorial's classifier with the one fix newer compilers need, composed from the file as printed.

    C99 removed implicit function declarations and clang 16+ makes calling an
    undeclared function an error; the tutorial calls ``process_packet()`` before
    declaring it. The fix is one line, :data:`FIX_DECLARATION`, put in front of
    ``classifier()`` (see :func:`fix_diff`).
    """
    text = open(program_path(TUTORIAL_PROGRAM)).read()
    lines = text.splitlines(keepends=True)
    at = next((i for i, ln in enumerate(lines) if ln.startswith(_FIX_AFTER)), None)
    if at is None:
        raise LabError(f"composing the fixed classifier: {TUTORIAL_PROGRAM} has no line starting with "
                       f"{_FIX_AFTER!r} to put the declaration after")
    return "".join(lines[:at + 1] + ["\n", FIX_DECLARATION + "\n", "\n"] + lines[at + 1:])


def fix_diff() -> str:
    """``diff -u`` of the tutorial's classifier and :func:`fixed_source`: the fix, and nothing else."""
    import difflib

    a = open(program_path(TUTORIAL_PROGRAM)).read().splitlines()
    b = fixed_source().splitlines()
    return "\n".join(difflib.unified_diff(a, b, TUTORIAL_PROGRAM, "tc_classifier_fixed.bpf.c", lineterm="", n=1))


class TutorialTC:
    """The tutorial's own way: build with ``clang | llc``, attach with ``tc``, remove with ``tc qdisc del``.

    Every step returns a :class:`CommandResult` (the command and what it printed).
    Commands run inside the lab network's receiver namespace (``ip netns exec``),
    on the lab's veth instead of the tutorial's ``ens3``.
    """

    def __init__(self, net: LabNetwork, *, side: str = "rcv", workdir: Optional[str] = None) -> None:
        if not isinstance(net, LabNetwork) or not net.is_up or net.closed:
            raise LabError("the tutorial's tc commands run only on an open LabNetwork (never on the machine's interfaces)")
        self.net = net
        self.side = side
        self.dev = net.ifname[side]
        self._tmp = tempfile.TemporaryDirectory(prefix="ebl-tc-") if workdir is None else None
        self.workdir = workdir or self._tmp.name  # type: ignore[union-attr]
        self.obj = os.path.join(self.workdir, "foo.o")
        self._qdisc_token: Optional[int] = None
        self.log: List[CommandResult] = []

    def _keep(self, r: CommandResult) -> CommandResult:
        self.log.append(r)
        return r

    def build(self, source: str = TUTORIAL_PROGRAM, *, strict: bool = False, fixed: bool = False) -> CommandResult:
        """``clang -O2 -emit-llvm -c SRC -o - | llc -march=bpf -mcpu=probe -filetype=obj -o foo.o``.

        ``strict=True`` adds ``-Werror=implicit-function-declaration``, which is
        what clang 16 and newer do by default: the tutorial's file then fails.
        ``fixed=True`` builds :func:`fixed_source` instead (written to
        ``tc_classifier_fixed.bpf.c`` in this object's folder first).
        A failure that is exactly that error (with ``strict``, or with a clang
        that refuses implicit declarations by default) is returned, not raised:
        failing is the lesson, and ``ok`` is False. Any other failure raises
        CompileError.
        """
        require_tools("clang", "llc", doing="building the tutorial's classifier")
        if fixed or source == "tc_classifier_fixed.bpf.c":  # the old file name, until every notebook says fixed=True
            src = os.path.join(self.workdir, "tc_classifier_fixed.bpf.c")
            with open(src, "w") as f:
                f.write(fixed_source())
        else:
            src = source if os.path.isabs(source) else program_path(source)
        flag = " -Werror=implicit-function-declaration" if strict else ""
        cmd = (f"clang -O2{flag} -emit-llvm -c {src} -o - | "
               f"llc -march=bpf -mcpu=probe -filetype=obj -o {self.obj}")
        if os.path.exists(self.obj):
            os.unlink(self.obj)
        r = self._keep(run_shell([cmd], shell_pipeline=True, timeout=120))
        if not r.ok and os.path.exists(self.obj):
            # clang failed, yet llc turned its empty output into an empty foo.o: never leave that to attach
            os.unlink(self.obj)
        if not r.ok and not strict and IMPLICIT_DECL_FLAG not in r.stderr:
            raise CompileError(f"building {os.path.basename(src)} with the tutorial's clang | llc pipeline failed", r.output)
        return r

    def build_runnable(self) -> List[CommandResult]:
        """Build the object the next steps attach: the tutorial's file as printed when this clang accepts it,
        otherwise (clang 16+: an undeclared function is an error) its one-line fix, ``tc_classifier_fixed.bpf.c``.

        Returns the builds it ran, the refused one first (``built_from`` names the
        file foo.o now comes from); raises CompileError when neither builds.
        """
        first = self.build()
        self.built_from = self.tutorial_source
        if first.ok:
            return [first]
        fixed = self.build(FIXED_PROGRAM)
        if not fixed.ok:
            raise CompileError(f"building {FIXED_PROGRAM} with the tutorial's clang | llc pipeline failed", fixed.output)
        self.built_from = FIXED_PROGRAM
        return [first, fixed]

    tutorial_source = "tc_classifier.bpf.c"

    def sections(self) -> CommandResult:
        """The object's ELF sections (``llvm-objdump -h``): the code sits in section ``test``."""
        tool = next((t for t in ("llvm-objdump", "llvm-objdump-14", "objdump") if shutil.which(t)), "objdump")
        return self._keep(run_shell([tool, "-h", self.obj]))

    def attach(self) -> List[CommandResult]:
        """``tc qdisc add dev DEV clsact`` then ``tc filter add dev DEV ingress bpf direct-action obj foo.o sec test``."""
        require_tools("tc", doing="attaching the tutorial's classifier with tc")
        if not os.path.exists(self.obj):
            raise LessonStateError("attaching the tutorial's classifier: build() it first (no foo.o yet)")
        _net.refuse_foreign_clsact(self.net, self.side, "attaching the tutorial's classifier with tc")
        self._qdisc_token = _registry.register("qdisc", dev=self.dev, netns=self.net.netns[self.side], qdisc="clsact")
        out = [self._keep(run_shell(["tc", "qdisc", "add", "dev", self.dev, "clsact"], net=self.net, side=self.side))]
        if not out[0].ok:
            self.detach()
            raise AttachError(f"attaching the tutorial's classifier: `{out[0].command}` failed: {out[0].output}")
        r = self._keep(run_shell(["tc", "filter", "add", "dev", self.dev, "ingress", "bpf", "direct-action",
                                  "obj", self.obj, "sec", "test"], net=self.net, side=self.side))
        out.append(r)
        if not r.ok:
            self.detach()
            raise AttachError(f"attaching the tutorial's classifier: `{r.command}` failed: {r.output}")
        return out

    def show(self) -> CommandResult:
        """``tc filter show dev DEV ingress``: the kernel's view of what is attached."""
        return self._keep(run_shell(["tc", "filter", "show", "dev", self.dev, "ingress"], net=self.net, side=self.side))

    def detach(self) -> Optional[CommandResult]:
        """``tc qdisc del dev DEV clsact`` (removes the filter with it)."""
        if self._qdisc_token is None or os.getpid() != self.net.owner:
            return None
        r = None
        if not self.net.closed:
            r = self._keep(run_shell(["tc", "qdisc", "del", "dev", self.dev, "clsact"], net=self.net, side=self.side))
        _registry.unregister(self._qdisc_token)
        self._qdisc_token = None
        return r

    def close(self) -> None:
        self.detach()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "TutorialTC":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TcClassifierLesson(Lesson):
    """The tutorial's classifier through bcc: drop IPv4 packets with ``skb->len >= limit`` at TC ingress.

    >>> df = TcClassifierLesson(limit=500).run()     # the ping sweep, as a DataFrame
    """

    id = "tc-classifier"
    title = "04 · A TC classifier that drops big packets (clsact ingress, lab network)"
    notebook = "04_tc_classifier.ipynb"
    program = "tc_classifier_bcc.bpf.c"
    events_map = ""
    lost_map = ""
    params: ClassVar[Dict[str, Param]] = {
        "limit": Param(500, "drop IPv4 packets whose skb->len (bytes from the Ethernet header on) is at least this",
                       min=1, max=65535, cflag="LIMIT"),
        "count": Param(2, "echo requests per ping size in the sweep", min=1, max=20),
        "bounds_check": Param(True, "check data + 14 <= data_end before reading the Ethernet header, as the tutorial "
                                    "does (false: the verifier refuses the program)", cflag="BOUNDS_CHECK"),
    }
    columns = {
        "payload_bytes": "ping -s: ICMP payload bytes (int)",
        "skb_len_predicted": "payload + 8 ICMP + 20 IPv4 + 14 Ethernet: what skb->len should be at TC ingress",
        "skb_len": "skb->len the classifier really saw for these echo requests (from its by_len map; NaN if none)",
        "sent": "echo requests sent",
        "received": "echo replies received",
        "delivered": "True when the echo requests got through (a reply came back)",
        "classifier_pass": "IPv4 packets of this size the classifier passed (TC_ACT_OK)",
        "classifier_drop": "IPv4 packets of this size the classifier dropped (TC_ACT_SHOT)",
        "verdict_expected": "'drop' when skb_len_predicted >= limit, else 'pass'",
    }

    def __init__(self, *, net: Optional[LabNetwork] = None, **params: Any) -> None:
        self.net: Optional[LabNetwork] = net
        super().__init__(**params)

    @property
    def limit(self) -> int:
        return int(self.values["limit"])

    def predicted_boundary(self) -> int:
        """The smallest ping payload that is dropped: skb->len = payload + 42 >= limit."""
        return max(0, self.limit - OVERHEAD)

    def select_hooks(self) -> List[Hook]:
        return [Hook("sched_cls", "clsact ingress", "on_tc_ingress",
                     note="TC clsact ingress on the lab network's receiver veth (direct-action)")]

    def load(self) -> pd.DataFrame:
        df = super().load()
        self._fn = self.bpf.load_func("on_tc_ingress", prog_type("sched_cls"))
        return df

    def _attach_one(self, h: Hook) -> Callable[[], None]:
        if self.net is None:
            self.net = LabNetwork()
            self._stack.callback(self.net.close)
            self.net.up()
        h.target = f"clsact ingress {self.net.ifname['rcv']} (netns {self.net.netns['rcv']})"
        h.net, h.side = self.net, "rcv"
        return attach_hook(self.bpf, h, doing=f"attaching lesson {self.id}")

    # ----------------------------------------------------------- counters
    def counters(self) -> pd.DataFrame:
        """The by_len map: one row per skb->len the classifier saw (IPv4 only), with pass/drop counts."""
        if self.bpf is None:
            raise LessonStateError(f"reading the counters of lesson {self.id}: it is not loaded (or already detached)")
        rows = [{"skb_len": int(k.value), "pass": int(getattr(v, "pass")), "drop": int(v.drop)}
                for k, v in self.bpf["by_len"].items()]
        return pd.DataFrame(rows, columns=["skb_len", "pass", "drop"]).sort_values("skb_len").reset_index(drop=True)

    def totals(self) -> Dict[str, int]:
        """Whole-program counts: IPv4 passed/dropped, non-IPv4 passed, runts dropped."""
        if self.bpf is None:
            raise LessonStateError(f"reading the counters of lesson {self.id}: it is not loaded (or already detached)")
        t = self.bpf["totals"]
        names = ["ipv4_pass", "ipv4_drop", "other_pass", "runt_drop"]
        return {n: int(t[t.Key(i)].value) for i, n in enumerate(names)}

    # -------------------------------------------------------------- sweep
    def sweep(self, payloads: Optional[Iterable[int]] = None, *, count: Optional[int] = None,
              quiet: bool = True, max_seconds: float = 120.0) -> pd.DataFrame:
        """Ping across the lab network at each payload size; what got through, and what the classifier saw.

        Bounded: at most ``len(payloads)`` pings of ``count`` requests each, and
        ``max_seconds`` in all. Any error or KeyboardInterrupt detaches the lesson.
        """
        self._require(State.ATTACHED, doing="sweeping ping sizes through")
        sizes = sorted(set(int(p) for p in (payloads if payloads is not None else default_payloads(self.limit))))
        if not sizes or any(p < 0 or p > MAX_PAYLOAD for p in sizes) or len(sizes) > 2000:
            raise LabParameterError(f"sweeping lesson {self.id}: payload sizes must be 1..2000 values in [0, {MAX_PAYLOAD}] "
                                    "(larger pings would be fragmented)")
        n = int(count or self.values["count"])
        assert self.net is not None
        rows: List[Dict[str, Any]] = []
        t0 = time.monotonic()
        try:
            before = self._by_len()
            for p in sizes:
                if time.monotonic() - t0 > max_seconds:
                    raise LabError(f"sweeping lesson {self.id}: stopped after {max_seconds:g} s "
                                   f"({len(rows)} of {len(sizes)} sizes done)")
                r = self.net.ping(p, count=n)
                after = self._by_len()
                new = {k: (a[0] - before.get(k, (0, 0))[0], a[1] - before.get(k, (0, 0))[1]) for k, a in after.items()}
                new = {k: v for k, v in new.items() if v[0] or v[1]}
                before = after
                seen = max(new, key=lambda k: sum(new[k])) if new else None
                pas, drop = new.get(seen, (0, 0)) if seen is not None else (0, 0)
                if r["received"] == 0 and pas > 0:
                    assert seen is not None  # pas > 0: some length was seen
                    # the classifier passed it yet no reply came back within -W: on a busy machine a reply can be
                    # late; ask once more, waiting longer, before calling it undelivered
                    r = self.net.ping(p, count=n, wait=1.5)
                    after = self._by_len()
                    pas += after.get(seen, (0, 0))[0] - before.get(seen, (0, 0))[0]
                    drop += after.get(seen, (0, 0))[1] - before.get(seen, (0, 0))[1]
                    before = after
                    r = dict(r, sent=r["sent"] * 2)  # both rounds' requests are in the classifier's counts
                pred = p + OVERHEAD
                rows.append({"payload_bytes": p, "skb_len_predicted": pred,
                             "skb_len": float(seen) if seen is not None else np.nan,
                             "sent": r["sent"], "received": r["received"], "delivered": r["received"] > 0,
                             "classifier_pass": pas, "classifier_drop": drop,
                             "verdict_expected": "drop" if pred >= self.limit else "pass"})
                if not quiet:
                    print(f"ping -s {p:5d}: skb_len {pred}, {r['received']}/{r['sent']} replies", flush=True)
        except BaseException:
            self.detach()
            raise
        df = pd.DataFrame(rows, columns=list(self.columns))
        df["skb_len"] = df["skb_len"].astype("Int64") if df["skb_len"].notna().all() else df["skb_len"]
        df.attrs.update(self.describe(elapsed=time.monotonic() - t0))
        df.attrs.update(self.boundary_facts(df))
        return df

    def _by_len(self) -> Dict[int, tuple]:
        return {int(k.value): (int(getattr(v, "pass")), int(v.drop)) for k, v in self.bpf["by_len"].items()}

    def boundary_facts(self, df: pd.DataFrame) -> Dict[str, Any]:
        """Where delivery stops in a sweep, next to the prediction from the headers."""
        lost = df.loc[~df["delivered"], "payload_bytes"]
        ok = df.loc[df["delivered"], "payload_bytes"]
        first_lost = int(lost.min()) if len(lost) else None
        last_ok = int(ok[ok < first_lost].max()) if first_lost is not None and (ok < first_lost).any() else None
        monotonic = first_lost is None or not (ok > first_lost).any()
        pred = self.predicted_boundary()
        facts = {
            "limit": self.limit,
            "boundary_payload": first_lost,
            "last_delivered_payload": last_ok,
            "predicted_boundary_payload": pred,
            "boundary_is_clean": bool(monotonic),
            "summary": (f"delivery stops at ping -s {first_lost} (skb->len {first_lost + OVERHEAD} >= limit {self.limit}); "
                        f"predicted from the headers: {pred} = {self.limit} - 14 Ethernet - 20 IPv4 - 8 ICMP"
                        if first_lost is not None else f"every ping in the sweep got through (limit {self.limit})"),
        }
        return facts

    # ---------------------------------------------------- BPF_PROG_TEST_RUN
    def test_run(self, frame_sizes: Optional[Sequence[int]] = None) -> pd.DataFrame:
        """Run the loaded classifier on crafted frames with BPF_PROG_TEST_RUN: no traffic, no interface.

        Default frames: one byte below the limit, at it, and one above. The
        kernel builds an sk_buff from the bytes, so skb->len is the frame length.
        """
        if self.state not in (State.LOADED, State.ATTACHED) or self.bpf is None:
            raise LessonStateError(f"test-running lesson {self.id}: load() it first")
        from .._bpfsys import prog_test_run

        if frame_sizes is not None and any(int(n) < MIN_TEST_FRAME or int(n) > 3000 for n in frame_sizes):
            raise LabParameterError(f"test-running lesson {self.id}: frame sizes must be in [{MIN_TEST_FRAME}, 3000] "
                                    "(the kernel refuses an IPv4 frame without a whole IPv4 header)")
        sizes = list(frame_sizes) if frame_sizes is not None else [s for s in (self.limit - 1, self.limit,
                                                                               self.limit + 1) if s >= MIN_TEST_FRAME]
        rows = []
        for n in sizes:
            ret, dur, _ = prog_test_run(self._fn.fd, craft_frame(int(n)))
            rows.append({"frame_bytes": int(n), "payload_bytes": int(n) - OVERHEAD, "retval": ret,
                         "verdict": _net.TC_ACT.get(ret, str(ret)), "dropped": ret == 2, "duration_ns": dur})
        return pd.DataFrame(rows)

    def boundary_from_test_run(self, lo: int = OVERHEAD, hi: int = MAX_PAYLOAD + OVERHEAD) -> Optional[int]:
        """The smallest frame length the classifier drops, found by test-running every length in [lo, hi]."""
        df = self.test_run(range(lo, hi + 1))
        dropped = df.loc[df["dropped"], "frame_bytes"]
        return int(dropped.min()) if len(dropped) else None

    # ------------------------------------------------------------------ run
    def run(self, seconds: Optional[float] = None, *, workload: bool = True,
            max_events: Optional[int] = None, quiet: bool = True,
            payloads: Optional[Iterable[int]] = None) -> pd.DataFrame:
        """compile, load, attach (a fresh lab network), sweep ping sizes, detach: the sweep DataFrame.

        Without a workload, just watches the counters for ``seconds`` (no pings).
        """
        with self:
            self.compile()
            self.load()
            self.attach()
            if workload:
                df = self.sweep(payloads, quiet=quiet)
                df.attrs["test_run"] = self.test_run().to_dict(orient="records")
                return df
            time.sleep(min(float(seconds or self.default_seconds), 3600))
            df = self.counters()
            df.attrs.update(self.describe())
            return df

    def describe(self, elapsed: float = 0.0) -> Dict[str, Any]:
        d = super().describe(elapsed)
        d.pop("lost", None)
        if self.net is not None:
            d["network"] = repr(self.net)
        if self.bpf is not None:
            d["totals"] = self.totals()
        return d


# ------------------------------------------------------------------ plots
def plot_sweep(df: pd.DataFrame, ax: Any = None) -> Any:
    """Delivered fraction against ping payload size, with the limit (as a payload) marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.8))
    frac = df["received"] / df["sent"].where(df["sent"] > 0, 1)
    ax.step(df["payload_bytes"], frac, where="post", color="#2a9d8f", lw=1.5)
    ax.scatter(df["payload_bytes"], frac, c=np.where(df["delivered"], "#2a9d8f", "#e63946"), zorder=3, s=22,
               label="ping (green: replies came back, red: none)")
    limit = df.attrs.get("limit")
    if limit is not None:
        b = limit - OVERHEAD
        ax.axvline(b, color="#e63946", ls="--", lw=1)
        ax.text(b, 0.5, f"  limit {limit} B = payload {b} + 42 B of headers", color="#e63946", va="center", fontsize=9)
    ax.set_xlabel("ping -s payload (bytes)")
    ax.set_ylabel("echo replies / requests")
    ax.set_ylim(-0.05, 1.1)
    sec = ax.secondary_xaxis("top", functions=(lambda x: x + OVERHEAD, lambda x: x - OVERHEAD))
    sec.set_xlabel("skb->len at TC ingress (bytes)")
    ax.legend(loc="center right", fontsize=8)
    return ax.figure


def limit_explorer(initial: int = 500, *, payloads: Optional[Callable[[int], List[int]]] = None) -> Any:
    """An ipywidgets slider for the limit: each change builds a fresh lesson + lab network, sweeps, plots, removes.

    Returns the widget box; ``box.rerun(limit)`` does what moving the slider does
    (and returns the sweep DataFrame), for scripts and tests.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    choose = payloads or (lambda lim: default_payloads(lim, coarse_step=200, window=2))
    slider = w.IntSlider(value=initial, min=43, max=1514, step=1, description="limit (B)", continuous_update=False)
    out = w.Output()
    status = w.HTML()

    def rerun(limit: int) -> pd.DataFrame:
        status.value = f"<i>compiling with -DLIMIT={limit}, sweeping…</i>"
        df = TcClassifierLesson(limit=limit).run(payloads=choose(limit))
        with out:
            out.clear_output(wait=True)
            fig = plot_sweep(df)
            plt.show(fig)
            plt.close(fig)
        status.value = df.attrs["summary"]
        return df

    slider.observe(lambda ch: rerun(ch["new"]), names="value")
    box = w.VBox([slider, status, out])
    box.rerun = rerun
    return box
