"""Marks a teacher can trust: points per check, graded cells that fail, and the real nbgrader.

- the scoring scheme: gates earn nothing; keeps-working checks earn only once a core check passed;
- a graded notebook cell raises (with the hint) when its checks fail, and passes when they pass;
- a small class run through the REAL nbgrader (generate_assignment, autograde, generate_feedback),
  every exercise in one assignment: the reference solutions get full marks, untouched notebooks 0,
  a gamed and a wrong answer what ``ebpf-lab grade`` gives them — nbgrader's scores equal the lab's
  own points, learner by learner, exercise by exercise and cell by cell.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ebpf_lab import classroom, grading
from ebpf_lab.exercises import EXERCISES, get_exercise
from ebpf_lab.exercises._base import Submission, submission_from_notebook
from ebpf_lab.exercises._scoring import scheme

from exercises.wrong_answers import WRONG, GAMED

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOL = os.path.join(ROOT, "notebooks", "solutions")
EXE = os.path.join(ROOT, "notebooks", "exercises")
KERNEL = [pytest.mark.root, pytest.mark.bpf, pytest.mark.tracepoints]


# --------------------------------------------------------------- no kernel needed
@pytest.mark.parametrize("eid", list(EXERCISES))
def test_scheme_weights_the_bpf_part_and_gates_earn_nothing(eid):
    ex = get_exercise(eid)
    sch = scheme(ex)
    assert list(sch.points) == list(ex.CHECKS)
    assert all(sch.points[g] == 0 for g in sch.gates if g in sch.points)
    assert sch.total > 0 and sch.scored()
    bpf = sum(p for c, p in sch.points.items() if not c.startswith("py-"))
    py = sum(p for c, p in sch.points.items() if c.startswith("py-"))
    assert bpf > py, f"{eid}: BPF {bpf} points, Python {py}"
    # a program that passes only what a stub passes earns nothing
    st = {c: ("pass" if c in sch.gates or c in sch.keeps_working else "fail") for c in ex.CHECKS}
    assert sch.score(st) == (0, sch.total)
    assert sch.score({c: "pass" for c in ex.CHECKS}) == (sch.total, sch.total)


def test_keeps_working_checks_count_once_the_program_works():
    sch = scheme(get_exercise("tc-drop-big-icmp"))
    st = {c: "pass" for c in sch.points}
    st["udp-pass"] = "fail"  # drops UDP too: loses udp-pass only
    assert sch.score(st)[0] == sch.total - sch.points["udp-pass"]
    st = {c: "pass" for c in sch.points}
    st["big-dropped"] = st["boundary"] = "fail"
    got, why = sch.earned(st, "udp-pass")
    assert got == 0 and "make 'big-dropped' pass first" in why


def test_course_notebook_has_one_graded_cell_per_scored_check(tmp_path):
    written = classroom.make_course(str(tmp_path / "course"), ["kmalloc-filter", "kmalloc-per-pid"])
    assert [os.path.relpath(p, tmp_path) for p in written] == [
        "course/source/kmalloc-filter/kmalloc-filter.ipynb", "course/source/kmalloc-per-pid/kmalloc-per-pid.ipynb"]
    for eid, path in zip(["kmalloc-filter", "kmalloc-per-pid"], written):
        nb = json.load(open(path))
        sch = scheme(get_exercise(eid))
        graded = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
        assert [c["metadata"]["nbgrader"]["grade_id"] for c in graded] == [f"check-{eid}-{c}" for c in sch.scored()]
        assert sum(c["metadata"]["nbgrader"]["points"] for c in graded) == sch.total
        assert all(c["metadata"]["nbgrader"]["locked"] for c in graded)
        assert f'check("{eid}", globals(), "{sch.scored()[0]}")' in graded[0]["source"]
    cfg = open(tmp_path / "course" / "nbgrader_config.py").read()
    assert "ClearSolutionsC" in cfg
    with pytest.raises(grading.LabParameterError, match="no exercise"):
        classroom.make_course(str(tmp_path / "other"), ["no-such"])
    assert not (tmp_path / "other" / "nbgrader_config.py").exists()
    # one assignment holding several exercises: one notebook each in source/<assignment>/
    one = classroom.make_course(str(tmp_path / "one"), ["kmalloc-filter", "tc-drop-big-icmp"], assignment="week1")
    assert [os.path.relpath(p, tmp_path) for p in one] == [
        "one/source/week1/kmalloc-filter.ipynb", "one/source/week1/tc-drop-big-icmp.ipynb"]
    for bad in ("", "../up", "a b"):
        with pytest.raises(grading.LabParameterError, match="assignment name"):
            classroom.make_course(str(tmp_path / "bad"), ["kmalloc-filter"], assignment=bad)
    assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------- on the kernel
def _ns(sub: Submission) -> dict:
    ns = {"PROGRAM": sub.bpf}
    return ns


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
def test_graded_cell_raises_with_the_hint_and_passes_when_right(no_bpf_leak):
    eid = "kmalloc-filter"
    ex = get_exercise(eid)
    ref = submission_from_notebook(os.path.join(SOL, f"{eid}.ipynb"), ex)
    rep = grading.check(eid, _ns(ref))
    assert rep is not None and rep.passed and rep.points[0] == rep.points[1]
    for c in scheme(ex).scored():
        assert grading.check(eid, _ns(ref), c) is None  # each graded cell passes (the grading is reused)
    blank = submission_from_notebook(os.path.join(EXE, f"{eid}.ipynb"), ex)
    with pytest.raises(classroom.ChecksFailed) as e:
        grading.check(eid, _ns(blank))
    assert "'fires'" in str(e.value) and "hint:" in str(e.value) and "0/" in str(e.value)
    assert e.value.report is classroom.last_report()
    with pytest.raises(classroom.ChecksFailed, match="'clean'.*make 'fires' pass first"):
        grading.check(eid, _ns(blank), "clean")  # passes for a program that does nothing: no points
    with pytest.raises(grading.LabParameterError, match="no check"):
        grading.check(eid, _ns(blank), "no-such-check")


# --------------------------------------------------------------- the real nbgrader
def _nbgrader(course, *args):
    r = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                       timeout=900, env=dict(os.environ, EBPF_LAB_PY_TIMEOUT="4",  # nbgrader runs `alembic` from PATH
                                              PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")))
    assert r.returncode == 0, f"nbgrader {' '.join(args)}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _with_program(nb: dict, program: str) -> dict:
    nb = json.loads(json.dumps(nb))
    for c in nb["cells"]:
        if "answer-bpf" in c["metadata"].get("tags", []):
            c["source"] = "PROGRAM = r\"\"\"" + program + "\"\"\"\n"
    return nb


def _answers_from(source: dict, released: dict) -> dict:
    """The released notebook with every answer cell (nbgrader ``solution``) as the teacher wrote it."""
    answers = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")}
    nb = json.loads(json.dumps(released))
    for c in nb["cells"]:
        gid = c["metadata"].get("nbgrader", {}).get("grade_id")
        if c["metadata"].get("nbgrader", {}).get("solution"):
            c["source"] = answers.pop(gid)
    assert not answers, f"answer cells missing from the released notebook: {sorted(answers)}"
    return nb


CLASS = "week1"  # one nbgrader assignment holding every exercise: one generate_assignment / autograde / feedback


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
@pytest.mark.netns
@pytest.mark.tc
@pytest.mark.xdp
@pytest.mark.notebook
@pytest.mark.slow
def test_real_nbgrader_scores_equal_ebpf_lab_grade(tmp_path, no_bpf_leak):
    """Every exercise through the real nbgrader and through ``ebpf-lab grade`` (= ``ebpf-lab check`` per notebook).

    alice hands in every reference solution (full marks everywhere), bob every notebook untouched (0
    everywhere); carol (a hard-coded threshold) and dave (``>`` for ``>=``) hand in kmalloc-filter only
    (nbgrader gives their missing notebooks 0; ``ebpf-lab grade`` does not list them). nbgrader's
    scores equal the lab's own points, learner by learner and cell by cell.
    """
    pytest.importorskip("nbgrader")
    ids = list(EXERCISES)
    course = tmp_path / "course"
    classroom.make_course(str(course), ids, assignment=CLASS)
    _nbgrader(course, "generate_assignment", CLASS, "--force")
    release, source = course / "release" / CLASS, course / "source" / CLASS
    answer = lambda nb: [("".join(c["source"])) for c in nb["cells"]  # noqa: E731
                         if {"answer-bpf", "answer-py"} & set(c["metadata"].get("tags", []))]
    class_: dict = {"alice": {}, "bob": {}}
    for eid in ids:
        released = json.load(open(release / f"{eid}.ipynb"))
        lab = json.load(open(os.path.join(EXE, f"{eid}.ipynb")))
        assert answer(released) == answer(lab), f"{eid}: nbgrader's release of the answers equals `ebpf-lab release`"
        assert "### BEGIN SOLUTION" not in json.dumps(released), eid
        class_["alice"][eid] = _answers_from(json.load(open(source / f"{eid}.ipynb")), released)
        class_["bob"][eid] = released

    eid = "kmalloc-filter"
    ex = get_exercise(eid)
    ref = submission_from_notebook(os.path.join(SOL, f"{eid}.ipynb"), ex)
    released = class_["bob"][eid]
    for who, w in (("carol", next(g for g in GAMED[eid] if g.name == "hard-coded-threshold")),
                   ("dave", next(w for w in WRONG[eid] if w.name == "more-than"))):
        text = ref.bpf
        for old, new in w.bpf:
            assert old in text
            text = text.replace(old, new, 1)
        class_[who] = {eid: _with_program(released, text)}
    for who, nbs in class_.items():
        d = course / "submitted" / who / CLASS
        d.mkdir(parents=True)
        for e, nb in nbs.items():
            (d / f"{e}.ipynb").write_text(json.dumps(nb))
    _nbgrader(course, "autograde", CLASS, "--force")
    _nbgrader(course, "generate_feedback", CLASS, "--force")
    for who, nbs in class_.items():
        for e in nbs:
            assert (course / "feedback" / who / CLASS / f"{e}.html").exists(), (who, e)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db") as gb:
        cells = {(who, e): {g.name: g.score for g in gb.find_submission_notebook(e, CLASS, who).grades}
                 for who in class_ for e in ids}
        nbg = {k: sum(v.values()) for k, v in cells.items()}
        total = {who: gb.find_submission(CLASS, who).score for who in class_}
    assert total["alice"] == sum(scheme(get_exercise(e)).total for e in ids)
    assert total["bob"] == 0
    for e in ids:  # one `ebpf-lab grade` per exercise over the whole class: the lab's side of the comparison
        sch = scheme(get_exercise(e))
        lab_df = grading.grade(str(course / "submitted"), e)
        assert sorted(lab_df.index) == sorted(w for w in class_ if e in class_[w]), e
        assert lab_df.loc["alice", "points"] == sch.total and lab_df.loc["alice", "percent"] == 100.0, \
            (e, lab_df.loc["alice", "first_problem"])
        assert lab_df.loc["bob", "points"] == 0, e
        long = lab_df.attrs["checks"]
        for who in class_:
            if who not in lab_df.index:
                assert nbg[who, e] == 0, (who, e, cells[who, e])
                continue
            assert nbg[who, e] == lab_df.loc[who, "points"], \
                f"{who}/{e}: nbgrader {nbg[who, e]}, ebpf-lab grade {lab_df.loc[who, 'points']}: {cells[who, e]}"
            mine = long[long["learner"] == who].set_index("check")
            for c in sch.scored():
                assert cells[who, e][f"check-{e}-{c}"] == mine.loc[c, "points"], (who, e, c)
    sch = scheme(ex)
    assert 0 < nbg["dave", eid] < sch.total, cells["dave", eid]
    assert nbg["carol", eid] < sch.total, cells["carol", eid]
    assert cells["dave", eid][f"check-{eid}-complete"] == 0


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.netns
@pytest.mark.tc
def test_a_literal_equal_to_the_drawn_limit_is_caught_at_a_second_value(monkeypatch, no_bpf_leak):
    """Even a learner who guessed this run's LIMIT exactly loses points: the program runs again, with every
    check, at a second LIMIT drawn in the same run (the reference passes both rounds)."""
    from ebpf_lab.exercises.net import limit_draw

    monkeypatch.setenv("EBPF_LAB_GRADE_SEED", "13")
    first = limit_draw()
    second = limit_draw(exclude=(400, first))
    eid = "tc-drop-big-icmp"
    ex = get_exercise(eid)
    ref = submission_from_notebook(os.path.join(SOL, f"{eid}.ipynb"), ex)
    rep = ex.run(ref)
    assert rep.points[0] == rep.points[1], rep.text()
    assert "traffic_at_second_limit" in rep.data and len(rep.data["traffic_at_second_limit"]) == len(rep.data["traffic"])
    assert "skb->len >= LIMIT" in ref.bpf
    rep = ex.run(Submission(ref.bpf.replace("skb->len >= LIMIT", f"skb->len >= {first}"), {}, "a literal"))
    res = {r.check: r for r in rep.results}
    failed = [r for r in rep.results if r.status == "fail"]
    assert failed and failed[0].check in ("small-pass", "big-dropped", "boundary"), rep.text()
    assert failed[0].message.startswith(f"at a second LIMIT={second}"), failed[0].message
    assert f"LIMIT was {first}, then {second}" in failed[0].hint and "never a number" in failed[0].hint
    assert res["compiles"].status == res["loads"].status == "pass"
    assert rep.points[0] < rep.points[1]
    assert res["clean"].status == "pass"


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.tracepoints
def test_the_second_drawn_value_is_compiled_in_the_compile_child_too(monkeypatch, no_bpf_leak):
    """kmalloc-filter's program at the second MIN_BYTES goes through ebpf_lab._trial like the first."""
    from ebpf_lab import _trial
    from ebpf_lab.exercises.kmalloc import MIN_CLASSES, draw

    monkeypatch.setenv("EBPF_LAB_GRADE_SEED", "13")
    first, second = draw(MIN_CLASSES)
    tried: list = []
    real = _trial.trial
    monkeypatch.setattr(_trial, "trial", lambda text, cflags, *a, **k: tried.append(list(cflags)) or real(text, cflags, *a, **k))
    eid = "kmalloc-filter"
    ex = get_exercise(eid)
    ref = submission_from_notebook(os.path.join(SOL, f"{eid}.ipynb"), ex)
    rep = ex.run(ref)
    assert rep.points[0] == rep.points[1], rep.text()
    assert [[f for f in c if f.startswith("-DMIN_BYTES=")] for c in tried] == [[f"-DMIN_BYTES={first}"],
                                                                               [f"-DMIN_BYTES={second}"]]
    # a program that compiles only at the first value: the second build fails in the child, at 'fires'
    tried.clear()
    only_first = f"#if MIN_BYTES != {first}\n#error this program was written for one value only\n#endif\n" + ref.bpf
    rep = ex.run(Submission(only_first, {}, "one value only"))
    res = {r.check: r for r in rep.results}
    assert len(tried) == 2, tried
    assert res["compiles"].status == res["loads"].status == "pass", rep.text()
    assert res["fires"].status == "fail" and f"-DMIN_BYTES={second}" in res["fires"].message, rep.text()
    assert "written for one value only" in res["fires"].message, res["fires"].message  # clang's own words
    assert rep.points[0] == 0 and res["clean"].status == "pass"
