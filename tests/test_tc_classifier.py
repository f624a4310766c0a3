"""Lesson 04: the tutorial's TC classifier on the lab network.

The boundary where pings stop getting through must equal the one predicted
from the header sizes and the one BPF_PROG_TEST_RUN finds; nothing of the lab
may remain after a run, an error, an interrupt.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from ebpf_lab.errors import AttachError, FeatureUnavailable, LabParameterError
from ebpf_lab.lessons.tc_classifier import (FIX_DECLARATION, OVERHEAD, TcClassifierLesson, TutorialTC,
                                            clang_rejects_implicit_declarations, craft_frame, default_payloads,
                                            fix_diff, fixed_source)
from ebpf_lab.netlab import lab_objects
from labtest import processes

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.netns, pytest.mark.tc]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


def _mine() -> list:
    return [o for o in lab_objects() if f"ebl-{os.getpid()}-" in o]


def test_craft_frame_lengths():
    for n in (42, 100, 499, 500, 1514):
        f = craft_frame(n)
        assert len(f) == n and f[12:14] == b"\x08\x00"
        assert int.from_bytes(f[16:18], "big") == n - 14  # IPv4 total length = frame - Ethernet header


@pytest.mark.parametrize("limit", [500, 1000])
def test_boundary_pings_equal_headers_equal_test_run(lab_net, limit, no_bpf_leak):
    lab = TcClassifierLesson(net=lab_net, limit=limit)
    with lab:
        lab.compile()
        lab.load()
        lab.attach()
        assert "clsact" in lab_net.qdiscs("rcv")
        payloads = default_payloads(limit, coarse_step=300, window=2)
        df = lab.sweep(payloads)
        from_test_run = lab.boundary_from_test_run()
        verdicts = lab.test_run()
    # the sweep's own facts
    assert list(df["payload_bytes"]) == sorted(payloads)
    from_pings = df.attrs["boundary_payload"]
    from_headers = limit - 14 - 20 - 8
    assert from_pings == from_headers == from_test_run - OVERHEAD
    assert df.attrs["boundary_is_clean"] and df.attrs["last_delivered_payload"] == from_headers - 1
    # what the classifier saw: skb->len = payload + 42, every request counted with the right verdict
    assert (df["skb_len"] == df["payload_bytes"] + 42).all()
    assert (df.loc[df.delivered, "classifier_pass"] == df.loc[df.delivered, "sent"]).all()
    assert (df.loc[~df.delivered, "classifier_drop"] == df.loc[~df.delivered, "sent"]).all()
    assert (df["delivered"] == (df["verdict_expected"] == "pass")).all()
    assert list(verdicts["verdict"]) == ["TC_ACT_OK", "TC_ACT_SHOT", "TC_ACT_SHOT"]
    assert list(verdicts["frame_bytes"]) == [limit - 1, limit, limit + 1]
    # detached: the lab network is the fixture's and stays; our qdisc is gone
    assert lab_net.qdiscs("rcv") == ["noqueue"]


def test_tutorial_pipeline_and_tc_commands(lab_net):
    refuses = clang_rejects_implicit_declarations()  # clang >= 16: asked, not inferred from a version
    with TutorialTC(lab_net) as t:
        built = t.build()
        assert "clang -O2 -emit-llvm -c" in built.command and "llc -march=bpf -mcpu=probe -filetype=obj" in built.command
        assert "-Wimplicit-function-declaration" in built.stderr and "'process_packet'" in built.stderr
        if refuses:  # clang's real error, shown, not raised
            assert not built.ok and "error:" in built.stderr and not os.path.exists(t.obj)
        else:
            assert built.ok and "warning: implicit declaration of function 'process_packet'" in built.stderr
        strict = t.build(strict=True)  # what clang >= 16 does by default
        assert not strict.ok and "error:" in strict.stderr and "'process_packet'" in strict.stderr
        assert not os.path.exists(t.obj), "a failed build left an (empty) foo.o that tc could attach"
        fixed = t.build(fixed=True, strict=True)
        assert fixed.ok and "implicit" not in fixed.stderr
        runnable = t.build_runnable()  # the tutorial's own object, or its fix where clang refuses it
        assert [r.ok for r in runnable] == ([False, True] if refuses else [True]) and os.path.exists(t.obj)
        assert t.built_from == ("tc_classifier_fixed.bpf.c" if refuses else "tc_classifier.bpf.c")
        add = t.attach()
        assert [r.ok for r in add] == [True, True]
        assert add[1].command.endswith("ingress bpf direct-action obj " + t.obj + " sec test")
        shown = t.show()
        assert "foo.o:[test]" in shown.stdout and "direct-action" in shown.stdout
        # the tutorial: `ping -s 500` fails, a plain ping works; the edge is 457/458
        assert lab_net.ping(56)["received"] > 0
        assert lab_net.ping(500)["received"] == 0
        assert lab_net.ping(457)["received"] > 0 and lab_net.ping(458)["received"] == 0
        gone = t.detach()
        assert gone is not None and gone.ok and gone.command.startswith("tc qdisc del dev")
        assert lab_net.qdiscs("rcv") == ["noqueue"]
        assert lab_net.ping(500)["received"] > 0


def test_the_fix_is_one_declaration_composed_from_the_tutorials_file():
    from ebpf_lab.engine import program_path

    tutorial = open(program_path("tc_classifier.bpf.c")).read().splitlines()
    at = next(i for i, ln in enumerate(tutorial) if ln.startswith("#define SEC(NAME)"))
    assert fixed_source().splitlines() == tutorial[:at + 1] + ["", FIX_DECLARATION, ""] + tutorial[at + 1:]
    assert at < next(i for i, ln in enumerate(tutorial) if ln.startswith("int classifier("))
    changed = [ln for ln in fix_diff().splitlines()[2:] if ln[:1] in "+-"]
    assert changed == ["+", "+" + FIX_DECLARATION, "+"]


@pytest.mark.parametrize("bad", [0, -1, "abc", 1.5, True, 70000])
def test_limit_must_be_a_positive_integer(bad):
    before = lab_objects()
    with pytest.raises(LabParameterError) as e:
        TcClassifierLesson(limit=bad)
    assert "limit" in str(e.value)
    assert [o for o in set(lab_objects()) - set(before) if f"ebl-{os.getpid()}-" in o] == []


def test_missing_tools_are_named_and_change_nothing(lab_net, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no clang, llc or tc to be found
    with TutorialTC(lab_net) as t:
        with pytest.raises(FeatureUnavailable) as e:
            t.build()
        assert e.value.feature == "clang" and "clang, llc not found" in str(e.value) and "apt-get install" in str(e.value)
        open(t.obj, "wb").close()
        with pytest.raises(FeatureUnavailable) as e:
            t.attach()
        assert e.value.feature == "tc" and "nothing was changed" in str(e.value)
    monkeypatch.undo()
    assert lab_net.qdiscs("rcv") == ["noqueue"]


def test_foreign_clsact_is_refused_and_kept(lab_net):
    subprocess.run(lab_net.command("rcv", ["tc", "qdisc", "add", "dev", lab_net.ifname["rcv"], "clsact"]), check=True)
    subprocess.run(lab_net.command("rcv", ["tc", "filter", "add", "dev", lab_net.ifname["rcv"], "ingress",
                                           "protocol", "all", "u32", "match", "u32", "0", "0", "flowid", "1:1"]), check=True)
    lab = TcClassifierLesson(net=lab_net)
    lab.compile()
    lab.load()
    with pytest.raises(AttachError) as e:
        lab.attach()
    assert "already has a clsact qdisc" in str(e.value) and "Nothing was changed" in str(e.value)
    with TutorialTC(lab_net) as t:
        t.build_runnable()
        with pytest.raises(AttachError):
            t.attach()
    assert "clsact" in lab_net.qdiscs("rcv")
    filt = subprocess.run(lab_net.command("rcv", ["tc", "filter", "show", "dev", lab_net.ifname["rcv"], "ingress"]),
                          capture_output=True, text=True).stdout
    assert "u32" in filt and "bpf" not in filt


def test_run_owns_and_removes_its_network():
    df = TcClassifierLesson(limit=300).run(payloads=[100, 257, 258, 400])
    assert list(df["delivered"]) == [True, True, False, False]
    assert df.attrs["boundary_payload"] == 258
    assert _mine() == []


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([PY, "-m", "ebpf_lab", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, **kw)


def test_cli_run_writes_the_sweep(tmp_path):
    out = tmp_path / "sweep.csv"
    p = _cli("run", "tc-classifier", "--set", "limit=500", "--out", str(out))
    stdout, stderr = p.communicate(timeout=180)
    assert p.returncode == 0, stderr
    df = pd.read_csv(out)
    assert {"payload_bytes", "skb_len", "delivered", "classifier_pass", "classifier_drop"} <= set(df.columns)
    assert df.loc[~df.delivered, "payload_bytes"].min() == 458
    assert "delivery stops at ping -s 458" in stdout


def _child_networks(pid: int) -> list:
    return [o for o in lab_objects() if f"ebl-{pid}-" in o]


def _descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(64):
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False


def _pings_of(pid: int) -> list:
    return processes(lambda q, argv: bool(argv) and os.path.basename(argv[0]) == b"ping" and _descends_from(q, pid))


def test_interrupted_mid_sweep_leaves_nothing():
    """SIGINT (what Ctrl-C sends) while the sweep is pinging: exit 130, nothing of the lab remains."""
    p = _cli("run", "tc-classifier", "--set", "count=5")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _child_networks(p.pid):
        time.sleep(0.05)
    assert _child_networks(p.pid), "the lesson never built its network"
    while time.monotonic() < deadline and not _pings_of(p.pid):  # the sweep has started: a ping of ours runs
        time.sleep(0.02)
    assert _pings_of(p.pid), "the sweep never started pinging"
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    assert "interrupted" in stderr
    assert _child_networks(p.pid) == []


def test_keyboard_interrupt_mid_sweep_in_process(no_bpf_leak):
    """A real SIGINT to this process while the sweep pings: KeyboardInterrupt, lesson detached, network gone."""
    lab = TcClassifierLesson(limit=500, count=3)
    lab.compile()
    lab.load()
    lab.attach()
    net = lab.net
    assert "clsact" in net.qdiscs("rcv")
    sizes = list(range(0, 1473, 10))  # ~148 sizes
    pings: list = []
    real_ping = net.ping

    def ping(payload, **kw):  # the interrupt comes from inside the sweep: after its first ping
        pings.append(payload)
        if len(pings) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real_ping(payload, **kw)

    net.ping = ping
    with pytest.raises(KeyboardInterrupt):
        lab.sweep(sizes)
    assert 2 <= len(pings) < len(sizes), "the interrupt landed mid-sweep"
    assert lab.state.value == "closed"
    assert net.closed and net.leftovers() == []


def test_verifier_refuses_the_classifier_without_its_bounds_check(no_bpf_leak):
    """-DBOUNDS_CHECK=0 leaves the tutorial's data_end check out: the real verifier refuses, and says why."""
    from ebpf_lab.errors import VerifierError

    lab = TcClassifierLesson(limit=500, bounds_check=False)
    assert "-DBOUNDS_CHECK=0" in lab.cflags()
    lab.compile()
    with pytest.raises(VerifierError) as e:
        lab.load()
    lab.detach()
    assert "invalid access to packet" in e.value.log
    assert "off=12" in e.value.log  # eth->h_proto, 12 bytes into the frame
    # and with the check (the default) the same program is accepted
    ok = TcClassifierLesson(limit=500)
    assert "-DBOUNDS_CHECK=1" in ok.cflags()
    ok.compile()
    assert list(ok.load().verifier) == ["accepted"]
    ok.detach()


def test_bpftool_shows_the_lessons_program_while_attached_and_nothing_after(no_bpf_leak):
    """bpftool prog show / net show list the lesson's own program and attachment, then nothing after detach."""
    from ebpf_lab.bpftool import net_attachments, programs, programs_gone
    from ebpf_lab.netlab import LabNetwork

    with LabNetwork() as net:
        lab = TcClassifierLesson(net=net, limit=500)
        lab.compile()
        loaded = lab.load()
        ids = list(loaded.prog_id)
        try:
            lab.attach()
            progs = programs(ids)
            assert list(progs.id) == ids and list(progs.type) == ["sched_cls"] and list(progs.name) == ["on_tc_ingress"]
            assert len(progs.map_ids[0]) == 2  # by_len and totals
            att = net_attachments(ids, net=net)
            assert list(att.prog_id) == ids and list(att.hook) == ["tc"]
            assert list(att.devname) == [net.ifname["rcv"]] and "ingress" in att.attach[0]
        finally:
            lab.detach()
        assert programs_gone(ids).empty
        assert net_attachments(ids, net=net).empty
    assert programs([]).empty
