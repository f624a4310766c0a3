"""The lab network: real namespaces and veth, unique names, removed on every way out, cleanup after SIGKILL."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from ebpf_lab import _registry
from ebpf_lab.errors import LabError, LabParameterError
from ebpf_lab.netlab import LabNetwork, cleanup_orphans, lab_objects
from labtest import processes

pytestmark = [pytest.mark.root, pytest.mark.netns]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


def _exists_ns(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def test_network_names_ping_and_removal(lab_net):
    net = lab_net
    assert all(len(n) <= 15 and n.startswith("ebl") for n in net.ifname.values())
    assert all(n.startswith(f"ebl-{os.getpid()}-") for n in net.netns.values())
    assert all(_exists_ns(n) for n in net.netns.values())
    # the veths live only inside the lab namespaces, never in the host's
    assert not any(os.path.exists(f"/sys/class/net/{n}") for n in net.ifname.values())
    r = net.ping(100, count=2)
    assert r["received"] == 2, r
    stats = net.link_stats("rcv")
    assert stats["rx_packets"] >= 2
    # the registry records the namespaces while they exist
    with open(os.path.join(_registry.RUN_DIR, f"{os.getpid()}.json")) as f:
        recorded = {e.get("name") for e in json.load(f)}
    assert set(net.netns.values()) <= recorded


def test_two_networks_do_not_collide():
    with LabNetwork() as a, LabNetwork() as b:
        assert set(a.netns.values()).isdisjoint(b.netns.values())
        assert set(a.ifname.values()).isdisjoint(b.ifname.values())
        assert a.ping(56, count=1)["received"] == 1 and b.ping(56, count=1)["received"] == 1
    assert a.leftovers() == [] and b.leftovers() == []


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_removed_on_exception_and_interrupt(exc):
    holder = {}
    with pytest.raises(exc):
        with LabNetwork() as net:
            holder["net"] = net
            assert net.leftovers() != []
            raise exc("boom")
    assert holder["net"].leftovers() == []
    assert not any(e.get("name") in holder["net"].netns.values() for e in _registry._entries.values())


def test_bad_mtu_changes_nothing():
    before = lab_objects()
    for bad in (0, 10, 100000, "1500"):
        with pytest.raises(LabParameterError):
            LabNetwork(mtu=bad)
    assert [o for o in set(lab_objects()) - set(before) if f"ebl-{os.getpid()}-" in o] == []


def test_cleanup_orphans_spares_live_owners_and_foreign_names(lab_net):
    foreign = f"ebl-foreign-{os.getpid()}"  # ebl-named but not the lab network's pattern: someone else's
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        removed = cleanup_orphans()
        assert not any(lab_net.name in r for r in removed)
        assert not any(foreign in r for r in removed)
        assert all(_exists_ns(n) for n in lab_net.netns.values()) and _exists_ns(foreign)
    finally:
        subprocess.run(["ip", "netns", "delete", foreign])


CHILD = r"""
import sys, time
from ebpf_lab.lessons.tc_classifier import TcClassifierLesson
lab = TcClassifierLesson(limit=500)
lab.compile(); lab.load(); lab.attach()
print(lab.net.name, flush=True)
time.sleep(120)
"""


def _reaper_of(pid: int) -> int:
    found = processes(lambda _, args: b"--reap" in args and str(pid).encode() in args)
    return found[0] if found else 0


def _start_child() -> "tuple[subprocess.Popen, str]":
    p = subprocess.Popen([PY, "-c", CHILD], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    name = p.stdout.readline().strip()
    assert re.fullmatch(r"ebl-\d+-[0-9a-f]{6}", name), name
    return p, name


@pytest.mark.tc
def test_sigkill_reaper_removes_everything():
    """The owner dies by SIGKILL: its reaper removes the namespaces (with qdisc and filter) by itself."""
    p, name = _start_child()
    assert _exists_ns(f"{name}-rcv")
    p.kill()
    p.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_exists_ns(f"{name}-rcv") or _exists_ns(f"{name}-snd")):
        time.sleep(0.1)
    assert not _exists_ns(f"{name}-rcv") and not _exists_ns(f"{name}-snd")
    assert not os.path.exists(os.path.join(_registry.RUN_DIR, f"{p.pid}.json"))


@pytest.mark.tc
def test_sigkill_without_reaper_then_ebpf_lab_cleanup():
    """Owner and its reaper both gone (reaper frozen first): `ebpf-lab cleanup` removes what was left."""
    p, name = _start_child()
    reaper = _reaper_of(p.pid)
    assert reaper, "the registry started no reaper for the child"
    os.kill(reaper, signal.SIGSTOP)
    try:
        p.kill()
        p.wait()
        time.sleep(0.3)
        assert _exists_ns(f"{name}-rcv"), "left-overs expected while the reaper is frozen"
        r = subprocess.run([PY, "-m", "ebpf_lab", "cleanup"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert r.returncode == 0, r.stderr
        assert name in r.stdout
        assert not _exists_ns(f"{name}-rcv") and not _exists_ns(f"{name}-snd")
        again = subprocess.run([PY, "-m", "ebpf_lab", "cleanup"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert name not in again.stdout
    finally:
        os.kill(reaper, signal.SIGKILL)


def test_cleanup_orphans_directly_after_sigkill():
    """cleanup_orphans() alone (no registry file, no reaper) removes a dead owner's namespaces."""
    code = ("import time; from ebpf_lab.netlab import LabNetwork; n = LabNetwork().up(); "
            "print(n.name, flush=True); time.sleep(120)")
    env = dict(os.environ, EBPF_LAB_RUN_DIR=f"/tmp/ebl-test-run-{os.getpid()}")
    p = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    name = p.stdout.readline().strip()
    reaper = _reaper_of(p.pid)
    os.kill(reaper, signal.SIGSTOP)
    try:
        p.kill()
        p.wait()
        removed = cleanup_orphans()
        assert any(f"{name}-rcv" in r for r in removed) and any(f"{name}-snd" in r for r in removed)
        assert not _exists_ns(f"{name}-rcv") and not _exists_ns(f"{name}-snd")
    finally:
        os.kill(reaper, signal.SIGKILL)
        subprocess.run(["rm", "-rf", env["EBPF_LAB_RUN_DIR"]])


def test_missing_ip_tool_is_named_and_changes_nothing(monkeypatch, tmp_path):
    from ebpf_lab.errors import FeatureUnavailable

    before = lab_objects()
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FeatureUnavailable) as e:
        LabNetwork().up()
    assert e.value.feature == "ip" and "nothing was changed" in str(e.value)
    monkeypatch.undo()
    assert [o for o in set(lab_objects()) - set(before) if f"ebl-{os.getpid()}-" in o] == []


def test_a_netlink_call_that_never_answers_is_bounded_and_named(monkeypatch):
    """A stuck netlink call fails with an error naming it, and does not stall the calls after it."""
    import threading

    from ebpf_lab import netlab

    monkeypatch.setattr(netlab, "NETLINK_TIMEOUT_S", 0.5)
    release = threading.Event()

    def stuck_netlink_request():
        release.wait(60)

    try:
        with pytest.raises(LabError) as e:
            netlab._nl(stuck_netlink_request)
        assert "stuck_netlink_request" in str(e.value) and "did not answer within 0.5 s" in str(e.value)
        assert "EBPF_LAB_NETLINK_TIMEOUT_S" in str(e.value)
        assert netlab._nl(lambda: 42) == 42  # a fresh thread serves the next call
    finally:
        release.set()
