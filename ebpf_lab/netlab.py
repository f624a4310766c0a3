"""A disposable lab network: two network namespaces joined by a veth pair.

    with LabNetwork() as net:                      # ebl-<pid>-<random>-snd / -rcv
        net.ping(payload=100)                      # sender -> receiver, a real ICMP echo
        with net.ipr("rcv") as ipr: ...            # pyroute2 inside the receiver namespace

::

    namespace ebl-<pid>-<tok>-snd              namespace ebl-<pid>-<tok>-rcv
    ┌───────────────────────────┐              ┌───────────────────────────┐
    │ ebl<tok>s  10.200.0.1/24  │──── veth ────│ ebl<tok>r  10.200.0.2/24  │
    └───────────────────────────┘              └───────────────────────────┘

Everything is made through netlink (pyroute2), inside the lab's own
namespaces: the machine's interfaces are never touched, and the addresses
cannot clash with the host's because the namespaces have their own stacks.
Each object is recorded in :mod:`ebpf_lab._registry` the moment it exists, so
it is removed on ``close()``, on an exception or KeyboardInterrupt, at
interpreter exit, by the reaper when the owner is killed, and by
``ebpf-lab cleanup`` (:func:`cleanup_orphans`) after anything else.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import time
from typing import Any, Dict, Iterator, List, Optional

from . import _registry
from .errors import FeatureUnavailable, LabError, LabParameterError, PrivilegeError

__all__ = ["LabNetwork", "cleanup_orphans", "lab_objects", "NETNS_RUN_DIR"]

NETNS_RUN_DIR = "/run/netns"
SENDER_ADDR = "10.200.0.1"
RECEIVER_ADDR = "10.200.0.2"
PREFIXLEN = 24
#: a lab namespace: ebl-<owner pid>-<6 hex>-snd|rcv
_NS_RX = re.compile(r"^ebl-(\d+)-([0-9a-f]{6})-(snd|rcv)$")
_ALIAS_RX = re.compile(r"^ebpf-lab pid=(\d+)")
_SIDES = ("snd", "rcv")


def _default_sigterm_in_child() -> None:
    """pyroute2 forks helpers to enter namespaces and stops them with SIGTERM. A handler inherited from
    the parent (the CLI's raises SystemExit) would make such a helper unwind through the parent's code
    instead of dying; the helpers get the default action back."""
    import signal

    try:
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):
        pass


os.register_at_fork(after_in_child=_default_sigterm_in_child)


#: seconds one netlink call (or namespace helper) may take before the lab gives up on it, with an error
#: naming the call. Netlink answers in milliseconds; under software emulation on a busy machine, seconds.
NETLINK_TIMEOUT_S = float(os.environ.get("EBPF_LAB_NETLINK_TIMEOUT_S", "60"))


class _NetlinkThread:
    """One daemon thread that runs every pyroute2 call (see :func:`_nl`).

    A daemon thread, not a ThreadPoolExecutor: an executor's threads are joined
    at interpreter exit, so one netlink call that never returned would hang the
    exit of the process (a notebook kernel, a test run) with nothing printed.
    """

    def __init__(self) -> None:
        import queue
        import threading

        self.queue: "queue.Queue[Any]" = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="ebl-netlink", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            fut, fn, args, kw = self.queue.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args, **kw))
            except BaseException as e:  # handed to the caller
                fut.set_exception(e)

    def submit(self, fn: Any, *args: Any, **kw: Any) -> Any:
        from concurrent.futures import Future

        fut: Future = Future()
        self.queue.put((fut, fn, args, kw))
        return fut


_POOL: Optional[_NetlinkThread] = None


def _forget_pool_in_child() -> None:
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_forget_pool_in_child)


def _nl(fn: Any, *args: Any, **kw: Any) -> Any:
    """Run a pyroute2 call on the lab's netlink thread, bounded by NETLINK_TIMEOUT_S.

    pyroute2 (0.9+) runs an asyncio loop in the calling thread; in Jupyter the
    kernel's own loop already runs there ("This event loop is already
    running"). One dedicated thread does every netlink call instead. At
    interpreter shutdown (no new threads) the call runs here. A call that does
    not return in time raises LabError naming it; its thread is abandoned (a
    new one serves later calls) so that one stuck call cannot stall the rest.
    """
    global _POOL
    from concurrent.futures import TimeoutError as FutureTimeout

    import sys

    if sys.is_finalizing():
        return fn(*args, **kw)
    if _POOL is None or not _POOL.thread.is_alive():
        try:
            _POOL = _NetlinkThread()
        except RuntimeError:  # interpreter shutting down: no new threads
            return fn(*args, **kw)
    fut = _POOL.submit(fn, *args, **kw)
    try:
        return fut.result(timeout=NETLINK_TIMEOUT_S)
    except FutureTimeout:
        fut.cancel()
        _POOL = None
        name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
        raise LabError(f"netlink call {name}{tuple(args)!r} did not answer within {NETLINK_TIMEOUT_S:g} s "
                       "(EBPF_LAB_NETLINK_TIMEOUT_S); the machine may be overloaded, or a kernel netlink "
                       "request is stuck. Run `ebpf-lab cleanup` to remove what the lab created.") from None


class _NetlinkProxy:
    """An IPRoute living on the netlink thread; every method call is sent there."""

    def __init__(self, **kw: Any) -> None:
        IPRoute, _ = _pyroute2()
        self._ipr = _nl(IPRoute, **kw)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ipr, name)
        if callable(attr):
            return lambda *a, **k: _nl(attr, *a, **k)
        return attr

    def close(self) -> None:
        _nl(self._ipr.close)

    def __enter__(self) -> "_NetlinkProxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _pyroute2() -> Any:
    try:
        from pyroute2 import IPRoute, config, netns
    except ImportError as e:  # pragma: no cover - declared dependency
        raise FeatureUnavailable("pyroute2", f"building the lab network: pyroute2 is not installed ({e}); "
                                 "run scripts/setup.sh or pip install pyroute2") from None
    _slow_machine_timeouts(config)
    return IPRoute, netns


def _slow_machine_timeouts(config: Any) -> None:
    """pyroute2 forks a helper to enter a namespace and kills it when it has not answered in 2 s
    (``default_communicate_timeout``), retrying for 10 s. Forking a notebook kernel (LLVM loaded) under
    software emulation can take longer than that: the helpers get the lab's netlink bound instead."""
    bound = max(1, int(NETLINK_TIMEOUT_S))
    for name, value in (("default_communicate_timeout", max(2, bound // 3)),
                        ("default_create_socket_timeout", max(10, bound))):
        if isinstance(getattr(config, name, None), (int, float)) and getattr(config, name) < value:
            setattr(config, name, value)


class LabNetwork:
    """Two namespaces (``snd``, ``rcv``) joined by a veth pair with IPv4 addresses.

    Names are unique per process and per instance (owner pid + 24 random bits),
    and interface names stay within the kernel's 15 characters. IPv6 is off in
    both namespaces so that nothing but the lesson's own traffic crosses.
    """

    def __init__(self, *, mtu: int = 1500) -> None:
        if not isinstance(mtu, int) or not 68 <= mtu <= 9000:
            raise LabParameterError(f"building the lab network: mtu={mtu!r} must be an integer in [68, 9000]")
        self.mtu = mtu
        self.owner = os.getpid()
        self.token = secrets.token_hex(3)
        self.name = f"ebl-{self.owner}-{self.token}"
        self.netns = {"snd": f"{self.name}-snd", "rcv": f"{self.name}-rcv"}
        self.ifname = {"snd": f"ebl{self.token}s", "rcv": f"ebl{self.token}r"}
        self.addr = {"snd": SENDER_ADDR, "rcv": RECEIVER_ADDR}
        self._tokens: List[int] = []
        self._created: List[str] = []
        self.up_seconds = 0.0
        self.closed = False
        self.is_up = False

    # ----------------------------------------------------------- lifecycle
    def __repr__(self) -> str:
        state = "up" if self.is_up and not self.closed else ("closed" if self.closed else "new")
        return (f"<LabNetwork {self.name} [{state}] {self.netns['snd']}:{self.ifname['snd']} {SENDER_ADDR} "
                f"<-veth-> {self.netns['rcv']}:{self.ifname['rcv']} {RECEIVER_ADDR}>")

    def __enter__(self) -> "LabNetwork":
        self.up()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def up(self) -> "LabNetwork":
        """Create the namespaces, the veth pair, addresses; bring everything up."""
        if self.closed:
            raise LabError(f"building lab network {self.name}: it was closed; make a new LabNetwork")
        if self.is_up:
            return self
        if os.geteuid() != 0:
            raise PrivilegeError(
                "building the lab network: creating network namespaces needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
        import shutil

        if shutil.which("ip") is None:
            raise FeatureUnavailable("ip", "building the lab network: `ip` (iproute2) runs commands inside the lab "
                                     "namespaces (ip netns exec) and is not on PATH; nothing was changed. "
                                     "Install with `apt-get install iproute2`")
        _, netns = _pyroute2()
        IPRoute = _NetlinkProxy
        t0 = time.monotonic()
        try:
            for side in _SIDES:
                ns = self.netns[side]
                if os.path.exists(os.path.join(NETNS_RUN_DIR, ns)):  # 24 random bits + pid: practically never
                    raise LabError(f"building the lab network: namespace {ns} already exists; not touching it")
                self._tokens.append(_registry.register("netns", name=ns, owner=str(self.owner)))
                _nl(netns.create, ns)
                self._created.append(ns)
                self._sysctl(side, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
            alias = f"ebpf-lab pid={self.owner} net={self.name}"
            with IPRoute(netns=self.netns["snd"]) as ipr:
                self._tokens.append(_registry.register("link", name=self.ifname["snd"], netns=self.netns["snd"]))
                ipr.link("add", ifname=self.ifname["snd"], kind="veth",
                         peer={"ifname": self.ifname["rcv"], "net_ns_fd": self.netns["rcv"]})
            for side in _SIDES:
                with IPRoute(netns=self.netns[side]) as ipr:
                    idx = ipr.link_lookup(ifname=self.ifname[side])[0]
                    ipr.link("set", index=idx, mtu=self.mtu, ifalias=alias)
                    ipr.addr("add", index=idx, address=self.addr[side], prefixlen=PREFIXLEN)
                    ipr.link("set", index=idx, state="up")
                    lo = ipr.link_lookup(ifname="lo")
                    if lo:
                        ipr.link("set", index=lo[0], state="up")
            self._wait_carrier()
        except BaseException as e:
            self.close()
            if isinstance(e, (LabError, KeyboardInterrupt, SystemExit)):
                raise
            raise LabError(f"building lab network {self.name}: {e}") from e
        self.is_up = True
        self.up_seconds = round(time.monotonic() - t0, 3)
        return self

    def _wait_carrier(self, timeout: float = 3.0) -> None:
        IPRoute = _NetlinkProxy
        deadline = time.monotonic() + timeout
        while True:
            ok = True
            for side in _SIDES:
                with IPRoute(netns=self.netns[side]) as ipr:
                    link = ipr.get_links(ipr.link_lookup(ifname=self.ifname[side])[0])[0]
                    ok &= link.get("operstate") == "UP"
            if ok or time.monotonic() > deadline:
                return
            time.sleep(0.02)

    def close(self) -> None:
        """Remove both namespaces (which removes the veth pair and everything on it). Idempotent."""
        if self.closed or os.getpid() != self.owner:
            return  # a forked child (pyroute2 forks to enter namespaces) never removes its parent's network
        self.closed = True
        _, netns = _pyroute2()
        for ns in reversed(self._created):
            try:
                _nl(netns.remove, ns)
            except Exception:
                _registry.remove({"kind": "netns", "name": ns})
        for tok in reversed(self._tokens):
            _registry.unregister(tok)
        self._tokens.clear()

    # ------------------------------------------------------------- helpers
    def _side(self, side: str) -> str:
        if side not in _SIDES:
            raise LabParameterError(f"lab network {self.name}: side={side!r}: choose 'snd' or 'rcv'")
        if self.closed or not self.is_up and not self._created:
            raise LabError(f"using lab network {self.name}: it is {'closed' if self.closed else 'not up'}")
        return side

    @contextlib.contextmanager
    def ipr(self, side: str = "rcv") -> Iterator[Any]:
        """pyroute2 IPRoute inside one of the lab's namespaces (its calls run on the lab's netlink thread)."""
        with _NetlinkProxy(netns=self.netns[self._side(side)]) as ipr:
            yield ipr

    def ifindex(self, side: str = "rcv") -> int:
        with self.ipr(side) as ipr:
            return int(ipr.link_lookup(ifname=self.ifname[side])[0])

    def mac(self, side: str = "rcv") -> str:
        with self.ipr(side) as ipr:
            return str(ipr.get_links(ipr.link_lookup(ifname=self.ifname[side])[0])[0].get("address"))

    def command(self, side: str, argv: List[str]) -> List[str]:
        """The argv that runs ``argv`` inside a lab namespace (``ip netns exec``)."""
        return ["ip", "netns", "exec", self.netns[self._side(side)]] + list(argv)

    def run(self, side: str, argv: List[str], *, timeout: float = 30.0, check: bool = False) -> subprocess.CompletedProcess:
        """Run a command inside a lab namespace; bounded by ``timeout`` seconds."""
        return subprocess.run(self.command(side, argv), capture_output=True, text=True, timeout=timeout, check=check)

    def popen(self, side: str, argv: List[str], **kw: Any) -> subprocess.Popen:
        return subprocess.Popen(self.command(side, argv), **kw)

    def _sysctl(self, side: str, *settings: str) -> None:
        cmd = ["ip", "netns", "exec", self.netns[side], "sysctl", "-q", "-w", *settings]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)

    def link_stats(self, side: str = "rcv") -> Dict[str, int]:
        """The interface's packet counters (IFLA_STATS64)."""
        with self.ipr(side) as ipr:
            link = ipr.get_links(ipr.link_lookup(ifname=self.ifname[side])[0])[0]
            st = link.get("stats64") or link.get("stats") or {}
            keys = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped")
            return {k: int(st.get(k, 0)) for k in keys}

    def qdiscs(self, side: str = "rcv") -> List[str]:
        """Kinds of the qdiscs on the lab interface (``clsact`` when TC programs can attach)."""
        with self.ipr(side) as ipr:
            return [str(q.get("kind")) for q in ipr.get_qdiscs(index=self.ifindex(side))]

    def xdp_attached(self, side: str = "rcv") -> Optional[str]:
        """'xdp' (native), 'xdpgeneric', ... or None."""
        with self.ipr(side) as ipr:
            link = ipr.get_links(ipr.link_lookup(ifname=self.ifname[side])[0])[0]
            x = link.get("xdp")
            mode = x.get_attr("IFLA_XDP_ATTACHED") if x is not None else None
            return None if mode in (None, "none") else str(mode)

    def ping(self, payload: int, *, count: int = 2, interval: float = 0.02, wait: float = 0.3,
             src: str = "snd") -> Dict[str, Any]:
        """``ping -s payload`` from one namespace to the other; how many echo replies came back.

        ``-M do`` forbids fragmentation, so one echo request is one frame of
        payload + 8 (ICMP) + 20 (IPv4) + 14 (Ethernet) bytes.
        """
        if not isinstance(payload, int) or isinstance(payload, bool) or not 0 <= payload <= 65507:
            raise LabParameterError(f"pinging across {self.name}: payload={payload!r} must be an integer in [0, 65507]")
        if not 1 <= count <= 100:
            raise LabParameterError(f"pinging across {self.name}: count={count!r} must be in [1, 100]")
        dst = self.addr["rcv" if src == "snd" else "snd"]
        argv = ["ping", "-n", "-q", "-M", "do", "-c", str(count), "-i", f"{interval:g}", "-W", f"{wait:g}", "-s", str(payload),
                dst]
        try:
            p = self.run(src, argv, timeout=count * interval + wait + 10)
        except FileNotFoundError:
            raise FeatureUnavailable(
                "ping", "pinging across the lab network: `ping` is not installed (apt-get install iputils-ping)") from None
        m = re.search(r"(\d+) packets transmitted, (\d+) received", p.stdout)
        if m is None:
            if "ip: " in p.stderr or "exec of" in p.stderr or "No such file" in p.stderr:
                raise FeatureUnavailable("ping", f"pinging across the lab network failed: {p.stderr.strip()} "
                                         "(apt-get install iputils-ping)")
            raise LabError(f"pinging {dst} with {payload} payload bytes across {self.name}: "
                           f"ping said {(p.stdout + p.stderr).strip()!r}")
        return {"payload_bytes": payload, "sent": int(m.group(1)), "received": int(m.group(2)),
                "command": " ".join(argv)}

    def leftovers(self) -> List[str]:
        """What of this network still exists (empty after close())."""
        out = []
        for side in _SIDES:
            if os.path.exists(os.path.join(NETNS_RUN_DIR, self.netns[side])):
                out.append(f"netns {self.netns[side]}")
        for name in self.ifname.values():
            if os.path.exists(f"/sys/class/net/{name}"):
                out.append(f"link {name} (in the root namespace)")
        return out


def lab_objects() -> List[str]:
    """Every lab-made namespace (``/run/netns/ebl-*``) and root-namespace link named ``ebl*``."""
    out = []
    if os.path.isdir(NETNS_RUN_DIR):
        out += [f"netns {n}" for n in sorted(os.listdir(NETNS_RUN_DIR)) if n.startswith(_registry.PREFIX)]
    if os.path.isdir("/sys/class/net"):
        out += [f"link {n}" for n in sorted(os.listdir("/sys/class/net")) if n.startswith(_registry.PREFIX)]
    return out


def _link_owner(name: str) -> Optional[int]:
    try:
        with open(f"/sys/class/net/{name}/ifalias") as f:
            m = _ALIAS_RX.match(f.read().strip())
    except OSError:
        return None
    return int(m.group(1)) if m else None


def cleanup_orphans() -> List[str]:
    """Remove every lab namespace and veth whose owner process is dead; describe each removal.

    A lab namespace is named ``ebl-<owner pid>-<token>-snd|rcv``; a lab veth
    carries ``ebpf-lab pid=<owner pid>`` as its alias. Objects of live owners,
    and ``ebl``-named objects without an owner mark (someone else's), are left
    alone. Removing a namespace removes its veth, qdiscs, filters, XDP programs
    and firewall rules with it.
    """
    done: List[str] = []
    if os.geteuid() != 0:
        raise PrivilegeError("cleaning up the lab network: removing namespaces needs root")
    _, netns = _pyroute2()
    if os.path.isdir(NETNS_RUN_DIR):
        for name in sorted(os.listdir(NETNS_RUN_DIR)):
            m = _NS_RX.match(name)
            if not m or _registry.pid_alive(int(m.group(1))):
                continue
            try:
                _nl(netns.remove, name)
            except Exception:
                if not _registry.remove({"kind": "netns", "name": name}):
                    continue
            done.append(f"netns {name} (owner pid {m.group(1)} is gone)")
    if os.path.isdir("/sys/class/net"):
        for name in sorted(os.listdir("/sys/class/net")):
            if not name.startswith(_registry.PREFIX):
                continue
            pid = _link_owner(name)
            if pid is None or _registry.pid_alive(pid):
                continue
            if _registry.remove({"kind": "link", "name": name}):
                done.append(f"link {name} (owner pid {pid} is gone)")
    return done
