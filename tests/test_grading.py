"""The exercises and their graders, proven on right and wrong answers on the running kernel.

- every reference solution (notebooks/solutions/) passes every check;
- every released learner notebook (notebooks/exercises/) fails, kindly;
- every deliberately wrong answer (tests/exercises/wrong_answers.py) fails at
  the right check with the right hint;
- (the committed learner notebooks equal a fresh release: tests/test_notebook_sources.py);
- `ebpf-lab check` / `grade` / `release` work from the command line;
- nothing is left behind: BPF programs, processes, files.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from ebpf_lab import grading
from ebpf_lab.exercises import EXERCISES, get_exercise
from ebpf_lab.exercises._base import FAIL, PASS, Submission, submission_from_notebook
from ebpf_lab.exercises._scoring import scheme

from exercises.wrong_answers import WRONG

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOL = os.path.join(ROOT, "notebooks", "solutions")
EXE = os.path.join(ROOT, "notebooks", "exercises")
IDS = list(EXERCISES)
GRADED = [pytest.mark.root, pytest.mark.bpf, pytest.mark.tracepoints]


def _marks(eid: str) -> list:
    """What grading an exercise needs: root, bcc, and the exercise's own features (tracepoints, netns, tc, xdp)."""
    return [pytest.mark.root, pytest.mark.bpf] + [getattr(pytest.mark, n) for n in get_exercise(eid).needs]


def each_exercise() -> list:
    return [pytest.param(e, marks=_marks(e), id=e) for e in IDS]


def solution(eid: str) -> Submission:
    return submission_from_notebook(os.path.join(SOL, f"{eid}.ipynb"), get_exercise(eid))


def _ppid(pid: int) -> int:
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def lab_processes() -> list:
    """Workload processes of the exercises started by this test process and still running."""
    me, out = os.getpid(), []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
        except OSError:
            continue
        if not (comm.startswith("ebl-ex-") or comm in ("sleep", "ebl-kmalloc")):
            continue
        p = int(pid)
        for _ in range(8):  # ours: a descendant of this process
            p = _ppid(p)
            if p in (0, 1) or p == me:
                break
        if p == me:
            out.append((int(pid), comm))
    return out


def no_unexpected(rep) -> None:
    for r in rep.results:
        assert "unexpected problem" not in r.message, f"{r.check}: {r.message}"
        assert "Traceback" not in r.message, f"{r.check}: {r.message}"


@pytest.fixture
def clean_after(no_bpf_leak):
    before = set(os.listdir("/tmp"))
    yield
    assert lab_processes() == [], "workload processes were left running"
    left = [d for d in set(os.listdir("/tmp")) - before if d.startswith(f"ebl-ex-{os.getpid()}-")]
    assert left == [], f"left in /tmp: {left}"
    mine = f"ebl-{os.getpid()}-"
    nets = [n for n in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else []) if n.startswith(mine)]
    assert nets == [], f"lab networks left: {nets}"


@pytest.fixture(autouse=True)
def quick_python_timeout(monkeypatch):
    from ebpf_lab.exercises import _base

    # 4 s keeps the wrong answers' endless loops quick; the child interpreter's start (importing pandas,
    # slow under the guest tier's emulation) is not counted in it (_sandbox.STARTUP_TIMEOUT_S)
    monkeypatch.setattr(_base, "PY_TIMEOUT", 4.0)


# --------------------------------------------------------------- no kernel needed
def test_at_least_two_exercises_per_lesson_rising_difficulty():
    df = grading.exercises()
    for lesson in ("hello-kill", "kmalloc", "args-return", "tc-classifier", "xdp-vs-tc"):
        levels = sorted(df[df["lesson"] == lesson]["level"])
        assert len(levels) >= 2, f"lesson {lesson} has {len(levels)} exercise(s)"
        assert levels[0] < levels[-1], f"lesson {lesson}: difficulty does not rise ({levels})"


@pytest.mark.parametrize("eid", IDS)
def test_notebooks_follow_nbgrader_conventions(eid):
    ex = get_exercise(eid)
    nb = json.load(open(os.path.join(SOL, ex.notebook)))
    assert nb["metadata"]["ebpf_lab"]["exercise"] == eid
    cells = nb["cells"]
    answers = [c for c in cells if (ex.bpf_tag or ex.py_tag) in c["metadata"].get("tags", [])]
    assert len(answers) == 1 and answers[0]["metadata"]["nbgrader"]["solution"] is True
    graded = [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade")]
    assert [c["metadata"]["nbgrader"]["grade_id"] for c in graded] == [f"check-{eid}"]
    src = "".join(graded[0]["source"])
    assert src.lstrip().startswith('"""Checks ' + eid), "the graded cell's docstring says what it checks"
    assert f'check("{eid}", globals())' in src
    text = "".join("".join(c["source"]) for c in cells)
    assert text.count(grading.BEGIN) == text.count(grading.END) >= bool(ex.bpf_tag) + len(ex.py_functions)
    assert "Hint" in text, "the statement gives hints"


@pytest.mark.parametrize("eid", IDS)
def test_learner_notebook_has_gaps_and_no_solution(eid):
    teacher = json.load(open(os.path.join(SOL, f"{eid}.ipynb")))
    learner = json.load(open(os.path.join(EXE, f"{eid}.ipynb")))
    text = "".join("".join(c["source"]) for c in learner["cells"])
    assert grading.BEGIN not in text and grading.END not in text
    assert grading.C_STUB in text or grading.PY_STUB[0] in text
    for c in learner["cells"]:
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None
    # every line inside a teacher solution region is gone (unless it also appears outside one)
    inside, sol_lines = False, []
    outside = set()
    for c in teacher["cells"]:
        for ln in "".join(c["source"]).splitlines():
            if grading.BEGIN in ln:
                inside = True
            elif grading.END in ln:
                inside = False
            elif inside and len(ln.strip()) > 12:
                sol_lines.append(ln)
            elif not inside:
                outside.add(ln)
    learner_lines = set(text.splitlines())
    leaked = [ln for ln in sol_lines if ln in learner_lines and ln not in outside]
    assert leaked == [], f"solution lines in the learner notebook: {leaked[:3]}"


def test_release_replaces_regions_by_language():
    nb = {"cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [{"x": 1}], "execution_count": 3,
         "source": ["P = r'''\n", "int f(void) {\n", "    // ### BEGIN SOLUTION\n", "    secret();\n",
                    "    // ### END SOLUTION\n", "    return 0;\n", "}\n", "'''"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["def f(x):\n", "    ### BEGIN SOLUTION\n", "    return x\n", "    ### END SOLUTION"]},
        {"cell_type": "markdown", "metadata": {}, "source": ["Why?\n", "### BEGIN SOLUTION\n", "Because.\n", "### END SOLUTION\n"]},
        {"cell_type": "markdown", "metadata": {"tags": ["teacher-only"]}, "source": ["notes"]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    out = grading.release_notebook(nb)
    assert "".join(out["cells"][0]["source"]) == "P = r'''\nint f(void) {\n    // YOUR CODE HERE\n    return 0;\n}\n'''"
    assert out["cells"][0]["outputs"] == [] and out["cells"][0]["execution_count"] is None
    assert "".join(out["cells"][1]["source"]) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert "".join(out["cells"][2]["source"]) == "Why?\nYOUR ANSWER HERE\n"
    assert len(out["cells"]) == 3
    bad = copy.deepcopy(nb)
    bad["cells"][1]["source"] = ["### BEGIN SOLUTION\n", "x = 1\n"]
    with pytest.raises(grading.LabError, match="never closed"):
        grading.release_notebook(bad)


def test_extraction_problems_are_kind(tmp_path):
    ex = get_exercise("kmalloc-filter")
    p = tmp_path / "broken.ipynb"
    p.write_text("{not json")
    sub = submission_from_notebook(str(p), ex)
    assert sub.bpf is None and "could not read the notebook" in sub.problems[0]
    nb = json.load(open(os.path.join(SOL, "kmalloc-filter.ipynb")))
    for c in nb["cells"]:
        if "answer-bpf" in c["metadata"].get("tags", []):
            c["source"] = ["PROGRAM = open('x.c').read()\n"]
    p.write_text(json.dumps(nb))
    sub = submission_from_notebook(str(p), ex)
    assert sub.bpf is None and "plain string literal" in sub.problems[0]


# --------------------------------------------------------------- on the kernel
@pytest.mark.parametrize("eid", each_exercise())
@pytest.mark.usefixtures("clean_after")
def test_reference_solution_passes(eid):
    rep = get_exercise(eid).run(solution(eid))
    assert rep.passed, rep.text()
    got, out_of = rep.points
    assert got == out_of > 0, f"a reference solution earns full marks: {got}/{out_of}"
    assert [r.check for r in rep.results] == list(get_exercise(eid).CHECKS)
    assert rep.results[-1].check == "clean" and rep.results[-1].status == PASS
    kinds = {h.split(":", 1)[0] for h in rep.hooks}
    want = {"sched_cls": "tc", "xdp": "xdp", "tracepoint": "tracepoint", "kprobe": "kprobe", "kretprobe": "kprobe"}
    assert rep.hooks and {want[k] for k in kinds} <= set(rep.hook_path.replace("+", " ").split()) | {"tracepoint", "kprobe"}
    if "kprobe" in get_exercise(eid).hook_variants() and "no kprobes" in rep.hook_path:
        assert kinds == {"tracepoint"}, rep.hooks  # the fallback was really used


@pytest.mark.parametrize("eid", each_exercise())
@pytest.mark.usefixtures("clean_after")
def test_released_notebook_fails_unmodified(eid):
    ex = get_exercise(eid)
    rep = ex.run(submission_from_notebook(os.path.join(EXE, f"{eid}.ipynb"), ex))
    assert not rep.passed
    no_unexpected(rep)
    failed = [r for r in rep.results if r.status == FAIL]
    assert failed and all(r.hint for r in failed), rep.text()
    if rep.results[0].check == "compiles":
        assert rep.results[0].status == PASS, "the learner's skeleton compiles as handed out"
    # an untouched notebook earns nothing: what it passes is a gate or a keeps-working check
    sch = scheme(ex)
    passed = {r.check for r in rep.results if r.status == PASS}
    assert passed <= set(sch.gates) | set(sch.keeps_working), f"the skeleton passes core checks {passed}"
    assert rep.points == (0, sch.total), rep.text()


def _apply(sub: Submission, w) -> Submission:
    bpf = sub.bpf
    for old, new in w.bpf:
        assert old in bpf, f"{w.name}: {old!r} is not in the reference PROGRAM"
        bpf = bpf.replace(old, new, 1)
    py = dict(sub.python)
    for fn, old, new in w.py:
        assert old in py[fn], f"{w.name}: {old!r} is not in the reference {fn}()"
        py[fn] = py[fn].replace(old, new, 1)
    return Submission(bpf, py, f"wrong answer {w.name}")


@pytest.mark.parametrize("eid,w", [pytest.param(e, w, marks=_marks(e), id=f"{e}-{w.name}")
                                   for e in IDS for w in WRONG.get(e, [])])
@pytest.mark.usefixtures("clean_after")
def test_wrong_answer_is_rejected_with_the_right_hint(eid, w):
    ex = get_exercise(eid)
    rep = ex.run(_apply(solution(eid), w))
    res = {r.check: r for r in rep.results}
    assert not rep.passed
    assert rep.points[0] < rep.points[1], f"a wrong answer scores below full marks:\n{rep.text()}"
    first = next(r for r in rep.results if r.status == FAIL)
    # "a|b": which of a or b catches it depends on a value the grader draws afresh (e.g. LIMIT)
    assert first.check in w.check.split("|"), f"the first failure should be {w.check}, was {first.check}:\n{rep.text()}"
    said = (res[first.check].message + " " + res[first.check].hint).lower()
    assert w.words.lower() in said, f"{first.check} says: {said}"
    no_unexpected(rep)
    if w.check != "clean":
        assert res["clean"].status == PASS
    # (this process's pins only: other test runs on the machine pin their own)
    assert not [p for p in os.listdir("/sys/fs/bpf") if p == f"ebl-ex-pinned-{os.getpid()}"], "a pinned object was left"


def test_every_exercise_has_five_wrong_answers():
    for eid in IDS:
        assert len(WRONG.get(eid, [])) >= 5, f"{eid} has {len(WRONG.get(eid, []))} wrong answers"


# --------------------------------------------------------------- command line
def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, EBPF_LAB_PY_TIMEOUT="4")
    return subprocess.run([sys.executable, "-m", "ebpf_lab", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
def test_cli_check_exit_status():
    ok = _cli("check", "kmalloc-per-pid", os.path.join(SOL, "kmalloc-per-pid.ipynb"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "11/11 checks passed" in ok.stdout
    bad = _cli("check", "kmalloc-per-pid", os.path.join(EXE, "kmalloc-per-pid.ipynb"))
    assert bad.returncode == 1
    assert "FAIL  fires" in bad.stdout and "hint:" in bad.stdout and "Traceback" not in bad.stdout + bad.stderr
    js = _cli("check", "--json", "kmalloc-per-pid", os.path.join(EXE, "kmalloc-per-pid.ipynb"))
    rep = grading.report_from_dict(json.loads(js.stdout))
    assert js.returncode == 1 and not rep.passed and rep.results[0].check == "compiles"
    assert {r.status for r in rep.results} == {"pass", "fail", "skip"}
    missing = _cli("check", "kmalloc-per-pid", "/nonexistent.ipynb")
    assert missing.returncode == 1 and "no such file" in missing.stderr
    unknown = _cli("check", "no-such-exercise", os.path.join(SOL, "kmalloc-per-pid.ipynb"))
    assert unknown.returncode == 1 and "no exercise" in unknown.stderr


def test_cli_release_check_and_list():
    r = _cli("release", "--check")
    assert r.returncode == 0, r.stdout
    lst = _cli("exercises")
    assert lst.returncode == 0 and all(e in lst.stdout for e in IDS)


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
def test_grade_folder_gives_learner_by_check_table_and_csv(tmp_path):
    sub = tmp_path / "submitted"
    sub.mkdir()
    eid = "kmalloc-filter"
    (sub / "alice.ipynb").write_text(open(os.path.join(SOL, f"{eid}.ipynb")).read())
    (sub / "bob.ipynb").write_text(open(os.path.join(EXE, f"{eid}.ipynb")).read())
    (sub / "carol").mkdir()
    (sub / "carol" / f"{eid}.ipynb").write_text("{ not a notebook")
    csv = tmp_path / "marks.csv"
    r = _cli("grade", str(sub), "--exercise", eid, "--csv", str(csv))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1/3 learners passed every check" in r.stdout
    df = pd.read_csv(csv, index_col="learner")
    assert sorted(df.index) == ["alice", "bob", "carol"]
    checks = list(get_exercise(eid).CHECKS)
    assert set(checks) <= set(df.columns)
    assert (df.loc["alice", checks] == "pass").all()
    assert df.loc["bob", "fires"] == "fail" and df.loc["bob", "compiles"] == "pass"
    assert df.loc["carol", "compiles"] == "fail" and "could not read" in df.loc["carol", "first_problem"]
    assert df.loc["alice", "score"] == len(checks) and df.loc["bob", "score"] < len(checks)


# --------------------------------------------------------------- inline, in a notebook
@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@pytest.mark.notebook
def test_inline_check_in_the_teacher_notebook_runs_headless():
    import nbclient
    import nbformat

    for eid, want in (("kmalloc-per-pid", "well done"), ):
        nb = nbformat.read(os.path.join(SOL, f"{eid}.ipynb"), as_version=4)
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": SOL}}).execute()
        graded = [c for c in nb.cells if f"check-{eid}" in c.metadata.get("tags", [])][0]
        html = "".join(o.get("data", {}).get("text/html", "") for o in graded.outputs)
        assert want in html and "FAIL" not in html, html[:2000]
    # the learner's version runs too: the check cell shows the table of failures with hints, then FAILS
    # (nbgrader gives a graded cell its points only when it runs without error), naming the first hint
    nb = nbformat.read(os.path.join(EXE, "kmalloc-per-pid.ipynb"), as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": EXE}}).execute()
    graded = [c for c in nb.cells if "check-kmalloc-per-pid" in c.metadata.get("tags", [])][0]
    errors = [o for o in graded.outputs if o.get("output_type") == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "ChecksFailed", graded.outputs
    assert "hint:" in errors[0]["evalue"] and "0/" in errors[0]["evalue"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in graded.outputs)
    assert "FAIL" in html and "hint:" in html and "0/" in html


# --------------------------------------------------------------- guest-kernel tier
@pytest.mark.parametrize("eid", [e for e in IDS if "kprobe" in get_exercise(e).hook_variants()])
@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.kprobes
def test_kprobe_variant_reference_passes(eid, monkeypatch):
    """In the guest-kernel tier (kprobes, under emulation: generous time limits; ~30 s per exercise there)."""
    from ebpf_lab.exercises import _base

    monkeypatch.setattr(_base, "PY_TIMEOUT", 120.0)
    monkeypatch.setattr(_base, "GRADE_TIMEOUT", 900.0)
    ex = get_exercise(eid)
    rep = ex.run(solution(eid), force_hook="kprobe")
    assert rep.passed, rep.text()
    assert "kprobe" in rep.hook_path
    assert rep.hooks and all(h.startswith(("kprobe:", "kretprobe:")) for h in rep.hooks), rep.hooks


@pytest.mark.parametrize("eid", [e for e in IDS if "kprobe" in get_exercise(e).hook_variants()])
@pytest.mark.root
@pytest.mark.bpf
def test_kprobe_variant_compiles_and_passes_the_verifier_here(eid, no_bpf_leak):
    """The kprobe path cannot attach on this host, but its C must compile and load: the guest tier attaches it."""
    from ebpf_lab.exercises._base import Grader
    from ebpf_lab.lessons.hello_kill import syscall_fnname

    ex = get_exercise(eid)
    g = Grader(ex, solution(eid))
    g.hook_path = "kprobe"
    hooks, flags = ex.hooks(g)
    assert [h.kind for h in hooks][0] == "kprobe" and "-DEBL_KPROBE=1" in flags
    assert hooks[0].target == syscall_fnname(hooks[0].target.split("sys_")[-1])
    with ex_program(g.sub.bpf, hooks, flags + ["-DTARGET_PID=1"]) as p:
        p.compile()
        df = p.load()
        assert list(df["verifier"]) == ["accepted"] * len(hooks)


def ex_program(text, hooks, flags):
    from ebpf_lab.exercises._base import GradedProgram

    return GradedProgram(text, hooks, flags)


def test_isolated_check_reports_a_grader_that_hangs_or_dies(monkeypatch):
    import subprocess as sp

    def hang(*a, **kw):
        raise sp.TimeoutExpired(a[0], kw.get("timeout"))

    monkeypatch.setattr(grading.subprocess, "run", hang)
    rep = grading.check_isolated("kmalloc-filter", os.path.join(EXE, "kmalloc-filter.ipynb"))
    assert not rep.passed and rep.results[0].status == FAIL and "did not finish" in rep.results[0].message
    assert all(r.status == "skip" for r in rep.results[1:])

    def dies(*a, **kw):
        return sp.CompletedProcess(a[0], -11, stdout="", stderr="Segmentation fault")

    monkeypatch.setattr(grading.subprocess, "run", dies)
    rep = grading.check_isolated("kmalloc-filter", os.path.join(EXE, "kmalloc-filter.ipynb"))
    assert "stopped on this notebook: Segmentation fault" in rep.results[0].message
