"""Exercises of lessons 04 (TC classifier) and 05 (XDP vs TC).

Every grading run builds its own lab network (:class:`ebpf_lab.netlab.LabNetwork`:
two fresh namespaces and a veth pair; never the machine's interfaces), attaches
the learner's program on the receiver's side (TC clsact ingress, XDP generic),
and sends real traffic from the sender: pings of chosen sizes (``-M do``, so one
echo request is one frame of payload + 42 bytes) and UDP datagrams of chosen
sizes. What arrives is the truth the checks compare with: ping replies, and the
datagrams a receiver in the receiver namespace counted. The network is removed
at the end, and the check ``clean`` makes sure of it.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from .. import _procs
from ..engine import Hook
from ._base import FAIL, Exercise, Fail, GradedProgram, Grader, Stop

ETH_IP_ICMP = 14 + 20 + 8   # frame bytes around a ping payload
ETH_IP_UDP = 14 + 20 + 8    # ... and around a UDP payload
UDP_PORT = 9
PING_COUNT = 2

_RECEIVER = r'''
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(float(sys.argv[2]))  # idle time after which nothing more is expected
print("ready", flush=True)
got = {}
try:
    while True:
        data = s.recv(65535)
        if data == b"STOP":
            break
        got[len(data)] = got.get(len(data), 0) + 1
except socket.timeout:
    pass
print(json.dumps(got), flush=True)
'''

_SENDER = r'''
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
plan = json.loads(sys.argv[3])
for size, n in plan:
    for _ in range(n):
        s.sendto(b"u" * size, (sys.argv[1], int(sys.argv[2])))
        time.sleep(0.002)
time.sleep(0.05)
for _ in range(3):
    s.sendto(b"STOP", (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.05)
'''


_TCP_RECEIVER = r'''
import json, socket, struct, sys
port = int(sys.argv[1])
# a packet tap: every IPv4 frame arriving here, as TC ingress sees it (taps run before TC ingress, after XDP)
tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(1)
srv.settimeout(float(sys.argv[2]))
print("ready", flush=True)
got = 0
try:
    c, _ = srv.accept()
    c.settimeout(float(sys.argv[2]))  # idle time after which nothing more is expected
    while True:
        data = c.recv(65536)
        if not data:
            break
        got += len(data)
    # close with a reset: nothing answers it, so no frame of this connection arrives after this line
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
except OSError:
    pass
# the sender's FIN went through TC ingress (and the tap) before recv() saw the end: the tap holds every frame
frames = frame_bytes = 0
tap.setblocking(False)
while True:
    try:
        data, addr = tap.recvfrom(65535)
    except BlockingIOError:
        break
    if addr[2] == socket.PACKET_OUTGOING or len(data) < 34 or data[23] != 6:
        continue
    ihl = (data[14] & 15) * 4
    if len(data) >= 14 + ihl + 4 and struct.unpack("!H", data[14 + ihl + 2:14 + ihl + 4])[0] == port:
        frames += 1
        frame_bytes += len(data)
print(json.dumps({"got": got, "frames": frames, "bytes": frame_bytes}), flush=True)
'''

_TCP_SENDER = r'''
import json, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for size in json.loads(sys.argv[3]):  # one segment each: sent apart, with TCP_NODELAY
    s.sendall(b"t" * size)
    time.sleep(0.02)
s.shutdown(socket.SHUT_WR)
'''


def limit_draw(exclude: Sequence[int] = (400,)) -> int:
    """LIMIT for one grading run, drawn afresh (``EBPF_LAB_GRADE_SEED`` fixes it); never the notebook's old 400."""
    import os
    import random

    seed = os.environ.get("EBPF_LAB_GRADE_SEED")
    rng = random.Random(seed) if seed else random.SystemRandom()
    while True:
        v = rng.randrange(200, 1100)
        if v not in exclude:
            return v


@dataclasses.dataclass
class Traffic:
    """What was sent and what arrived."""

    pings: List[Dict[str, int]]            # payload, frame, sent, received
    udp_sent: Dict[int, int]               # payload -> datagrams sent
    udp_got: Dict[int, int]                # payload -> datagrams received
    tcp_sent: int = 0                      # bytes sent over one TCP connection (segments of chosen sizes)
    tcp_got: int = 0                       # bytes that arrived
    tcp_sizes: Tuple[int, ...] = ()        # TCP payload sizes sent
    tcp_frames: int = 0                    # TCP frames of that connection that arrived (handshake, data, FIN)
    tcp_frame_bytes: int = 0               # ... and their bytes, Ethernet header included

    def ping(self, frame: int) -> Dict[str, int]:
        return next(p for p in self.pings if p["frame"] == frame)

    def frame(self) -> pd.DataFrame:
        """One row per kind and size of packet: frame bytes, sent, arrived."""
        rows = [{"kind": "ICMP echo", "frame_bytes": p["frame"], "sent": p["sent"], "arrived": p["received"]}
                for p in self.pings]
        rows += [{"kind": "UDP", "frame_bytes": s + ETH_IP_UDP, "sent": n, "arrived": self.udp_got.get(s, 0)}
                 for s, n in self.udp_sent.items()]
        if self.tcp_sizes:
            rows.append({"kind": f"TCP payload bytes (segments of {', '.join(map(str, self.tcp_sizes))})",
                         "frame_bytes": None, "sent": self.tcp_sent, "arrived": self.tcp_got})
        return pd.DataFrame(rows)


class NetWorkload:
    """A lab network and the traffic of the network exercises."""

    def __init__(self, g: Grader) -> None:
        from ..netlab import LabNetwork

        self.net = LabNetwork()
        g.stack.callback(self.close)
        g.nets.append(self.net)
        self.net.up()

    def close(self) -> None:
        self.net.close()

    def send_tcp(self, payloads: Sequence[int], port: int = UDP_PORT + 1) -> Dict[str, int]:
        """One TCP connection from snd to rcv carrying segments of ``payloads`` bytes.

        Returns the payload bytes that arrived (``got``) and the connection's frames that arrived at the
        receiver's ingress (``frames``, ``bytes``), counted by a packet tap: how many segments TCP makes of
        what was sent (handshake, acknowledgements, FIN) is measured, never guessed.
        """
        net = self.net
        recv = net.popen("rcv", [sys.executable, "-c", _TCP_RECEIVER, str(port), "3.0"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
        try:
            assert recv.stdout is not None  # stdout=PIPE
            if recv.stdout.readline().strip() != "ready":
                raise Fail("the grader's TCP receiver did not start.", "grade again; tell your teacher if it persists.")
            net.run("snd", [sys.executable, "-c", _TCP_SENDER, net.addr["rcv"], str(port), json.dumps(list(payloads))],
                    timeout=30)
            out, _ = recv.communicate(timeout=15)
        finally:
            if recv.poll() is None:
                recv.kill()
                recv.wait()
        lines = out.strip().splitlines()
        try:
            d = json.loads(lines[-1]) if lines else {}
            return {k: int(d[k]) for k in ("got", "frames", "bytes")}
        except (ValueError, KeyError, TypeError):
            raise Fail("the grader's TCP receiver gave no count.", "grade again; tell your teacher if it persists.") from None

    def send(self, ping_frames: Sequence[int], udp_frames: Sequence[int], *, udp_count: int = 3,
             tcp_payloads: Sequence[int] = ()) -> Traffic:
        net = self.net
        recv = net.popen("rcv", [sys.executable, "-c", _RECEIVER, str(UDP_PORT), "3.0"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, preexec_fn=_procs.preexec())
        try:
            assert recv.stdout is not None  # stdout=PIPE
            line = recv.stdout.readline().strip()
            if line != "ready":
                raise Fail("the grader's UDP receiver did not start.", "grade again; tell your teacher if it persists.")
            plan = [(f - ETH_IP_UDP, udp_count) for f in udp_frames]
            net.run("snd", [sys.executable, "-c", _SENDER, net.addr["rcv"], str(UDP_PORT), json.dumps(plan)], timeout=30)
            out, _ = recv.communicate(timeout=10)
            pings = []
            for frame in ping_frames:
                r = net.ping(frame - ETH_IP_ICMP, count=PING_COUNT, interval=0.02, wait=0.8)
                pings.append({"payload": frame - ETH_IP_ICMP, "frame": frame, "sent": r["sent"], "received": r["received"]})
        finally:
            if recv.poll() is None:
                recv.kill()
                recv.wait()
        got = {int(k): int(v) for k, v in json.loads(out.strip().splitlines()[-1] or "{}").items()} if out.strip() else {}
        t = Traffic(pings, {s: n for s, n in plan}, got)
        if tcp_payloads:
            t.tcp_sizes = tuple(tcp_payloads)
            t.tcp_sent = sum(tcp_payloads)
            r = self.send_tcp(tcp_payloads)
            t.tcp_got, t.tcp_frames, t.tcp_frame_bytes = r["got"], r["frames"], r["bytes"]
        return t


def _on_net(hooks: List[Hook], net: Any) -> List[Hook]:
    """The hooks, told to attach on the lab network's receiver (TC and XDP kinds attach through HOOK_KINDS)."""
    for h in hooks:
        h.net, h.side = net, "rcv"
    return hooks


def build_net(g: Grader, w: NetWorkload, text: Optional[str], hooks: List[Hook],
              cflags: Sequence[str] = ()) -> Optional[GradedProgram]:
    return g.build(text, _on_net(list(hooks), w.net), cflags)


class _NetExercise(Exercise):
    needs: ClassVar[Tuple[str, ...]] = ("netns", "tc")
    #: drawn afresh for each grading run (limit_draw), passed as -DLIMIT=...: a number in its place fails
    LIMIT = 400
    hook = "tc"
    #: send TCP too (the drop exercises: "not UDP" is not "ICMP")
    tcp = False

    def hook_variants(self) -> List[str]:
        return [self.hook]

    def frames(self) -> Tuple[List[int], List[int]]:
        """Ping frame sizes and UDP frame sizes around LIMIT."""
        L = self.LIMIT
        if self.tcp:  # UDP of every size around LIMIT, next to ICMP
            return [L - 100, L - 1, L, L + 300], [L - 100, L - 1, L, L + 300]
        return [L - 100, L - 1, L, L + 300], [L - 100, L + 300]

    def tcp_payloads(self) -> List[int]:
        """TCP payloads in frames below, at and well above LIMIT (66 bytes of headers with timestamps)."""
        L = self.LIMIT
        return [max(1, L - 100 - 66), L, min(L + 300, 1400)] if self.tcp else []

    def check_drop_rule(self, g: Grader, t: Traffic, *, verdict: str, shot: str) -> None:
        """The checks of 'drop ICMP frames of LIMIT bytes or more; pass everything else'."""
        L = self.LIMIT
        small, below, at, big = (t.ping(f) for f in self.frames()[0])
        drawn = getattr(self, "_drawn", "") or (f"LIMIT was {L} in this run: the grader draws it afresh each time, "
                                                 "so compare with the name LIMIT, never a number.")

        @g.step("small-pass", needs=["loads"])
        def _():
            if small["received"] == 0:
                if big["received"] == 0 and not t.udp_got:
                    raise Fail("nothing got through at all: no ping reply, no UDP datagram.",
                               f"frames that are not IPv4 (ARP!) must pass, or hosts cannot even find each "
                               f"other: return {verdict} for them. Drop only ICMP frames of LIMIT bytes or more.")
                raise Fail(f"a small ping ({small['frame']}-byte frames) got no reply.",
                           f"only frames of at least LIMIT bytes are dropped. {drawn}")

        @g.step("big-dropped", needs=["small-pass"])
        def _():
            if big["received"]:
                raise Fail(f"a big ping ({big['frame']}-byte frames, LIMIT={L}) still got {big['received']} "
                           f"repl{'y' if big['received'] == 1 else 'ies'}.",
                           f"return {shot} for ICMP frames whose length is at least LIMIT.")

        @g.step("boundary", needs=["big-dropped"])
        def _():
            if at["received"]:
                raise Fail(f"a ping of exactly LIMIT={L} bytes (frame) got through.",
                           "'LIMIT bytes or more' is >=, not >. The length counts the whole frame: 14 (Ethernet) "
                           f"+ 20 (IPv4) + 8 (ICMP) + the payload. {drawn}")
            if below["received"] == 0:
                raise Fail(f"a ping of LIMIT-1={L - 1} bytes (frame) was dropped.",
                           "frames shorter than LIMIT pass; is the length the whole frame (Ethernet header "
                           f"included)? {drawn}")

        @g.step("udp-pass", needs=["small-pass"])
        def _():
            lost = {s + ETH_IP_UDP: n - t.udp_got.get(s, 0) for s, n in t.udp_sent.items() if t.udp_got.get(s, 0) < n}
            if lost:
                frame = max(lost)
                raise Fail(f"UDP datagrams in {frame}-byte frames were lost ({lost[frame]} of {t.udp_sent[frame - ETH_IP_UDP]}).",
                           "the rule is for ICMP only: which protocol field says so, and what must it equal?")

        if "tcp-pass" in self.CHECKS:
            @g.step("tcp-pass", needs=["small-pass"])
            def _():
                if t.tcp_got < t.tcp_sent:
                    raise Fail(f"a TCP connection sent {t.tcp_sent} bytes in segments of {', '.join(map(str, t.tcp_sizes))} "
                               f"bytes; {t.tcp_got} arrived.",
                               "TCP is neither ICMP nor UDP: a rule written as 'not UDP' drops it too. Drop only "
                               "when the protocol IS ICMP.")


def drop_rule_checks(loads: str, *extra: Tuple[str, str], programs: str = "program") -> Dict[str, str]:
    """The checks of a 'drop big ICMP' exercise; ``loads`` says where it attaches."""
    return {
        "compiles": "your C program compiles",
        "loads": loads,
        "small-pass": "small pings (and ARP) get through",
        "big-dropped": "pings in frames of LIMIT bytes or more are dropped",
        "boundary": "exactly LIMIT bytes is dropped, LIMIT-1 passes",
        "udp-pass": "UDP of any size gets through",
        "tcp-pass": "TCP segments of any size get through",
        **dict(extra),
        "clean": f"the lab network and your {programs} are gone afterwards",
    }


class _DropBigIcmp(_NetExercise):
    """Drop ICMP frames of LIMIT bytes or more at one hook, pass everything else."""
    attach_to: Hook
    verdict: str
    shot: str

    tcp = True

    #: the hooks the learner's program(s) attach to
    def hooks(self) -> List[Hook]:
        return [self.attach_to]

    def judge(self, g: Grader, p: GradedProgram, t: Traffic) -> None:
        """Every check of one round (one LIMIT): the program ``p`` saw the traffic ``t``."""
        self.check_drop_rule(g, t, verdict=self.verdict, shot=self.shot)

    def grade(self, g: Grader) -> None:
        """Two rounds, each with the whole check set, at two values of LIMIT drawn in this run.

        A number written in place of LIMIT can match one draw; it cannot match two different ones.
        """
        hooks = self.hooks()
        first = self.LIMIT = limit_draw()
        g.facts["LIMIT"] = first
        self._drawn = ""
        w = NetWorkload(g)
        p = build_net(g, w, g.sub.bpf, hooks, [f"-DLIMIT={first}"])
        if p is None:
            raise Stop
        t = w.send(*self.frames(), tcp_payloads=self.tcp_payloads())
        g.data["traffic"] = t.frame()
        self.judge(g, p, t)
        self.again_at_another_limit(g, w, p, hooks, first)

    def again_at_another_limit(self, g: Grader, w: NetWorkload, p: GradedProgram, hooks: List[Hook],
                               first: int) -> None:
        """Once every check passed at the first LIMIT: the learner's program built again at a second LIMIT
        drawn in the same run, the traffic sent again around it, and every check judged again."""
        checks = [c for c in self.CHECKS if c not in ("compiles", "loads", "clean")]
        if not all(g.ok(c) for c in checks):
            return
        assert g.sub.bpf is not None  # built once already
        p.detach()  # one program per hook at a time
        second = limit_draw(exclude=(400, first))
        g.facts["LIMIT"] = [first, second]
        drawn = (f"LIMIT was {first}, then {second}: the grader draws it afresh, so compare with the name LIMIT, "
                 "never a number.")
        p2 = g.rebuild(g.sub.bpf, _on_net(list(hooks), w.net), [f"-DLIMIT={second}"], check="boundary",
                       why=f"compiled again with -DLIMIT={second} (a second value drawn in this run), your program "
                           "no longer compiles or loads:", hint="use LIMIT only as a number in comparisons.")
        if p2 is None:
            return
        for c in checks:
            g.results.pop(c)
        self.LIMIT, self._drawn = second, drawn
        t = w.send(*self.frames(), tcp_payloads=self.tcp_payloads())
        g.data["traffic_at_second_limit"] = t.frame()
        self.judge(g, p2, t)
        for c in checks:
            r = g.results[c]
            if r.status == FAIL:
                g.record(c, FAIL, f"at a second LIMIT={second} (drawn in this run; every check passed at "
                         f"LIMIT={first}): {r.message}", r.hint if drawn in r.hint else f"{r.hint} {drawn}".strip())


class TcDropBigIcmp(_DropBigIcmp):
    id = "tc-drop-big-icmp"
    lesson = "tc-classifier"
    title = "Drop only big ICMP, at TC ingress"
    level = 2
    attach_to = Hook("sched_cls", "clsact ingress", "on_tc_ingress")
    verdict, shot = "TC_ACT_OK", "TC_ACT_SHOT"
    CHECKS = drop_rule_checks("the verifier accepts it (packet bounds checked); it attaches to TC ingress")


class XdpDropBigIcmp(_DropBigIcmp):
    id = "xdp-drop-big-icmp"
    lesson = "xdp-vs-tc"
    title = "Move the rule from TC to XDP"
    level = 2
    needs = ("netns", "xdp")
    hook = "xdp"
    attach_to = Hook("xdp", "xdp generic", "on_xdp")
    verdict, shot = "XDP_PASS", "XDP_DROP"
    CHECKS = drop_rule_checks("the verifier accepts it (packet bounds checked); it attaches to XDP")


PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP"}
XDP_DROP, XDP_PASS = 1, 2
XDP_NAMES = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}


def frame(length: int, proto: int) -> bytes:
    """An Ethernet + IPv4 frame of ``length`` bytes carrying protocol ``proto`` (ICMP echo or UDP header)."""
    import struct

    ip_len = length - 14
    eth = bytes.fromhex("02eb00000002") + bytes.fromhex("02eb00000001") + struct.pack("!H", 0x0800)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 1, 0x4000, 64, proto, 0,
                     bytes([10, 199, 0, 1]), bytes([10, 199, 0, 2]))
    l4 = struct.pack("!BBHHH", 8, 0, 0, 1, 1) if proto == 1 else struct.pack("!HHHH", 40000, UDP_PORT, ip_len - 20, 0)
    return (eth + ip + l4).ljust(length, b"x")


def xdp_test_run(p: GradedProgram, fn: str, limit: int) -> Dict[str, int]:
    """The verdicts of the XDP function ``fn`` alone on crafted frames (BPF_PROG_TEST_RUN): no TC involved."""
    from .._bcc import import_bcc
    from .._bpfsys import prog_test_run

    fd = p.bpf.load_func(fn, import_bcc().BPF.XDP).fd
    out = {}
    for name, data in ((f"ICMP, {limit} bytes", frame(limit, 1)), (f"ICMP, {limit - 1} bytes", frame(limit - 1, 1)),
                       (f"UDP, {limit + 300} bytes", frame(limit + 300, 17))):
        out[name] = prog_test_run(fd, data)[0]
    return out


def _expected_counts(t: Traffic, *, icmp_limit: Optional[int] = None) -> Dict[int, Dict[str, int]]:
    """IPv4 packets and bytes per protocol arriving at the receiver's ingress (echo requests, UDP datagrams)."""
    exp: Dict[int, Dict[str, int]] = {}
    for p in t.pings:
        if icmp_limit is not None and p["frame"] >= icmp_limit:
            continue
        e = exp.setdefault(1, {"packets": 0, "bytes": 0})
        e["packets"] += p["sent"]
        e["bytes"] += p["sent"] * p["frame"]
    udp = exp.setdefault(17, {"packets": 0, "bytes": 0})
    for size, n in t.udp_sent.items():
        udp["packets"] += n
        udp["bytes"] += n * (size + ETH_IP_UDP)
    udp["packets"] += 3  # the sender's STOP datagrams
    udp["bytes"] += 3 * (4 + ETH_IP_UDP)
    if t.tcp_frames:  # one connection: its frames as the receiver's packet tap counted them (none: no ARP reply)
        exp[6] = {"packets": t.tcp_frames, "bytes": t.tcp_frame_bytes}
    return exp


def _check_counts(g: Grader, check: str, got: Dict[int, Dict[str, int]], exp: Dict[int, Dict[str, int]],
                  where: str, too_many: str = "the counts are too high: count each packet once.") -> None:
    @g.step(check, needs=["fires"])
    def _():
        for proto, e in exp.items():
            gv = got.get(proto)
            name = PROTO_NAMES.get(proto, str(proto))
            if gv is None:
                raise Fail(f"your map has no entry for {name} (protocol {proto}); {e['packets']} {name} packets "
                           f"arrived{where}.",
                           "count every IPv4 protocol, not a chosen few: key the map by ip->protocol."
                           if got else "key the map by ip->protocol.")
            if gv["packets"] != e["packets"]:
                hint = (too_many if gv["packets"] > e["packets"]
                        else "every IPv4 packet of that protocol counts (packets += 1).")
                if gv["packets"] == e["bytes"]:
                    hint = "packets holds the bytes: packets += 1, bytes += the length."
                raise Fail(f"{name}: your map counts {gv['packets']} packets; {e['packets']} arrived{where}.", hint)
            if gv["bytes"] != e["bytes"]:
                ip_only = e["bytes"] - 14 * e["packets"]
                hint = ("that is without the 14-byte Ethernet header: count the whole frame (skb->len)."
                        if gv["bytes"] == ip_only else "add the frame's length (skb->len) for each packet.")
                raise Fail(f"{name}: your map counts {gv['bytes']} bytes; the frames{where} held {e['bytes']}.", hint)


class TcCountProtocols(_NetExercise):
    id = "tc-count-protocols"
    lesson = "tc-classifier"
    title = "Count instead of drop: packets and bytes per protocol"
    level = 1
    tcp = True  # ICMP, UDP of every size, and a TCP connection: the map must count each protocol exactly
    py_functions = ("protocol_table",)
    CHECKS = {
        "compiles": "your C program compiles",
        "loads": "the verifier accepts it; it attaches to TC ingress",
        "passes-all": "every ping, datagram and TCP segment still gets through",
        "fires": "by_proto fills while traffic flows",
        "counts": "packets and bytes per IPv4 protocol are exactly what arrived",
        "py-runs": "protocol_table() returns a DataFrame",
        "py-table": "one row per protocol name, packets, bytes and mean_bytes, most packets first",
        "clean": "the lab network and your program are gone afterwards",
    }

    def grade(self, g: Grader) -> None:
        self.LIMIT = limit_draw()  # frame sizes vary from run to run
        w = NetWorkload(g)
        p = build_net(g, w, g.sub.bpf, [Hook("sched_cls", "clsact ingress", "on_tc_ingress")])
        pf, uf = self.frames()
        t = w.send(pf, uf, tcp_payloads=self.tcp_payloads())
        g.data["traffic"] = t.frame()
        if p is not None:
            @g.step("passes-all", needs=["loads"])
            def _():
                lost = [x for x in t.pings if x["received"] < x["sent"]]
                if lost or any(t.udp_got.get(s, 0) < n for s, n in t.udp_sent.items()) or t.tcp_got < t.tcp_sent:
                    raise Fail("some packets were dropped"
                               + (f" (pings of {lost[0]['frame']}-byte frames)" if lost else
                                  f" (TCP: {t.tcp_got} of {t.tcp_sent} bytes arrived)" if t.tcp_got < t.tcp_sent else "")
                               + ".", "this classifier only counts: return TC_ACT_OK for every packet.")

            got: Dict[int, Dict[str, int]] = {}

            @g.step("fires", needs=["loads"])
            def _():
                if p.map_shape("by_proto") is None:
                    raise Fail("your program has no map named by_proto.",
                               "keep BPF_HASH(by_proto, u32, struct proto_stats, ...) as given.")
                for k, v in p.map_items("by_proto"):
                    got[int(k)] = {"packets": int(v["packets"]), "bytes": int(v["bytes"])}
                g.data["by_proto"] = pd.DataFrame.from_dict(got, orient="index").rename_axis("protocol")
                if not got:
                    raise Fail("by_proto stayed empty while pings, UDP datagrams and TCP segments arrived.",
                               "for each IPv4 packet: look up (or create) the entry of ip->protocol and add to it.")

            _check_counts(g, "counts", got, _expected_counts(t), " at the receiver")
        # Python part: graded on the traffic's own counts, even while the C is still wrong
        self.grade_table(g, _expected_counts(t))

    def grade_table(self, g: Grader, counts: Dict[int, Dict[str, int]]) -> None:
        counts = dict(counts)
        counts.setdefault(6, {"packets": 1, "bytes": 66})  # a protocol more, so the order matters
        rows = sorted(((PROTO_NAMES.get(k, str(k)), v["packets"], v["bytes"], v["bytes"] / v["packets"])
                       for k, v in counts.items()), key=lambda r: (-r[1], r[0]))

        @g.step("py-runs")
        def df():
            df = g.run_python("protocol_table", {k: dict(v) for k, v in counts.items()}, check="py-runs")
            g.data["protocol_table"] = df
            if not isinstance(df, pd.DataFrame):
                raise Fail(f"protocol_table() returned a {type(df).__name__}, not a DataFrame.", "return a pandas DataFrame.")
            return df

        @g.step("py-table", needs=["py-runs"])
        def _():
            cols = ["protocol", "packets", "bytes", "mean_bytes"]
            if list(map(str, df.columns)) != cols:
                raise Fail(f"the columns are {list(map(str, df.columns))}.", f"name them exactly {', '.join(cols)}.")
            got = [(str(a), int(b), int(c), float(d)) for a, b, c, d in df[cols].itertuples(index=False)]
            names_got, names_exp = [r[0] for r in got], [r[0] for r in rows]
            if sorted(names_got) != sorted(names_exp):
                raise Fail(f"the protocols are {names_got}; expected {sorted(names_exp)}.",
                           "name protocols with PROTO_NAMES, e.g. 1 -> 'ICMP'.")
            if names_got != names_exp:
                raise Fail(f"the rows are in the order {names_got}.",
                           "most packets first: sort_values('packets', ascending=False).")
            for a, b in zip(got, rows):
                if a[1:3] != b[1:3]:
                    raise Fail(f"{a[0]}: packets, bytes = {a[1:3]}; expected {b[1:3]}.", "copy each protocol's counts.")
                if abs(a[3] - b[3]) > 1e-6:
                    raise Fail(f"{a[0]}: mean_bytes = {a[3]}; expected {b[3]}.", "mean_bytes = bytes / packets.")


class XdpThenTc(_DropBigIcmp):
    id = "xdp-then-tc"
    lesson = "xdp-vs-tc"
    title = "XDP runs first: drop at XDP, count what reaches TC"
    level = 3
    needs = ("netns", "tc", "xdp")
    hook = "xdp+tc"
    verdict, shot = "XDP_PASS", "XDP_DROP"
    CHECKS = drop_rule_checks("the verifier accepts both programs; they attach to XDP and TC ingress",
                              ("xdp-alone", "on_xdp alone (BPF_PROG_TEST_RUN) drops a LIMIT-byte ICMP frame, passes "
                                            "LIMIT-1 bytes and a big UDP frame"),
                              ("fires", "reached_tc fills while traffic flows"),
                              ("tc-sees-survivors", "TC counts exactly the packets XDP let through, per protocol"),
                              programs="programs")

    def hooks(self) -> List[Hook]:
        return [Hook("xdp", "xdp generic", "on_xdp"), Hook("sched_cls", "clsact ingress", "on_tc_ingress")]

    def judge(self, g: Grader, p: GradedProgram, t: Traffic) -> None:
        self.check_drop_rule(g, t, verdict=self.verdict, shot=self.shot)
        got: Dict[int, Dict[str, int]] = {}

        @g.step("xdp-alone", needs=["loads"])
        def _():
            verdicts = xdp_test_run(p, "on_xdp", self.LIMIT)
            g.data["xdp_alone"] = pd.DataFrame([{"frame": k, "verdict": XDP_NAMES.get(v, v)} for k, v in verdicts.items()])
            icmp_at, icmp_below, udp_big = (verdicts[k] for k in verdicts)
            if icmp_at != XDP_DROP:
                raise Fail(f"run alone on a {self.LIMIT}-byte ICMP frame (BPF_PROG_TEST_RUN), on_xdp returned "
                           f"{XDP_NAMES.get(icmp_at, icmp_at)}: big pings were dropped later, not by XDP.",
                           "the dropping belongs to on_xdp (XDP runs first, before any skb exists); TC only counts.")
            if icmp_below != XDP_PASS or udp_big != XDP_PASS:
                which = "an ICMP frame of LIMIT-1 bytes" if icmp_below != XDP_PASS else "a big UDP frame"
                raise Fail(f"run alone on {which}, on_xdp did not return XDP_PASS.",
                           "on_xdp drops only ICMP frames of LIMIT bytes or more.")

        @g.step("fires", needs=["loads"])
        def _():
            if p.map_shape("reached_tc") is None:
                raise Fail("your program has no map named reached_tc.", "keep BPF_HASH(reached_tc, ...) as given.")
            for k, v in p.map_items("reached_tc"):
                got[int(k)] = {"packets": int(v["packets"]), "bytes": int(v["bytes"])}
            g.data["reached_tc"] = pd.DataFrame.from_dict(got, orient="index").rename_axis("protocol")
            if not got:
                raise Fail("reached_tc stayed empty while traffic arrived.",
                           "in on_tc_ingress(): for each IPv4 packet, add to the entry of ip->protocol.")

        if g.ok("boundary"):
            _check_counts(g, "tc-sees-survivors", got, _expected_counts(t, icmp_limit=self.LIMIT),
                          " at TC (after XDP dropped the big pings)",
                          too_many="TC counted packets that should never have reached it: drop at XDP (which runs "
                                   "first), not at TC, and count at TC only.")
        else:
            g.record("tc-sees-survivors", "skip", "not checked: 'boundary' has to pass first")
