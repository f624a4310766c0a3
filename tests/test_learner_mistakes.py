"""Learner code cannot break the lab.

- every mutant of the corpus (tests/exercises/mistakes.py) gets a report whose first failed check is
  the expected one, with the hint of its class; no traceback; nothing left running, in the kernel or in /tmp;
  mutants that crash bcc or LLVM in-process are contained in the compile child;
- hints are chosen from the line that names the error, and never formatted with the learner's text;
- the lessons' ``program_text=`` path survives a compiler crash (the notebook kernel lives on);
- a grader killed by SIGKILL mid-check leaves nothing: no process, no BPF program, no folder, no record;
- bad input (not a notebook, not UTF-8, unwritable --csv) is one clear line, and JSON where --json was asked.
"""
from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from ebpf_lab.exercises import get_exercise
from ebpf_lab.exercises import _hints
from ebpf_lab.exercises._base import FAIL, PASS, Submission

from exercises.mistakes import MISTAKES
from test_grading import SOL, _marks, clean_after, no_unexpected, solution  # noqa: F401  (clean_after: a fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mutate(bpf: str, m) -> str:
    for old, new in m.edits:
        assert old in bpf, f"{m.name}: {old!r} is not in the reference PROGRAM of {m.exercise}"
        bpf = bpf.replace(old, new, 1)
    return m.whole(bpf) if m.whole else bpf


def _start_time(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def descendants(root: int) -> dict:
    """pid -> start time of every living descendant of ``root``."""
    kids: dict = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                kids.setdefault(int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = {}, [root]
    while todo:
        for k in kids.get(todo.pop(), []):
            out[k] = _start_time(k)
            todo.append(k)
    return out


def my_children_but_reaper() -> list:
    from ebpf_lab import _registry

    reaper = _registry._reaper.pid if _registry._reaper is not None else -1
    mine = descendants(os.getpid())
    if reaper in mine:  # the reaper (and nothing under it) is expected to live as long as we do
        for k in list(descendants(reaper)) + [reaper]:
            mine.pop(k, None)
    return sorted(p for p, st in mine.items() if st and _start_time(p) == st and not _zombie(p))


def _zombie(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# --------------------------------------------------------------- the corpus
def test_corpus_is_broad():
    assert len({m.name for m in MISTAKES}) == len(MISTAKES) >= 40
    assert len({m.exercise for m in MISTAKES}) >= 3
    assert sum(m.crash for m in MISTAKES) >= 2


@pytest.mark.parametrize("m", [pytest.param(m, marks=_marks(m.exercise), id=f"{m.exercise}-{m.name}") for m in MISTAKES])
@pytest.mark.usefixtures("clean_after")
def test_mistake_gets_a_report_with_its_hint(m, monkeypatch):
    from ebpf_lab import _trial
    from ebpf_lab.exercises._base import wait_gone

    trials = []
    real = _trial.trial

    def recorded(*a, **kw):
        trials.append(real(*a, **kw))
        return trials[-1]

    monkeypatch.setattr(_trial, "trial", recorded)
    ex = get_exercise(m.exercise)
    ref = solution(m.exercise)
    rep = ex.run(Submission(_mutate(ref.bpf, m), ref.python, f"mistake {m.name}"))
    first = next((r for r in rep.results if r.status == FAIL), None)
    assert first is not None, f"{m.name} passed every check:\n{rep.text()}"
    assert first.check == m.check, f"the first failure should be {m.check}:\n{rep.text()}"
    said = (first.message + " " + first.hint).lower()
    assert m.words.lower() in said, f"{m.name}: expected {m.words!r} in:\n{rep.text()}"
    assert first.hint, f"{m.name}: no hint:\n{rep.text()}"
    no_unexpected(rep)
    if m.crash:
        assert "separate process" in first.message, rep.text()
    if "clean" in ex.CHECKS:
        assert {r.check: r for r in rep.results}["clean"].status == PASS, rep.text()
    assert my_children_but_reaper() == [], "a child process of the grading is still running"
    for t in trials:  # what the compile child loaded went with it
        assert wait_gone(t.kernel_ids.get("prog", []), timeout=10) == []
        left = [i for i in t.kernel_ids.get("map", []) if map_alive(i)]
        deadline = time.monotonic() + 10
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [i for i in left if map_alive(i)]
        assert left == [], f"maps of the compile child still in the kernel: {left}"


def map_alive(map_id: int) -> bool:
    import ctypes

    from ebpf_lab._bpfsys import sys_bpf

    attr = ctypes.create_string_buffer(map_id.to_bytes(4, "little") + bytes(12))
    try:
        fd = sys_bpf(14, attr)  # BPF_MAP_GET_FD_BY_ID
    except OSError:
        return False
    os.close(fd)
    return True


# --------------------------------------------------------------- hints, without the kernel
def test_hint_comes_from_the_error_line_not_the_register_dump():
    log = ("9: (85) call bpf_ringbuf_reserve#131 ; R0=ringbuf_mem_or_null(id=2,ref_obj_id=2,sz=28) refs=2\n"
           "10: (bf) r6 = r0 ; R6=ringbuf_mem_or_null(id=2,ref_obj_id=2,sz=28) refs=2\n"
           "23: (95) exit\nUnreleased reference id=2 alloc_insn=9\n"
           "BPF_EXIT instruction in main prog would lead to reference leak\n"
           "processed 23 insns (limit 1000000) max_states_per_insn 0 total_states 2 peak_states 2 mark_read 0\n")
    kind, hint = _hints.verifier_hint(log)
    assert kind == "unreleased-reference" and "ringbuf_submit" in hint
    log2 = "12: (63) *(u32 *)(r6 +8) = r7\nR6 invalid mem access 'ringbuf_mem_or_null'\nprocessed 12 insns (limit 1000000)\n"
    assert _hints.verifier_hint(log2)[0] == "null"
    log3 = ("18: (85) call bpf_get_prandom_u32#7\ninfinite loop detected at insn 19\n"
            "cur state: R0=scalar() R6=ringbuf_mem_or_null(id=2) refs=2\nold state: R0=scalar() refs=2\n")
    assert _hints.verifier_hint(log3)[0] == "loop"
    log4 = ("1000000: (07) r1 += 1\nBPF program is too large. Processed 1000001 insn\n"
            "processed 1000001 insns (limit 1000000) max_states_per_insn 4 total_states 1 peak_states 1\n")
    assert _hints.verifier_hint(log4)[0] == "loop"


def test_hint_never_formats_learner_text():
    log = ("/virtual/main.c:3:1: error: use of undeclared identifier 'x'\n  { }  {0} {x} {\n"
           "/virtual/main.c:9:1: error: expected '}'\n")
    kind, hint = _hints.compile_hint(log)
    assert kind == "undeclared" and "'x'" in hint
    kind, hint = _hints.compile_hint("/virtual/main.c:9:1: error: expected '}'\n{ } {0}\n")
    assert kind == "bracket" and "{ }" in hint
    from ebpf_lab.exercises._base import _COMPILE_HINTS, explain

    assert "{ }" in explain(_COMPILE_HINTS, "error: expected '}'", "default")


def test_crash_hint_names_llvm_stack_limit():
    log = ("error: /virtual/main.c:0:0: in function f i32 (i8*): Looks like the BPF stack limit of 512 bytes is "
           "exceeded. Please move large on stack variables into BPF per-cpu array map.\n")
    kind, hint = _hints.crash_hint(log)
    assert kind == "stack-limit" and hint.startswith("LLVM: BPF stack limit of 512 bytes is exceeded")


# --------------------------------------------------------------- the lessons' program_text= path
STACK_BOMB = r"""
int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
    char big[4096];
    bpf_probe_read_kernel(big, sizeof(big), (void *)0);
    return big[7] == 3;
}
"""
MAP_METHOD_TYPO = r"""
BPF_RINGBUF_OUTPUT(ev, 4);
int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
    u64 *e = ev.ringbuf_reserve(sizeof(u64));
    if (!e)
        return 0;
    ev.ringbuf_submit(q, 0);
    return 0;
}
"""


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@pytest.mark.parametrize("text,words", [(STACK_BOMB, "stack limit of 512 bytes"),
                                        (MAP_METHOD_TYPO, "undeclared identifier 'q'")], ids=["stack", "typo"])
def test_lesson_program_text_that_crashes_the_compiler_raises_compile_error(no_bpf_leak, text, words):
    """In a notebook, this would have ended the kernel: bcc aborts, LLVM exits. Now it is a CompileError."""
    from ebpf_lab.errors import CompileError
    from ebpf_lab.lessons.kmalloc import KmallocLesson

    lab = KmallocLesson(program_text=text)
    with pytest.raises(CompileError) as e:
        lab.compile()
    assert words in str(e.value) and "separate process" in str(e.value)
    lab.detach()
    fixed = KmallocLesson(program_text=MAP_METHOD_TYPO.replace("(q, 0)", "(e, 0)"), stream=False)
    fixed.compile()  # the same process compiles the corrected program
    fixed.detach()
    assert my_children_but_reaper() == []


# --------------------------------------------------------------- a grader killed mid-check
@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
def test_grader_killed_mid_check_leaves_nothing(tmp_path):
    from ebpf_lab.exercises._base import prog_alive

    # the reference solution, with a Python answer that takes its time: the grader is surely mid-check then
    nb = json.load(open(os.path.join(SOL, "kill-signal-counts.ipynb")))
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if "answer-py" in cell.get("metadata", {}).get("tags", []) and "def signal_table" in src:
            cell["source"] = re.sub(r"(def signal_table\(.*\):\n)", r"\1    import time; time.sleep(120)\n", src, count=1)
    path = tmp_path / "slow.ipynb"
    path.write_text(json.dumps(nb))
    env = dict(os.environ, EBPF_LAB_PY_TIMEOUT="300")
    grader = subprocess.Popen([sys.executable, "-m", "ebpf_lab", "check", "kill-signal-counts", str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    pid = grader.pid
    seen: dict = {}
    progs: set = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the learner's function runs, with the BPF program attached
        assert grader.poll() is None, grader.communicate()
        seen.update(descendants(pid))
        progs |= _prog_ids(pid)
        if progs and glob.glob(f"/tmp/ebl-ex-{pid}-py-*") and any(_comm(k) == "sleep" for k in seen):
            break
        time.sleep(0.05)
    else:
        grader.kill()
        pytest.fail("the grader never reached the learner's Python function")
    seen.update(descendants(pid))
    assert os.path.exists(f"/run/ebpf-lab/{pid}.json"), "the grader's children are recorded with the reaper"
    grader.send_signal(signal.SIGKILL)
    out, err = grader.communicate(timeout=60)  # nothing of it holds our pipes open
    assert grader.returncode == -signal.SIGKILL

    def left() -> list:
        procs = [k for k, st in seen.items() if st and _start_time(k) == st and not _zombie(k)]
        kernel = [i for i in progs if prog_alive(i)]
        folders = glob.glob(f"/tmp/ebl-ex-{pid}-*")
        record = [f for f in [f"/run/ebpf-lab/{pid}.json"] if os.path.exists(f)]
        return procs + kernel + folders + record

    deadline = time.monotonic() + 60
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left() == [], f"left behind by a killed grader: {left()}"
    assert seen, "the grader had started its workload"


def _comm(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return ""


def _prog_ids(pid: int) -> set:
    out = set()
    for fd in glob.glob(f"/proc/{pid}/fdinfo/*"):
        try:
            m = re.search(r"^prog_id:\s*(\d+)", open(fd).read(), re.M)
        except OSError:
            continue
        if m:
            out.add(int(m.group(1)))
    return out


# --------------------------------------------------------------- bad input
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ebpf_lab", *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, EBPF_LAB_PY_TIMEOUT="4"))


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@pytest.mark.parametrize("content,words", [
    (b"[]", "not a Jupyter notebook"),
    (b'{"cells": 5}', "not a Jupyter notebook"),
    (b'{"cells": [7]}', "not a Jupyter notebook"),
    (b'{"cells": [\xff\xfe]}', "not UTF-8"),
    (b'{"cells": [', "not JSON"),
], ids=["list", "cells-5", "cell-7", "not-utf8", "truncated"])
def test_bad_notebook_is_one_clear_line_in_json(tmp_path, content, words):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    r = _cli("check", "--json", "kill-to-pid", str(path))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr
    rep = json.loads(r.stdout)
    first = rep["results"][0]
    assert first["status"] == FAIL and words in first["message"] and "\n" not in first["message"]


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
def test_lone_surrogate_in_the_program_is_one_clear_line(tmp_path):
    nb = json.load(open(os.path.join(SOL, "kill-to-pid.ipynb")))
    for cell in nb["cells"]:
        if "answer-bpf" in cell.get("metadata", {}).get("tags", []):
            cell["source"] = "".join(cell["source"]).replace("e->sig = sig;", "e->sig = sig; // \ud800")
    path = tmp_path / "surrogate.ipynb"
    path.write_text(json.dumps(nb))  # ensure_ascii: the surrogate is written as \ud800
    r = _cli("check", "--json", "kill-to-pid", str(path))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr
    first = json.loads(r.stdout)["results"][0]
    assert first["status"] == FAIL and "not text" in first["message"]


def test_json_is_printed_for_errors_too(tmp_path):
    r = _cli("check", "--json", "no-such-exercise", str(tmp_path / "x.ipynb"))
    assert r.returncode == 1
    assert "error" in json.loads(r.stdout)
    r = _cli("check", "--json", "kill-to-pid", str(tmp_path / "missing.ipynb"))
    assert r.returncode == 1 and "no such file" in json.loads(r.stdout)["error"]


@pytest.mark.parametrize("where", ["missing-folder", "folder-itself", "read-only"])
def test_grade_csv_is_checked_before_grading(tmp_path, where):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "alice.ipynb").write_text("{}")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    csv = {"missing-folder": tmp_path / "nope" / "m.csv", "folder-itself": tmp_path,
           "read-only": ro / "m.csv"}[where]
    if where == "read-only" and os.access(ro, os.W_OK) and os.geteuid() != 0:
        pytest.skip("this user can write anywhere")
    if where == "read-only" and os.geteuid() == 0:
        # root may write into a 0555 folder; a file that is a folder cannot be written by anyone
        csv = tmp_path / "isdir.csv"
        csv.mkdir()
    t0_grading = _cli("grade", str(subs), "--exercise", "kill-to-pid", "--csv", str(csv))
    assert t0_grading.returncode == 1
    lines = t0_grading.stderr.strip().splitlines()
    assert len(lines) == 1 and "--csv" in lines[0], t0_grading.stderr
    assert "alice" not in t0_grading.stderr + t0_grading.stdout, "grading started before the path was checked"


def test_csv_write_failure_keeps_the_data(tmp_path, monkeypatch):
    from ebpf_lab import grading
    from ebpf_lab.errors import LabError

    target = tmp_path / "marks.csv"
    real_replace = os.replace

    def fails(src, dst):
        if str(dst) == str(target):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(grading.os, "replace", fails)
    with pytest.raises(LabError) as e:
        grading.write_atomic(str(target), "learner,score\nalice,3\n")
    kept = re.search(r"kept in (\S+)$", str(e.value)).group(1)
    assert open(kept).read() == "learner,score\nalice,3\n"
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
