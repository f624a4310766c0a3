"""Plumbing shared by the network lessons (04, 05): attach BPF programs to the
lab network's interfaces through netlink, run shell commands and show them,
draw the receive path. Everything here refuses to act outside a LabNetwork.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import shlex
import shutil
import subprocess
from typing import Any, Callable, Dict, List, Optional, Sequence

from .. import _registry
from ..errors import AttachError, FeatureUnavailable, LabError
from ..netlab import LabNetwork

TC_H_CLSACT = 0xFFFFFFF1
TC_INGRESS_PARENT = 0xFFFFFFF2
XDP_FLAGS_UPDATE_IF_NOEXIST = 1
XDP_FLAGS = {"generic": 1 << 1, "native": 1 << 2}
TC_ACT = {0: "TC_ACT_OK", 2: "TC_ACT_SHOT", -1: "TC_ACT_UNSPEC"}
XDP_ACT = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}

TOOL_PACKAGES = {"clang": "clang", "llc": "llvm", "tc": "iproute2", "ip": "iproute2", "ping": "iputils-ping",
                 "trafgen": "netsniff-ng", "iptables": "iptables", "nft": "nftables"}


def require_tools(*tools: str, doing: str) -> Dict[str, str]:
    """Absolute paths of ``tools``; FeatureUnavailable naming every missing one (and its package)."""
    found = {t: shutil.which(t) for t in tools}
    missing = [t for t, p in found.items() if not p]
    if missing:
        pkgs = sorted({TOOL_PACKAGES.get(t, t) for t in missing})
        raise FeatureUnavailable(
            missing[0], f"{doing}: {', '.join(missing)} not found on PATH; nothing was changed. "
                        f"Install with `apt-get install {' '.join(pkgs)}` (or run scripts/setup.sh)")
    return {t: str(p) for t, p in found.items()}


@dataclasses.dataclass
class CommandResult:
    """A shell command the lesson ran, with what it printed: shown as a terminal would."""

    command: str
    returncode: int
    stdout: str
    stderr: str
    where: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).rstrip()

    def __str__(self) -> str:
        where = f"  # in namespace {self.where}" if self.where else ""
        status = "" if self.ok else f"\n[exit status {self.returncode}]"
        out = self.output or ("(no output: success)" if self.ok else "")
        return f"$ {self.command}{where}\n{out}{status}".rstrip()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def run_shell(argv: Sequence[str], *, net: Optional[LabNetwork] = None, side: str = "rcv", shown: Optional[str] = None,
              timeout: float = 60.0, input: Optional[str] = None, shell_pipeline: bool = False) -> CommandResult:
    """Run a command (inside a lab namespace when ``net`` is given) and keep what it printed."""
    shown = shown or (" ".join(shlex.quote(a) for a in argv) if not shell_pipeline else argv[0])
    if shell_pipeline:
        cmd: List[str] = ["bash", "-o", "pipefail", "-c", argv[0]]
    else:
        cmd = list(argv)
    if net is not None:
        cmd = net.command(side, cmd)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    return CommandResult(shown, p.returncode, p.stdout, p.stderr, net.netns[side] if net is not None else "")


# --------------------------------------------------------------------- TC
def has_clsact(net: LabNetwork, side: str) -> bool:
    with net.ipr(side) as ipr:
        return any(q.get("kind") == "clsact" for q in ipr.get_qdiscs(index=net.ifindex(side)))


def refuse_foreign_clsact(net: LabNetwork, side: str, doing: str) -> None:
    """A clsact qdisc the lesson did not add may carry someone's filters: never add to it, never delete it."""
    if has_clsact(net, side):
        raise AttachError(
            f"{doing}: {net.ifname[side]} (namespace {net.netns[side]}) already has a clsact qdisc that this "
            "lesson did not add; attaching would mix our filter with its filters, and detaching would delete "
            "them. Nothing was changed. Remove it yourself if it is yours "
            f"(`ip netns exec {net.netns[side]} tc qdisc del dev {net.ifname[side]} clsact`), or use a fresh LabNetwork.")


def attach_tc_ingress(net: LabNetwork, side: str, fd: int, name: str, *, doing: str) -> Callable[[], None]:
    """Add a clsact qdisc and a direct-action bpf filter on ingress; returns the detach (deletes the qdisc)."""
    refuse_foreign_clsact(net, side, doing)
    idx = net.ifindex(side)
    dev = net.ifname[side]
    token = _registry.register("qdisc", dev=dev, netns=net.netns[side], qdisc="clsact")
    try:
        with net.ipr(side) as ipr:
            ipr.tc("add", "clsact", idx)
            ipr.tc("add-filter", "bpf", idx, ":1", fd=fd, name=name, parent=TC_INGRESS_PARENT, classid=1,
                   direct_action=True)
    except BaseException as e:
        _del_clsact(net, side)
        _registry.unregister(token)
        if isinstance(e, Exception):
            raise AttachError(f"{doing}: adding clsact + bpf filter on {dev}: {e}") from e
        raise

    def detach() -> None:
        _del_clsact(net, side)
        _registry.unregister(token)

    return detach


def _gone_errors() -> tuple:
    """What netlink raises when the object to remove is already gone."""
    from pyroute2.netlink.exceptions import NetlinkError

    return (OSError, NetlinkError, KeyError, IndexError)  # IndexError: link_lookup found no such link


def _del_clsact(net: LabNetwork, side: str) -> None:
    if net.closed or os.getpid() != net.owner:
        return
    try:
        with net.ipr(side) as ipr:
            ipr.tc("del", "clsact", net.ifindex(side))
    except _gone_errors():  # already gone: the namespace, the link or the qdisc
        pass


def attach_xdp(net: LabNetwork, side: str, fd: int, mode: str, *, doing: str) -> Callable[[], None]:
    """Attach an XDP program in ``generic`` or ``native`` mode; refuses to replace a program already there."""
    if mode not in XDP_FLAGS:
        raise LabError(f"{doing}: XDP mode {mode!r}: choose generic or native")
    if net.xdp_attached(side):
        raise AttachError(f"{doing}: {net.ifname[side]} already has an XDP program ({net.xdp_attached(side)}); "
                          "nothing was changed")
    idx = net.ifindex(side)
    flags = XDP_FLAGS[mode] | XDP_FLAGS_UPDATE_IF_NOEXIST
    token = _registry.register("xdp", dev=net.ifname[side], netns=net.netns[side],
                               mode="xdpgeneric" if mode == "generic" else "xdpdrv")
    try:
        with net.ipr(side) as ipr:
            ipr.link("set", index=idx, xdp={"attrs": [("IFLA_XDP_FD", fd), ("IFLA_XDP_FLAGS", flags)]})
        got = net.xdp_attached(side)
        want = "xdpgeneric" if mode == "generic" else "xdp"
        if got != want:
            raise AttachError(f"{doing}: asked for XDP {mode} mode on {net.ifname[side]}, the kernel reports {got!r}")
    except BaseException as e:
        _del_xdp(net, side, mode)
        _registry.unregister(token)
        if isinstance(e, AttachError) or not isinstance(e, Exception):
            raise
        raise AttachError(f"{doing}: attaching XDP ({mode}) to {net.ifname[side]}: {e}") from e

    def detach() -> None:
        _del_xdp(net, side, mode)
        _registry.unregister(token)

    return detach


def _del_xdp(net: LabNetwork, side: str, mode: str) -> None:
    if net.closed or os.getpid() != net.owner:
        return
    try:
        with net.ipr(side) as ipr:
            ipr.link("set", index=net.ifindex(side),
                     xdp={"attrs": [("IFLA_XDP_FD", -1), ("IFLA_XDP_FLAGS", XDP_FLAGS[mode])]})
    except _gone_errors():  # already gone: the namespace or the link
        pass


# ------------------------------------------------------------ run stats
class RunStats:
    """BPF run statistics (run_cnt, run_time_ns) switched on for as long as this object is open.

    Uses BPF_ENABLE_STATS, which turns statistics off again when its fd is
    closed, instead of flipping the global sysctl ``kernel.bpf_stats_enabled``.
    """

    BPF_ENABLE_STATS = 32

    def __init__(self) -> None:
        from .._bpfsys import sys_bpf

        attr = ctypes.create_string_buffer(8)  # enable_stats.type = BPF_STATS_RUN_TIME (0)
        try:
            self.fd: Optional[int] = sys_bpf(self.BPF_ENABLE_STATS, attr)
        except OSError:
            self.fd = None

    @property
    def enabled(self) -> bool:
        from .._bpfsys import bpf_stats_enabled

        return self.fd is not None or bool(bpf_stats_enabled())

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunStats":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------- diagram
def receive_path_figure(highlight: Sequence[str] = ("xdp", "tc", "iptables"), ax: Any = None) -> Any:
    """Draw the Linux receive path, marking where XDP, TC (clsact) and iptables run. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    stages = [
        ("NIC", "frame arrives, DMA into\nthe RX ring buffer", None),
        ("driver (NAPI poll)", "XDP native: on the raw frame,\nbefore any sk_buff exists", "xdp"),
        ("sk_buff allocated", "XDP generic (skb mode):\nsame program, after the skb", "xdp"),
        ("TC ingress (clsact)", "cls_bpf / SCHED_CLS (skb->len counts the\nEthernet header); then nftables netdev ingress", "tc"),
        ("netfilter PREROUTING", "iptables -t raw / mangle / nat\n(conntrack starts here)", "iptables"),
        ("routing decision", "local or forward?", None),
        ("netfilter INPUT", "iptables -t filter INPUT", "iptables"),
        ("transport (UDP/TCP)", "socket lookup", None),
        ("socket → application", "recv()", None),
    ]
    colors = {"xdp": "#f4a261", "tc": "#2a9d8f", "iptables": "#8ab6d6", None: "#e9ecef"}
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 6.2))
    else:
        fig = ax.figure
    n = len(stages)
    for i, (name, note, hook) in enumerate(stages):
        y = n - 1 - i
        c = colors[hook] if hook in highlight or hook is None else colors[None]
        ax.add_patch(FancyBboxPatch((0.05, y + 0.12), 0.38, 0.76, boxstyle="round,pad=0.02", fc=c, ec="#333"))
        ax.text(0.24, y + 0.5, name, ha="center", va="center", fontsize=10, weight="bold")
        ax.text(0.48, y + 0.5, note, ha="left", va="center", fontsize=9)
        if i < n - 1:
            ax.annotate("", xy=(0.24, y - 0.1), xytext=(0.24, y + 0.1),
                        arrowprops=dict(arrowstyle="->", color="#333"))
    ax.annotate("", xy=(0.97, n - 0.3), xytext=(0.97, 0.3), arrowprops=dict(arrowstyle="->", color="#555", lw=1.5))
    ax.text(0.955, n / 2, "a drop here is earlier:\nless work was spent on the packet", rotation=90,
            ha="right", va="center", fontsize=8.5, color="#555")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.1, n)
    ax.axis("off")
    ax.set_title("Receive path: where XDP, TC and iptables see a packet")
    return fig
