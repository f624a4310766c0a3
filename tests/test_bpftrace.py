"""ebpf_lab.bpftrace: bpftrace run bounded, its -f json output as DataFrames, nothing left behind."""
import os
import signal
import sys
import time

import pytest

from ebpf_lab import bpftrace
from ebpf_lab.errors import CompileError, LabParameterError


def _children_named(name):
    """Processes whose parent is this test process and whose comm is ``name``."""
    me, found = str(os.getpid()), []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = stat[stat.rindex(")") + 2:].split()[1]
        if ppid == me and comm == name:
            found.append(int(pid))
    return found


# ------------------------------------------------------------------ unit
@pytest.mark.unit
def test_map_frame_splits_keys_from_the_right():
    df = bpftrace.map_frame({"bash,15": 2, "a,b,9": 1}, key_names=["comm", "signal"], value_name="kills")
    assert list(df.columns) == ["comm", "signal", "kills"]
    assert df.set_index("comm").loc["a,b", "signal"] == 9 and df.set_index("comm").loc["bash", "kills"] == 2


@pytest.mark.unit
def test_map_frame_hist_stats_scalar():
    h = bpftrace.map_frame([{"min": 0, "max": 0, "count": 3}, {"min": 2, "max": 3, "count": 1}])
    assert list(h.columns) == ["min", "max", "count"] and h["count"].sum() == 4
    assert bpftrace.map_frame({"count": 4, "average": 2, "total": 8}).loc[0, "total"] == 8
    assert bpftrace.map_frame(31).loc[0, "value"] == 31


@pytest.mark.unit
@pytest.mark.parametrize("kw", [{"program": ""}, {"program": "BEGIN {}", "seconds": 0},
                                {"program": "BEGIN {}", "seconds": 10_000},
                                {"program": "BEGIN {}", "columns": ["a", "a"]},
                                {"program": "BEGIN {}", "command": ["sh", "-c", "kill -9 1"]}])
def test_bad_parameters_raise_one_clear_error(kw):
    with pytest.raises(LabParameterError):
        bpftrace.run(**kw)


@pytest.mark.unit
def test_command_is_bounded_by_timeout():
    argv = bpftrace.command_line("BEGIN { exit(); }", seconds=3)
    assert argv[:4] == ["timeout", "-s", "INT", "3"] and argv[-4:] == ["-f", "json", "-e", "BEGIN { exit(); }"]
    assert bpftrace.command_line("BEGIN {}", run=["sleep", "1"])[-4:] == ["-c", "sleep 1", "-e", "BEGIN {}"]


@pytest.mark.unit
def test_a_script_file_and_its_positional_parameters():
    argv = bpftrace.command_line(script="/x/tool.bt", args=[10, "a"], seconds=5)
    assert argv[:4] == ["timeout", "-s", "INT", "5"] and argv[-5:] == ["-f", "json", "/x/tool.bt", "10", "a"]
    assert "-e" not in argv


@pytest.mark.unit
def test_session_refuses_a_program_and_a_script_together_or_a_missing_script(tmp_path):
    bt = tmp_path / "ebl_t.bt"
    bt.write_text("BEGIN { exit(); }\n")
    with pytest.raises(LabParameterError, match="not both"):
        bpftrace.Session("BEGIN {}", script=str(bt))
    with pytest.raises(LabParameterError, match="is not a file"):
        bpftrace.Session(script=str(tmp_path / "none.bt"))
    assert bpftrace.Session(script=str(bt)).stop() == ""  # never started: nothing to stop


# ------------------------------------------------------------------ against the kernel
needs_bpftrace = pytest.mark.skipif(bpftrace.executable() is None, reason="bpftrace: not installed")

@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@needs_bpftrace
def test_kills_the_command_sends_are_rows(tmp_path):
    """bpftrace starts the workload after attaching: every kill it sends is a row, and a map counts them."""
    workload = ("import os, signal, subprocess\n"
                "p = subprocess.Popen(['sleep', '60'])\n"
                "for s in (0, signal.SIGUSR1, signal.SIGCONT, signal.SIGKILL):\n"
                "    os.kill(p.pid, s)\n"
                "    print('sent', p.pid, int(s), flush=True)\n"
                "p.wait()\n")
    prog = ('tracepoint:syscalls:sys_enter_kill /pid == cpid/ '
            '{ printf("%d\\t%d\\t%s\\n", args->pid, args->sig, comm); @[comm, args->sig] = count(); }')
    script = tmp_path / "ebl_bt_kills.py"
    script.write_text(workload)
    df = bpftrace.run(prog, columns=["target_pid", "signal", "comm"], seconds=60, command=[sys.executable, str(script)])
    sent = [(int(p), int(s)) for _, p, s in (ln.split() for ln in df.attrs["command_output"].splitlines()
                                             if ln.startswith("sent "))]
    assert len(sent) == 4
    assert list(zip(df["target_pid"], df["signal"])) == sent
    assert df.attrs["probes"] >= 1 and df.attrs["stopped_by"] == "exit"
    assert df.attrs["command"].startswith("timeout -s INT 60 ") and " -c " in df.attrs["command"]
    counts = bpftrace.map_frame(df.attrs["maps"]["@"], key_names=["comm", "signal"])
    assert sorted(counts["signal"]) == sorted(s for _, s in sent) and set(counts["value"]) == {1}
    assert _children_named("bpftrace") == []


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@needs_bpftrace
def test_time_bound_stops_it_with_sigint():
    df = bpftrace.run("tracepoint:syscalls:sys_enter_kill { @x = count(); }", seconds=1,
                      command=["sleep", "60"])
    assert df.attrs["stopped_by"] == "SIGINT" and "@x" in df.attrs["maps"]  # SIGINT is itself a kill()
    assert _children_named("bpftrace") == [] and _children_named("sleep") == []


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@needs_bpftrace
def test_program_that_exits_by_itself():
    df = bpftrace.run('BEGIN { printf("a\\tb\\n"); exit(); }', columns=["x", "y"], seconds=30)
    assert df.attrs["stopped_by"] == "exit" and df.to_dict("records") == [{"x": "a", "y": "b"}]


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@needs_bpftrace
def test_refused_program_raises_with_bpftraces_message():
    with pytest.raises(CompileError, match="tracepoint not found"):
        bpftrace.run("tracepoint:syscalls:sys_enter_no_such_call { @x = count(); }", seconds=1)
    assert _children_named("bpftrace") == []


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@needs_bpftrace
def test_interrupt_leaves_nothing_running():
    """A KeyboardInterrupt while bpftrace runs (Ctrl-C in a notebook): bpftrace and its command are gone."""
    import threading

    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            bpftrace.run("tracepoint:syscalls:sys_enter_kill { @x = count(); }", seconds=60, command=["sleep", "60"])
    finally:
        timer.cancel()
    assert _children_named("bpftrace") == []


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@needs_bpftrace
def test_script_file_with_a_positional_parameter(tmp_path):
    bt = tmp_path / "ebl_t_args.bt"
    bt.write_text('BEGIN { printf("%d\\t%s\\n", $1, str($2)); exit(); }\n')
    df = bpftrace.run(script=str(bt), args=["41", "ebl"], columns=["n", "word"], seconds=60)
    assert df.to_dict("records") == [{"n": 41, "word": "ebl"}] and df.attrs["stopped_by"] == "exit"
    assert df.attrs["command"].endswith(f"{bt} 41 ebl")


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@needs_bpftrace
def test_session_in_the_background_sees_kills_sent_after_start():
    """start() returns once attached; kills sent afterwards are lines; stop() leaves nothing running."""
    me = os.getpid()
    s = bpftrace.Session(f'tracepoint:syscalls:sys_enter_kill /pid == {me}/ {{ printf("%d %d\\n", args->pid, args->sig); }}')
    try:
        s.start()
        assert s.probes == 1 and s.proc is not None and s.proc.poll() is None
        sent = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # bpftrace says it attaches before it has: send until it sees one
            os.kill(me, 0)
            sent.append(me)
            if any(ln == f"{me} 0" for _, ln in s.lines()):
                break
            time.sleep(0.05)
        seen = [ln for _, ln in s.lines()]
        assert seen and set(seen) == {f"{me} 0"} and len(seen) <= len(sent)
    finally:
        how = s.stop()
    assert how in ("SIGINT", "SIGKILL") and s.proc.returncode is not None
    assert s.stop() == how  # again: the same answer, nothing more done
    assert _children_named("bpftrace") == []
