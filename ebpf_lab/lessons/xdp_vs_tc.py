"""Lesson 05 — XDP vs TC vs iptables: the same drop rule at each hook, measured.

Notebook: ``notebooks/05_xdp_vs_tc.ipynb``. Program:
``ebpf_lab/programs/xdp_vs_tc.bpf.c`` (one rule, ``rule_drops()``, called from
an XDP handler and a TC handler); iptables gets the same rule as
``-p udp --dport PORT -j DROP``.

Traffic: netsniff-ng's ``trafgen`` in the sender namespace blasts one UDP
datagram (to PORT) over the veth as fast as one CPU can, for a few seconds per
measurement. Each hook is measured ``repeats`` times, hooks interleaved.

    df = XdpVsTcLesson(seconds=1, repeats=3).run()     # one row per hook x repeat
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from typing import Any, Callable, ClassVar, Dict, List, Optional

import numpy as np
import pandas as pd

from .. import _registry
from ..bpf import Hook, attach_hook, prog_type
from ..engine import Lesson, Param, State
from ..errors import AttachError, LabError, LabParameterError
from ..netlab import LabNetwork
from . import _net
from ._net import RunStats, require_tools

__all__ = ["XdpVsTcLesson", "HOOKS", "plot_hooks", "summarize", "findings", "iptables_backend", "linearity",
           "shapes"]

#: hook name -> what it is
HOOKS: Dict[str, str] = {
    "none": "no drop rule: the datagram climbs the whole stack; UDP finds no socket and drops it (baseline)",
    "xdp-native": "XDP in the veth driver (native mode): on a real NIC before any sk_buff exists; on veth the "
                  "sender's sk_buff is turned into an XDP buffer, copied into a fresh page when it is non-linear",
    "xdp-generic": "XDP in generic (skb) mode: after the sk_buff exists, before TC; a non-linear sk_buff is "
                   "linearised (copied) first",
    "tc": "TC clsact ingress (cls_bpf, direct-action): after generic XDP, before netfilter",
    "nft-ingress": "nftables netdev ingress chain on the veth: netfilter's hook right after TC ingress",
    "iptables-raw": "iptables -t raw PREROUTING: iptables' earliest table, before conntrack and routing "
                    "(netfilter's netdev ingress hook, nft-ingress, runs before it)",
    "iptables-input": "iptables -t filter INPUT: after routing decided the datagram is for this host",
}
DEFAULT_HOOKS = "none,xdp-native,xdp-generic,tc,nft-ingress,iptables-raw,iptables-input"
TRAFGEN_MAX_PACKETS = 50_000_000  # a hard cap on any one measurement, whatever the time
STARTUP_SECONDS = 5.0  # how long trafgen may take to send its first frames


def _parse_hooks(value: str) -> List[str]:
    hooks = [h.strip() for h in str(value).split(",") if h.strip()]
    bad = [h for h in hooks if h not in HOOKS]
    if bad or not hooks:
        raise LabParameterError(f"parameter hooks={value!r}: choose from {', '.join(HOOKS)} (comma-separated)")
    return list(dict.fromkeys(hooks))


def _proc_stat(cpu: int) -> Dict[str, int]:
    """One CPU's time in clock ticks (/proc/stat): busy (user+nice+system+irq+softirq) and softirq."""
    with open("/proc/stat") as f:
        line = next(ln for ln in f if ln.startswith(f"cpu{cpu} "))
    v = [int(x) for x in line.split()[1:]]
    user, nice, system, idle, iowait, irq, softirq = v[:7]
    return {"busy": user + nice + system + irq + softirq, "softirq": softirq}


class XdpVsTcLesson(Lesson):
    """Drop one UDP flow at XDP, TC and iptables; packets/s dropped and CPU time per packet for each."""

    id = "xdp-vs-tc"
    title = "05 · XDP vs TC vs iptables: one drop rule at three hooks, measured"
    notebook = "05_xdp_vs_tc.ipynb"
    program = "xdp_vs_tc.bpf.c"
    events_map = ""
    lost_map = ""
    params: ClassVar[Dict[str, Param]] = {
        "hooks": Param(DEFAULT_HOOKS, f"which hooks to measure, comma-separated, from: {', '.join(HOOKS)}"),
        "seconds": Param(1.0, "length of one measurement (trafgen running)", min=0.2, max=10.0),
        "repeats": Param(3, "measurements per hook (for the spread)", min=1, max=10),
        "frame_bytes": Param(64, "size of each generated frame, Ethernet header included", min=60, max=1514),
        "port": Param(9, "UDP destination port of the flow the rule drops", min=1, max=65535, cflag="PORT"),
    }
    columns = {
        "hook": "where the drop rule ran (see HOOKS)",
        "repeat": "measurement number for this hook (0-based)",
        "seconds": "measured wall time of the traffic burst",
        "sent": "frames trafgen put on the veth (sender's tx_packets)",
        "sent_pps": "sender's rate, frames/s",
        "dropped": "frames the rule dropped (BPF counter, iptables/nft rule counter, or UDP NoPorts for 'none')",
        "dropped_pps": "dropped / seconds",
        "cpu_ns_per_pkt": "busy time of the sender's CPU (/proc/stat; send path + receive softirq both run there) / frames sent",
        "task_ns_per_pkt": "CPU time charged to trafgen's sender (its send path, and the receive softirq that runs in its "
                           "context unless the kernel accounts IRQ time separately, CONFIG_IRQ_TIME_ACCOUNTING) plus "
                           "ksoftirqd on that CPU, per frame: other processes sharing the CPU do not count, unlike "
                           "cpu_ns_per_pkt",
        "softirq_ns_per_pkt": "softirq time of that CPU / frames sent (measured with IRQ time accounting; without it, "
                              "sampled at each tick, and the same time is charged to the task the softirq interrupted)",
        "cpu_busy": "fraction of that CPU busy during the window (1.0 = saturated: the rate is CPU-bound)",
        "bpf_ns_per_run": "the BPF program's own average run time (BPF run stats); NaN for non-BPF hooks",
        "cpu": "the CPU trafgen was pinned to",
        "sent_total": "frames sent over the whole burst (warm-up and tail included)",
        "dropped_total": "frames the rule dropped over the whole burst: equals sent_total when the rule catches all",
        "prog_frames": "the flow's frames the BPF program was given over the whole burst (NaN for non-BPF hooks)",
        "nonlinear_frames": "of them, frames longer than the part the program could read directly: non-linear "
                            "sk_buffs, the rest of the frame in page fragments",
        "frame_len": "mean length of those frames, whole (skb->len at TC; 14 + the IP total length at XDP)",
        "linear_len": "mean part of the frame the program could read directly on entry (data_end - data, "
                      "before TC's bpf_skb_pull_data)",
    }

    def __init__(self, *, net: Optional[LabNetwork] = None, **params: Any) -> None:
        self.net = net
        super().__init__(**params)
        self.hook_names = _parse_hooks(self.values["hooks"])
        self.skipped: Dict[str, str] = {}

    def select_hooks(self) -> List[Hook]:
        return [Hook("xdp", "receiver veth", "on_xdp", note="XDP (generic or native) on the lab receiver veth"),
                Hook("sched_cls", "clsact ingress", "on_tc_ingress", note="TC clsact ingress on the lab receiver veth")]

    def preflight(self) -> None:
        super().preflight()
        tools = ["trafgen", "ip"]
        if any(h.startswith("iptables") for h in self.hook_names):
            tools.append("iptables")
        if "nft-ingress" in self.hook_names:
            tools.append("nft")
        require_tools(*tools, doing=f"preparing lesson {self.id}")

    def load(self) -> pd.DataFrame:
        df = super().load()
        self._fns = {"xdp": self.bpf.load_func("on_xdp", prog_type("xdp")),
                     "tc": self.bpf.load_func("on_tc_ingress", prog_type("sched_cls"))}
        return df

    def attach(self) -> pd.DataFrame:
        """Build the lab network; each hook is attached only while it is measured (measure())."""
        self._require(State.LOADED, doing="attaching")
        try:
            if self.net is None:
                self.net = LabNetwork()
                self._stack.callback(self.net.close)
                self.net.up()
            _net.refuse_foreign_clsact(self.net, "rcv", f"attaching lesson {self.id}")
            if self.net.xdp_attached("rcv"):
                raise AttachError(
                    f"attaching lesson {self.id}: the receiver veth already has an XDP program; nothing was changed")
        except BaseException:
            self.detach()
            raise
        self.state = State.ATTACHED
        return pd.DataFrame([{"hook": h, "meaning": HOOKS[h]} for h in self.hook_names])

    # -------------------------------------------------------- one hook on
    def _hook_on(self, hook: str) -> Callable[[], None]:
        assert self.net is not None
        doing = f"attaching the {hook} hook of lesson {self.id}"
        if hook == "none":
            return lambda: None
        if hook.startswith("xdp-"):
            return attach_hook(self.bpf, Hook("xdp", "receiver veth", "on_xdp", net=self.net, side="rcv",
                                              xdp_mode=hook.split("-", 1)[1]), doing=doing)
        if hook == "tc":
            return attach_hook(self.bpf, Hook("sched_cls", "clsact ingress", "on_tc_ingress", net=self.net, side="rcv"),
                               doing=doing)
        if hook == "nft-ingress":
            return self._nft_on(doing)
        table, chain = ("raw", "PREROUTING") if hook == "iptables-raw" else ("filter", "INPUT")
        rule = [chain, "-t", table, "-i", self.net.ifname["rcv"], "-p", "udp", "--dport", str(self.values["port"]), "-j", "DROP"]
        token = _registry.register("iptables", netns=self.net.netns["rcv"], rule=json.dumps(rule))
        r = self.net.run("rcv", ["iptables", "-w", "5", "-A"] + rule, timeout=20)
        if r.returncode != 0:
            _registry.unregister(token)
            raise AttachError(f"{doing}: iptables -A {' '.join(rule)} failed: {r.stderr.strip()}")
        self._ipt = (table, chain)

        net = self.net

        def off() -> None:
            if not net.closed and os.getpid() == net.owner:
                net.run("rcv", ["iptables", "-w", "5", "-D"] + rule, timeout=20)
            _registry.unregister(token)

        return off

    def _nft_table(self) -> str:
        assert self.net is not None
        return f"ebl_{self.net.token}"

    def _nft_on(self, doing: str) -> Callable[[], None]:
        assert self.net is not None
        table = self._nft_table()
        ruleset = (f"table netdev {table} {{\n  chain ingress {{\n"
                   f"    type filter hook ingress device \"{self.net.ifname['rcv']}\" priority 0;\n"
                   f"    ip protocol udp udp dport {self.values['port']} counter drop\n  }}\n}}\n")
        token = _registry.register("nft", netns=self.net.netns["rcv"], table=f"netdev {table}")
        p = subprocess.run(self.net.command("rcv", ["nft", "-f", "-"]), input=ruleset, capture_output=True, text=True, timeout=20)
        if p.returncode != 0:
            _registry.unregister(token)
            raise AttachError(f"{doing}: nft -f (table netdev {table}) failed: {p.stderr.strip()}")

        net = self.net

        def off() -> None:
            if not net.closed and os.getpid() == net.owner:
                net.run("rcv", ["nft", "delete", "table", "netdev", table], timeout=20)
            _registry.unregister(token)

        return off

    def _drops(self, hook: str) -> int:
        assert self.net is not None
        if hook == "none":
            snmp = self.net.run("rcv", ["cat", "/proc/net/snmp"]).stdout
            lines = [ln.split() for ln in snmp.splitlines() if ln.startswith("Udp:")]
            if len(lines) >= 2:
                return int(dict(zip(lines[0][1:], lines[1][1:])).get("NoPorts", 0))
            return 0
        if hook == "nft-ingress":
            out = self.net.run("rcv", ["nft", "list", "table", "netdev", self._nft_table()]).stdout
            m = re.search(r"counter packets (\d+) bytes \d+ drop", out)
            return int(m.group(1)) if m else 0
        if hook.startswith("iptables"):
            table, chain = self._ipt
            out = self.net.run("rcv", ["iptables", "-w", "5", "-t", table, "-L", chain, "-v", "-x", "-n"]).stdout
            for ln in out.splitlines():
                parts = ln.split()
                if len(parts) > 2 and parts[2] == "DROP" and parts[0].isdigit():
                    return int(parts[0])
            return 0
        t = self.bpf["verdicts"]
        return int(t.sum(t.Key(0)).value)

    def _shapes(self, hook: str) -> Optional[np.ndarray]:
        """The program's frame-shape counters for this hook (summed over CPUs): frames, nonlinear, frame_bytes,
        linear_bytes; None for hooks that are not BPF programs."""
        slot = 0 if hook.startswith("xdp") else 1 if hook == "tc" else None
        if slot is None:
            return None
        t = self.bpf["shapes"]
        return np.array([[c.frames, c.nonlinear, c.frame_bytes, c.linear_bytes] for c in t[t.Key(slot)]],
                        dtype=np.int64).sum(axis=0)

    def _bpf_run(self, hook: str) -> Optional[tuple]:
        from .._bpfsys import prog_info

        key = "xdp" if hook.startswith("xdp") else "tc" if hook == "tc" else None
        if key is None:
            return None
        info = prog_info(self._fns[key].fd)
        cnt, ns = info.get("run_cnt") or 0, info.get("run_time_ns") or 0
        assert isinstance(cnt, int) and isinstance(ns, int)  # prog_info's run stats: ints, or None before 5.1
        return cnt, ns

    def _trafgen_config(self, path: str) -> None:
        with open(path, "w") as f:
            f.write(self.trafgen_config())

    def trafgen_config(self) -> str:
        """trafgen's packet description: one frame of ``frame_bytes``, sender to receiver, UDP to ``port``.

        Needs the lab network (``attach()`` builds it): the frame carries its MAC addresses.
        """
        self._require(State.ATTACHED, doing="writing the trafgen packet description of")
        assert self.net is not None
        dst = ", ".join(f"0x{b}" for b in self.net.mac("rcv").split(":"))
        src = ", ".join(f"0x{b}" for b in self.net.mac("snd").split(":"))
        frame = int(self.values["frame_bytes"])
        ip_len = frame - 14
        udp_len = ip_len - 20
        payload = udp_len - 8
        return (f"/* ebpf-lab lesson {self.id}: one UDP datagram 10.200.0.1:4000 -> 10.200.0.2:{self.values['port']} */\n"
                "{\n"
                f"  {dst},\n  {src},\n  c16(0x0800),\n"
                f"  0x45, 0x00, c16({ip_len}), c16(0), c16(0x4000), 64, 17, csumip(14, 33),\n"
                "  10, 200, 0, 1,  10, 200, 0, 2,\n"
                f"  c16(4000), c16({self.values['port']}), c16({udp_len}), c16(0),\n"
                f"  fill(0x41, {payload})\n"
                "}\n")

    def measure(self, hook: str, *, seconds: Optional[float] = None, repeat: int = 0) -> Dict[str, Any]:
        """One burst of traffic with ``hook`` attached: a row of rates and CPU costs. Detaches the hook after,
        and the whole lesson on an interrupt.

        trafgen runs under ``timeout`` (so it stops by itself even if this
        process dies), pinned to one CPU. The receive side runs in softirq on
        that same CPU (veth hands the frame to the local backlog or NAPI), so
        the CPU time of trafgen and that CPU's ksoftirqd over the window is the
        whole cost: send + receive. The window opens once frames flow (plus a
        short warm-up); trafgen is stopped (SIGINT to its group) right after it.
        """
        self._require(State.ATTACHED, doing=f"measuring the {hook} hook of")
        if hook not in HOOKS:
            raise LabParameterError(f"measuring lesson {self.id}: unknown hook {hook!r}; choose from {', '.join(HOOKS)}")
        secs = float(seconds if seconds is not None else self.values["seconds"])
        if not 0.05 <= secs <= 10:
            raise LabParameterError(f"measuring lesson {self.id}: seconds={secs!r} must be in [0.05, 10]")
        assert self.net is not None
        cpu = self.sender_cpu()
        warmup = 0.2  # after trafgen's first frames are out
        off = self._hook_on(hook)
        proc = None
        try:
            with tempfile.TemporaryDirectory(prefix="ebl-trafgen-") as tmp, RunStats() as stats:
                cfg = os.path.join(tmp, "udp.cfg")
                self._trafgen_config(cfg)
                # the safety net: trafgen stops by itself even if nothing here ever stops it
                limit = STARTUP_SECONDS + warmup + secs + 5
                argv = ["timeout", "-s", "INT", "-k", "2", f"{limit:.2f}",
                        "trafgen", "-o", self.net.ifname["snd"], "-i", cfg, "-P", "1",
                        "-n", str(min(TRAFGEN_MAX_PACKETS, int(limit * 5_000_000)))]
                da, sa, ha = self._drops(hook), self.net.link_stats("snd"), self._shapes(hook)
                proc = self.net.popen("snd", argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
                self._wait_for_traffic(proc, sa["tx_packets"])
                time.sleep(warmup)
                procs = _descendants(proc.pid)
                # trafgen pins its sending fork to a CPU of its own choosing (-P 1: CPU 0),
                # whatever affinity it was started with: measure the CPU it really runs on
                cpu = _pinned_cpu(procs, default=cpu)
                # the tasks on that CPU: trafgen's sender (and the receive softirq it runs) and the CPU's
                # ksoftirqd; `timeout` and trafgen's parent wait elsewhere (they would only add the odd tick)
                # (should trafgen not have pinned its sender, all of its processes)
                tasks = ([p for p in procs if _affinity(p) == {cpu}] or procs) + _ksoftirqd(cpu)
                # each counter with the moment it was read (reading iptables/nft counters takes a while,
                # so the drop counter brackets the rest); frames sent, the CPU's time and the tasks'
                # times are read side by side, so that each "per frame" figure has one window
                d0, td0 = _timed(self._drops, hook)
                s0, ts0 = _timed(self.net.link_stats, "snd")
                c0, k0, r0, t0 = _proc_stat(cpu), _task_ticks(tasks), self._bpf_run(hook), time.monotonic()
                time.sleep(secs)
                s1, ts1 = _timed(self.net.link_stats, "snd")
                c1, k1, r1, t1 = _proc_stat(cpu), _task_ticks(tasks), self._bpf_run(hook), time.monotonic()
                d1, td1 = _timed(self._drops, hook)
                bpf_stats = stats.enabled
                alive = proc.poll() is None
                _stop_group(proc)
                time.sleep(0.05)  # let the last frames drain through the receiver
                db, sb, hb = self._drops(hook), self.net.link_stats("snd"), self._shapes(hook)
        except BaseException as e:
            if proc is not None:
                _kill_group(proc)
            off()
            if not isinstance(e, Exception):  # Ctrl-C (KeyboardInterrupt), SystemExit: nothing stays attached
                self.detach()
            raise
        off()
        tick_ns = 1e9 / os.sysconf("SC_CLK_TCK")
        sent = s1["tx_packets"] - s0["tx_packets"]
        dropped = d1 - d0
        elapsed = t1 - t0
        per = max(sent, 1)
        bpf_ns = np.nan
        shape = dict.fromkeys(["prog_frames", "nonlinear_frames", "frame_len", "linear_len"], np.nan)
        if ha is not None and hb is not None:
            n, nl, fb, lb = (int(x) for x in hb - ha)
            shape.update(prog_frames=n, nonlinear_frames=nl, frame_len=fb / n if n else np.nan,
                         linear_len=lb / n if n else np.nan)
        if r0 is not None and r1 is not None and bpf_stats and r1[0] > r0[0]:
            bpf_ns = (r1[1] - r0[1]) / (r1[0] - r0[0])
        return {
            "hook": hook, "repeat": repeat, "seconds": round(elapsed, 4), "sent": int(sent),
            "sent_pps": sent / (ts1 - ts0), "dropped": int(dropped), "dropped_pps": dropped / (td1 - td0),
            "cpu_ns_per_pkt": (c1["busy"] - c0["busy"]) * tick_ns / per,
            # NaN when a process of the window vanished (its time would be lost), trafgen ended early,
            # or the tick counts went backwards (a reused pid): never a figure known to be wrong
            "task_ns_per_pkt": (sum(k1.values()) - sum(k0.values())) * tick_ns / per
            if alive and k0 and set(k0) == set(k1) and sum(k1.values()) > sum(k0.values()) else np.nan,
            "softirq_ns_per_pkt": (c1["softirq"] - c0["softirq"]) * tick_ns / per,
            "cpu_busy": (c1["busy"] - c0["busy"]) * tick_ns / 1e9 / elapsed,
            "bpf_ns_per_run": bpf_ns,
            "cpu": cpu,
            "sent_total": int(sb["tx_packets"] - sa["tx_packets"]),
            "dropped_total": int(db - da),
            **shape,
        }

    def _wait_for_traffic(self, proc: subprocess.Popen, tx_before: int) -> None:
        """Until trafgen's frames leave the sender veth (bounded by STARTUP_SECONDS)."""
        assert self.net is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(f"measuring lesson {self.id}: trafgen exited (status {proc.returncode}) before sending")
            if self.net.link_stats("snd")["tx_packets"] > tx_before + 1000:
                return
            time.sleep(0.02)
        raise LabError(f"measuring lesson {self.id}: trafgen sent nothing within {STARTUP_SECONDS:g} s")

    @staticmethod
    def sender_cpu() -> int:
        """The CPU trafgen (and with it the receive softirq) is pinned to: the last one we may use."""
        return max(os.sched_getaffinity(0))

    def sweep(self, *, quiet: bool = True) -> pd.DataFrame:
        """Every hook, ``repeats`` times, interleaved (hook order rotates each round)."""
        self._require(State.ATTACHED, doing="measuring")
        rows = []
        t0 = time.monotonic()
        try:
            for rep in range(int(self.values["repeats"])):
                order = self.hook_names[rep % len(self.hook_names):] + self.hook_names[:rep % len(self.hook_names)]
                for hook in order:
                    if hook in self.skipped:
                        continue
                    try:
                        row = self.measure(hook, repeat=rep)
                    except AttachError as e:
                        if hook == "xdp-native":  # a driver without native XDP: say so, measure the rest
                            self.skipped[hook] = str(e)
                            continue
                        raise
                    rows.append(row)
                    if not quiet:
                        print(f"{hook:15s} #{rep}: sent {row['sent_pps']:>10,.0f}/s dropped {row['dropped_pps']:>10,.0f}/s "
                              f"cpu {row['cpu_ns_per_pkt']:7.0f} ns/pkt", flush=True)
        except BaseException:
            self.detach()
            raise
        df = pd.DataFrame(rows, columns=list(self.columns))
        df["hook"] = pd.Categorical(df["hook"], categories=[h for h in self.hook_names if h not in self.skipped])
        df.attrs.update(self.describe(elapsed=time.monotonic() - t0))
        df.attrs["skipped"] = dict(self.skipped)
        df.attrs["summary"] = summary_text(df)
        df.attrs["shapes"] = shapes(df).to_dict(orient="index")
        df.attrs["linearity"] = linearity(df)
        return df

    def run(self, seconds: Optional[float] = None, *, workload: bool = True,
            max_events: Optional[int] = None, quiet: bool = True) -> pd.DataFrame:
        """compile, load, build the lab network, measure every hook, remove everything: one DataFrame."""
        if seconds is not None:
            self.values["seconds"] = self.params["seconds"].check("seconds", seconds)
        if not workload:
            raise LabParameterError(f"lesson {self.id} measures its own generated traffic; it has no passive mode "
                                    "(drop --no-workload)")
        with self:
            self.compile()
            self.load()
            self.attach()
            return self.sweep(quiet=quiet)

    def describe(self, elapsed: float = 0.0) -> Dict[str, Any]:
        d = super().describe(elapsed)
        d.pop("lost", None)
        d["hooks"] = list(self.hook_names)
        d["hook_notes"] = [f"{h}: {HOOKS[h]}" for h in self.hook_names]
        if self.net is not None:
            d["network"] = repr(self.net)
        d["cpus"] = os.cpu_count()
        d["kernel"] = os.uname().release
        return d


def _timed(fn: Callable[..., Any], *args: Any) -> tuple:
    """(fn(*args), the middle of the time it took)."""
    a = time.monotonic()
    v = fn(*args)
    return v, (a + time.monotonic()) / 2


def _descendants(pid: int) -> List[int]:
    """``pid`` and every process below it (trafgen forks its sender under ``timeout``)."""
    parent: Dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parent.items() if pp == p]
    return out


def _ksoftirqd(cpu: int) -> List[int]:
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() == f"ksoftirqd/{cpu}":
                        return [int(d)]
            except OSError:
                continue
    return []


def _pinned_cpu(pids: List[int], default: int) -> int:
    """The one CPU the deepest of these processes is pinned to (trafgen's sender), else ``default``."""
    for p in reversed(pids):
        try:
            cpus = os.sched_getaffinity(p)
        except OSError:
            continue
        if len(cpus) == 1:
            return next(iter(cpus))
    return default


def _affinity(pid: int) -> set:
    try:
        return set(os.sched_getaffinity(pid))
    except OSError:
        return set()


def _task_ticks(pids: List[int]) -> Dict[int, int]:
    """utime + stime (clock ticks) of each of these processes that still exists."""
    out: Dict[int, int] = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[p] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return out


def _stop_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGINT to trafgen's process group (it prints its statistics and exits), SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop trafgen and its forked sender: ``timeout`` leads their own process group."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait(timeout=30)  # SIGKILL: only an unkillable (D-state) process outlives this


# ------------------------------------------------------------- results
def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Median and spread (min, max) per hook of the main figures."""
    cols = ["sent_pps", "dropped_pps", "task_ns_per_pkt", "cpu_ns_per_pkt", "bpf_ns_per_run"]
    g = df.groupby("hook", observed=True)[cols]
    out = g.median().add_suffix("_median").join(g.min().add_suffix("_min")).join(g.max().add_suffix("_max"))
    out["runs"] = df.groupby("hook", observed=True).size()
    return out


def iptables_backend() -> str:
    """``iptables --version`` and what it means: ``nf_tables`` (iptables-nft) or ``legacy`` (x_tables)."""
    try:
        v = subprocess.run(["iptables", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"iptables could not be run ({e})"
    if "nf_tables" in v:
        return (f"{v}: this `iptables` is iptables-nft — its rules are nftables rules underneath, in the classic "
                "tables and chains")
    if "legacy" in v:
        return f"{v}: this `iptables` is iptables-legacy — the old x_tables engine, separate from nftables"
    return v


def findings(df: pd.DataFrame) -> str:
    """What a sweep measured, in words computed from it: per hook, drops/s with their spread and CPU per frame
    against the no-rule baseline; the cheapest and dearest drop and whether their ranges overlap; and whether the
    tutorial's claim (XDP cheaper than iptables) held on this run. The machine's facts come from ``df.attrs``."""
    if df.empty:
        return "no measurements"
    s = summarize(df)
    base = s.loc["none", "task_ns_per_pkt_median"] if "none" in s.index else np.nan
    p = df.attrs.get("params", {})
    lines = [f"kernel {df.attrs.get('kernel', '?')}, {df.attrs.get('cpus', '?')} CPUs, {p.get('frame_bytes', '?')}-byte "
             f"frames, {p.get('repeats', '?')} x {p.get('seconds', '?')} s per hook", ""]
    for hook, r in s.iterrows():
        spread = ((r.dropped_pps_max - r.dropped_pps_min) / r.dropped_pps_median * 100
                  if r.dropped_pps_median else float("nan"))
        if hook == "none":
            saved = ""
        elif base == base and r.task_ns_per_pkt_median < base:
            saved = f", {1 - r.task_ns_per_pkt_median / base:.0%} less CPU/frame than no rule"
        else:
            saved = ", more CPU/frame than no rule"
        bpf = (f", program itself {r.bpf_ns_per_run_median:.0f} ns/run"
               if r.bpf_ns_per_run_median == r.bpf_ns_per_run_median else "")
        lines.append(f"{hook:15s} {r.dropped_pps_median:>10,.0f} drops/s (spread {spread:.0f}%), "
                     f"{r.task_ns_per_pkt_median:>6,.0f} ns CPU/frame{saved}{bpf}")
    drops = s.drop(index="none", errors="ignore")
    if len(drops):
        best, worst = drops["task_ns_per_pkt_median"].idxmin(), drops["task_ns_per_pkt_median"].idxmax()
        gap = drops.loc[worst, "task_ns_per_pkt_median"] / drops.loc[best, "task_ns_per_pkt_median"] - 1
        overlap = drops.loc[best, "task_ns_per_pkt_max"] >= drops.loc[worst, "task_ns_per_pkt_min"]
        lines.append("")
        lines.append(f"cheapest drop here: {best}; most expensive: {worst} (+{gap:.0%}); "
                     + ("their ranges overlap: in this run the hooks are not clearly apart."
                        if overlap else "their ranges do not overlap."))
    xdp = [h for h in ("xdp-native", "xdp-generic") if h in s.index]
    ipt = [h for h in ("iptables-raw", "iptables-input") if h in s.index]
    if xdp and ipt:
        x = s.loc[xdp, "task_ns_per_pkt_median"].min()
        i = s.loc[ipt, "task_ns_per_pkt_median"].min()
        lines.append(f"the tutorial's claim, XDP cheaper than iptables: best XDP {x:,.0f} ns/frame vs best iptables "
                     f"{i:,.0f} ns/frame -> " + ("holds in this run" if x < i else
                                                 "does not hold in this run (see below why veth is special)"))
    return "\n".join(lines)


def shapes(df: pd.DataFrame) -> pd.DataFrame:
    """Per BPF hook, over all its bursts: frames the program was given, how many non-linear, and the mean whole
    length against the mean part it could read directly."""
    b = df[df["prog_frames"].notna() & (df["prog_frames"] > 0)].copy()
    if b.empty:
        return pd.DataFrame(columns=["frames", "nonlinear", "frame_len", "linear_len"])
    b["fb"], b["lb"] = b["frame_len"] * b["prog_frames"], b["linear_len"] * b["prog_frames"]
    g = b.groupby("hook", observed=True)[["prog_frames", "nonlinear_frames", "fb", "lb"]].sum()
    return pd.DataFrame({"frames": g["prog_frames"].astype(int), "nonlinear": g["nonlinear_frames"].astype(int),
                         "frame_len": g["fb"] / g["prog_frames"], "linear_len": g["lb"] / g["prog_frames"]})


def linearity(df: pd.DataFrame) -> str:
    """What the BPF programs were given, in words computed from the run: how many frames reached TC non-linear
    (and how much of each was linear), and whether the XDP hooks were given the same traffic whole and linear —
    which, for frames that arrive non-linear, means the kernel copied them first."""
    s = shapes(df)
    if s.empty:
        return "no BPF hook was measured: nothing to say about the frames' shape"
    out = []
    tc_nonlinear = None
    if "tc" in s.index:
        r = s.loc["tc"]
        tc_nonlinear = int(r.nonlinear)
        if r.nonlinear:
            out.append(f"TC was given {int(r.nonlinear):,} of {int(r.frames):,} frames non-linear: on average "
                       f"{r.linear_len:.0f} of their {r.frame_len:.0f} bytes in the linear part, the rest in page "
                       "fragments (the program pulled the headers it reads).")
        else:
            out.append(f"TC was given all {int(r.frames):,} frames linear ({r.linear_len:.0f} of {r.frame_len:.0f} "
                       "bytes): the traffic arrived linear on this kernel.")
    for hook in [h for h in s.index if str(h).startswith("xdp")]:
        r = s.loc[hook]
        if r.nonlinear:
            out.append(f"{hook} was given {int(r.nonlinear):,} of {int(r.frames):,} frames non-linear "
                       f"({r.linear_len:.0f} of {r.frame_len:.0f} bytes linear on average).")
            continue
        line = (f"{hook} always saw the whole frame linear: {int(r.frames):,} frames, {r.linear_len:.0f} of "
                f"{r.frame_len:.0f} bytes")
        if tc_nonlinear:
            line += " — the frames TC sees non-linear were copied into one buffer by the kernel before the program ran."
        elif tc_nonlinear == 0:
            line += " — the frames arrived linear, so no copy was needed to make them so."
        else:
            line += " (measure tc too, to see whether they arrive non-linear)."
        out.append(line)
    return "\n".join(out)


def summary_text(df: pd.DataFrame) -> str:
    if df.empty:
        return "no measurements"
    s = summarize(df)
    best = s["dropped_pps_median"].idxmax()
    parts = [f"{h}: {r.dropped_pps_median:,.0f} drops/s, {r.task_ns_per_pkt_median:,.0f} ns CPU/frame"
             for h, r in s.iterrows()]
    return f"most drops/s: {best}. " + "; ".join(parts)


def plot_hooks(df: pd.DataFrame) -> Any:
    """Two panels: packets dropped per second and CPU time per packet, each repeat as a point, median as a bar."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    hooks = list(df["hook"].cat.categories) if hasattr(df["hook"], "cat") else list(dict.fromkeys(df["hook"]))
    x = np.arange(len(hooks))
    for ax, col, label in [(axes[0], "dropped_pps", "frames dropped per second"),
                           (axes[1], "task_ns_per_pkt", "CPU ns per frame (trafgen + ksoftirqd)")]:
        med = [df.loc[df["hook"] == h, col].median() for h in hooks]
        ax.bar(x, med, color=["#adb5bd" if h == "none" else "#f4a261" if h.startswith("xdp") else
                              "#2a9d8f" if h == "tc" else "#8ab6d6" for h in hooks], alpha=0.8)
        for i, h in enumerate(hooks):
            v = df.loc[df["hook"] == h, col]
            ax.scatter(np.full(len(v), i) + np.linspace(-0.15, 0.15, len(v)) if len(v) > 1 else [i], v, color="k", s=12, zorder=3)
        ax.set_xticks(x)
        ax.set_xticklabels(hooks, rotation=25, ha="right")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_title("higher is better")
    axes[1].set_title("lower is better")
    fig.suptitle(f"Same UDP drop rule, same trafgen traffic ({df.attrs.get('params', {}).get('frame_bytes', '?')}-byte frames)")
    fig.tight_layout()
    return fig
