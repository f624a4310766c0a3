"""Classroom exercises: release learner notebooks, check one, grade a folder.

An exercise is a teacher notebook ``notebooks/solutions/<id>.py`` + ``.ipynb`` (a jupytext pair; nbgrader's
conventions: the answers sit between ``### BEGIN SOLUTION`` and ``### END
SOLUTION`` lines, answer cells are tagged ``answer-bpf`` / ``answer-py``, the
graded cell is tagged with a stable id and a docstring saying what it checks)
and hidden checks in ``ebpf_lab/exercises/`` that run the learner's BPF code on
the running kernel against the exercise's own workload::

    ebpf-lab exercises                                    # the list
    ebpf-lab release [--check]                            # solutions/ -> exercises/
    ebpf-lab check kmalloc-filter my.ipynb                # per-check pass/fail + hints; exit 0 iff all pass
    ebpf-lab grade submissions/ --exercise kmalloc-filter --csv marks.csv

In a notebook cell: ``from ebpf_lab.grading import check; check("kmalloc-filter", globals())``.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import glob
import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Mapping, Optional, Union

import pandas as pd

from .errors import LabError, LabParameterError
from .exercises import exercise_ids, get_exercise
from .exercises._base import (
    FAIL,
    GRADE_TIMEOUT,
    PASS,
    SKIP,
    CheckResult,
    Report,
    submission_from_notebook,
)

__all__ = ["check", "grade", "release", "release_notebook", "exercises", "Report"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
C_STUB = "// YOUR CODE HERE"
PY_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
MD_STUB = "YOUR ANSWER HERE"


def _repo_root() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("EBPF_LAB_ROOT", here)


def notebooks_dir(kind: str, root: Optional[str] = None) -> str:
    return os.path.join(root or _repo_root(), "notebooks", kind)


# ------------------------------------------------------------------ list
def exercises() -> pd.DataFrame:
    """A table of the exercises: id, lesson, level, title, checks, learner and teacher notebooks."""
    rows = []
    for eid in exercise_ids():
        ex = get_exercise(eid)
        rows.append({"id": eid, "lesson": ex.lesson, "level": ex.level, "title": ex.title,
                     "checks": len(ex.CHECKS), "hooks": "/".join(ex.hook_variants()),
                     "notebook": f"notebooks/exercises/{ex.notebook}", "solution": f"notebooks/solutions/{ex.notebook}"})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ check
def check(exercise_id: str, answer: Union[str, Mapping[str, Any], None] = None, only: Optional[str] = None, *,
          force_hook: Optional[str] = None) -> Optional[Report]:
    """Grade one answer: ``answer`` is a notebook path, or a notebook's ``globals()``.

    With a path: returns a :class:`Report` (``str()`` for text); never raises for the learner's
    faults: every failure is a check with a hint.
    With ``globals()`` (a graded notebook cell): shows the report, then raises
    :class:`ebpf_lab.classroom.ChecksFailed` with the first failure's hint unless every check passed
    (or, given ``only``, unless that check earned its points): nbgrader gives a cell its points only
    when it runs without error. See :func:`ebpf_lab.classroom.notebook_check`.
    """
    ex = get_exercise(exercise_id)
    if answer is None or isinstance(answer, Mapping):
        from .classroom import notebook_check

        return notebook_check(exercise_id, dict(answer or {}), only, force_hook=force_hook)
    else:
        sub = submission_from_notebook(os.fspath(answer), ex)
    return ex.run(sub, force_hook=force_hook)


# ------------------------------------------------------------------ grade
def learner_name(path: str) -> str:
    """The learner a submission belongs to: its folder (nbgrader: submitted/<learner>/...) or its file stem."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem


def report_to_dict(rep: Report) -> Dict[str, Any]:
    pts, out_of = rep.points
    return {"exercise": rep.exercise, "origin": rep.origin, "hook_path": rep.hook_path, "seconds": rep.seconds,
            "points": pts, "max_points": out_of, "results": [dataclasses.asdict(r) for r in rep.results]}


def report_from_dict(d: Dict[str, Any]) -> Report:
    return Report(d["exercise"], d["origin"], [CheckResult(**r) for r in d["results"]], d.get("hook_path", ""),
                  d.get("seconds", 0.0))


def check_isolated(exercise_id: str, path: str) -> Report:
    """:func:`check` in a child process: whatever one notebook does to the grader, the next is graded afresh."""
    ex = get_exercise(exercise_id)
    limit = GRADE_TIMEOUT + 60
    try:
        r = subprocess.run([sys.executable, "-m", "ebpf_lab", "check", "--json", exercise_id, path],
                           capture_output=True, text=True, timeout=limit)
        try:
            d = json.loads(r.stdout)
            if d.get("error") or not d.get("results"):
                raise ValueError(d.get("error") or "no results")
            return report_from_dict(d)
        except (ValueError, KeyError, TypeError, AttributeError):
            why = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
    except subprocess.TimeoutExpired:
        why = f"it did not finish within {limit:g} s"
    first, *rest = ex.CHECKS
    results = [CheckResult(first, ex.CHECKS[first], FAIL, f"the grader stopped on this notebook: {why}",
                           "grade it alone with `ebpf-lab check`; tell your teacher if it persists.")]
    results += [CheckResult(c, ex.CHECKS[c], SKIP, f"not checked: '{first}' has to pass first") for c in rest]
    return Report(exercise_id, path, results)


def grade(folder: str, exercise_id: str, *, csv: Optional[str] = None, progress: bool = False,
          isolate: bool = True, checks_csv: Optional[str] = None) -> pd.DataFrame:
    """Grade every notebook under ``folder``: a DataFrame learner x check ('pass'/'fail'/'skip'), plus score.

    Columns ``points``, ``max_points`` and ``percent`` are the marks (see
    :mod:`ebpf_lab.exercises._scoring`); ``df.attrs["checks"]`` is the long table, one row per
    learner and check (status, points earned and possible, message, hint), written to ``checks_csv``.

    Each notebook is graded in its own child process (``isolate``), so that one cannot disturb the next.

    Notebooks are found as ``folder/*.ipynb`` (learner = file stem) and
    ``folder/<learner>/**/*.ipynb`` (learner = sub-folder, nbgrader's layout).
    """
    ex = get_exercise(exercise_id)
    if not os.path.isdir(folder):
        raise LabParameterError(f"grading {folder}: no such folder")
    if csv:
        check_writable(csv, "--csv")
    if checks_csv:
        check_writable(checks_csv, "--checks-csv")
    found: Dict[str, str] = {}
    # a learner's folder may hold a whole assignment: another exercise's notebook is never this one's answer
    others = {get_exercise(e).notebook for e in exercise_ids()} - {ex.notebook}
    for path in sorted(glob.glob(os.path.join(folder, "*.ipynb"))):
        found[learner_name(path)] = path
    for sub in sorted(os.listdir(folder)):
        d = os.path.join(folder, sub)
        if os.path.isdir(d) and not sub.startswith("."):
            nbs = sorted(p for p in glob.glob(os.path.join(d, "**", "*.ipynb"), recursive=True)
                         if ".ipynb_checkpoints" not in p)
            pick = ([p for p in nbs if os.path.basename(p) == ex.notebook]
                    or [p for p in nbs if os.path.basename(p) not in others])
            if pick:
                found[sub] = pick[0]
    if not found:
        raise LabParameterError(f"grading {folder}: no notebooks (*.ipynb) found")
    from .classroom import check_rows, points_of

    rows: List[Dict[str, Any]] = []
    long_rows: List[Dict[str, Any]] = []
    for learner, path in found.items():
        rep = check_isolated(exercise_id, path) if isolate else check(exercise_id, path)
        assert rep is not None  # a notebook path always gives a Report
        if progress:
            ok, n = rep.score
            pts, out_of = rep.points
            print(f"{learner:<24} {ok}/{n} checks, {pts}/{out_of} points", file=sys.stderr)
        row: Dict[str, Any] = {"learner": learner}
        row.update({r.check: r.status for r in rep.results})
        ok, n = rep.score
        row["score"] = ok
        row["out_of"] = n
        row["passed"] = rep.passed
        row.update(points_of(rep))
        long_rows += [{"learner": learner, **r} for r in check_rows(rep)]
        row["first_problem"] = next((f"{r.check}: {r.message.splitlines()[0] if r.message else ''}"
                                     for r in rep.results if r.status == FAIL), "")
        row["notebook"] = path
        rows.append(row)
    df = pd.DataFrame(rows).set_index("learner")
    df.attrs["exercise"] = exercise_id
    df.attrs["checks"] = pd.DataFrame(long_rows)
    if csv:
        write_atomic(csv, df.to_csv())
    if checks_csv:
        write_atomic(checks_csv, df.attrs["checks"].to_csv(index=False))
    return df


def check_writable(path: str, what: str = "output") -> None:
    """Raise LabParameterError now (before any work) if ``path`` cannot be written."""
    from .output import check_out_path

    check_out_path(path, option=what, formats=None)


def write_atomic(path: str, text: str) -> str:
    """Write ``text`` to ``path`` through a temporary file and a rename; if that fails, the text is kept
    beside it and the LabError raised names where (:func:`ebpf_lab.output.write_text`)."""
    from .output import write_text

    return write_text(path, text)


# ------------------------------------------------------------------ release
def strip_solutions(lines: List[str], cell_type: str, where: str) -> List[str]:
    out: List[str] = []
    inside = False
    for ln in lines:
        body = ln.rstrip("\n")
        if BEGIN in body:
            if inside:
                raise LabError(f"releasing {where}: '{BEGIN}' inside another solution region")
            inside = True
            indent = body[: len(body) - len(body.lstrip())]
            stripped = body.strip()
            if cell_type == "markdown":
                out.append(MD_STUB + "\n")
            elif stripped.startswith(("//", "/*")):
                out.append(f"{indent}{C_STUB}\n")
            else:
                out.extend(f"{indent}{s}\n" for s in PY_STUB)
            continue
        if END in body:
            if not inside:
                raise LabError(f"releasing {where}: '{END}' without '{BEGIN}'")
            inside = False
            continue
        if not inside:
            out.append(ln if ln.endswith("\n") else ln + "\n")
    if inside:
        raise LabError(f"releasing {where}: '{BEGIN}' is never closed")
    if out and lines and not lines[-1].endswith("\n"):
        out[-1] = out[-1].rstrip("\n")
    return out


def release_notebook(nb: Dict[str, Any], where: str = "notebook") -> Dict[str, Any]:
    """The learner's version of a teacher notebook: solutions replaced by gaps, outputs cleared."""
    nb = copy.deepcopy(nb)
    cells = []
    for i, cell in enumerate(nb.get("cells", [])):
        tags = cell.get("metadata", {}).get("tags", [])
        if "teacher-only" in tags:
            continue
        src = cell.get("source", "")
        lines = src.splitlines(True) if isinstance(src, str) else list(src)
        cell["source"] = "".join(strip_solutions(lines, cell.get("cell_type", "code"), f"{where} cell {i}"))
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    nb["cells"] = cells
    nb.setdefault("metadata", {}).setdefault("ebpf_lab", {})["version"] = "learner"
    return nb


def release(*, root: Optional[str] = None, check_only: bool = False) -> List[str]:
    """Make everything a teacher does not write by hand: the learner notebooks and the lessons' exercise tables.

    - ``notebooks/exercises/<id>.py`` and ``.ipynb`` from the teacher's
      ``notebooks/solutions/<id>.py`` (its ``.ipynb`` gives the cell ids),
      solutions replaced by gaps (:func:`release_notebook`);
    - the table of exercises in each lesson notebook, from the exercise
      classes' ``lesson``, ``level`` and ``title`` (:func:`exercise_table`).

    Returns the files written; with ``check_only``, writes nothing and returns
    the files that differ from a fresh release (empty: everything is in step).
    """
    from . import nbpair

    top = root or _repo_root()
    src_dir, dst_dir = notebooks_dir("solutions", root), notebooks_dir("exercises", root)
    changed = []
    stems = {os.path.splitext(p)[0] for p in glob.glob(os.path.join(src_dir, "*.py")) + glob.glob(os.path.join(src_dir,
                                                                                                               "*.ipynb"))}
    for stem in sorted(stems):
        path = stem + ".py"
        nb = release_notebook(nbpair.read_pair(path), os.path.relpath(path, top))
        changed += nbpair.write_pair(nb, os.path.join(dst_dir, os.path.basename(path)), check_only=check_only)
    for name, rows in exercise_tables().items():
        path = os.path.join(top, "notebooks", name)
        nb = nbpair.read_pair(path)
        cells = [c for c in nb.cells if c.cell_type == "markdown" and _TABLE_HEAD in c.source]
        if not cells and not rows:
            continue  # a lesson with no exercises (yet) needs no table
        if len(cells) != 1:
            raise LabError(f"releasing {os.path.relpath(path, top)}: {len(cells)} markdown cells hold the exercise "
                           f"table (a line '{_TABLE_HEAD}'); there must be one, near the end")
        cells[0].source = _replace_table(cells[0].source, rows)
        changed += nbpair.write_pair(nb, path, check_only=check_only)
    return changed


# ------------------------------------------------------------------ exercise tables
_TABLE_HEAD = "| exercise | level | what to do |"


def exercise_tables() -> Dict[str, List[str]]:
    """Lesson notebook (``01_hello_kill.ipynb``) -> the rows of its exercise table, from the exercise registry.

    Every lesson notebook is listed, one without exercises with no rows; rows
    are ordered by level, then as the registry lists them.
    """
    from .catalog import LESSONS, get_lesson

    tables: Dict[str, List[Any]] = {get_lesson(lid).notebook: [] for lid in LESSONS}
    for n, eid in enumerate(exercise_ids()):
        ex = get_exercise(eid)
        try:
            name = get_lesson(ex.lesson).notebook
        except LabParameterError:
            raise LabError(f"exercise {eid}: its lesson {ex.lesson!r} is not a lesson") from None
        tables[name].append((ex.level, n, f"| [{eid}](exercises/{ex.notebook}) | {'★' * ex.level} | {ex.title} |"))
    return {name: [row for _, _, row in sorted(rows)] for name, rows in tables.items()}


def table_rows(markdown: str) -> List[str]:
    """The rows of the exercise table in a markdown cell (header and separator left out)."""
    lines = markdown.splitlines()
    at = lines.index(_TABLE_HEAD) + 2
    rows = []
    for ln in lines[at:]:
        if not ln.startswith("|"):
            break
        rows.append(ln)
    return rows


def _replace_table(markdown: str, rows: List[str]) -> str:
    lines = markdown.splitlines(True)
    at = [ln.rstrip("\n") for ln in lines].index(_TABLE_HEAD) + 2
    end = at
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    tail = "\n" if end < len(lines) or markdown.endswith("\n") else ""
    body = "\n".join(rows)
    return "".join(lines[:at]) + body + (tail if rows else "") + "".join(lines[end:])


# ------------------------------------------------------------------ command line
def _cfg_check(p: argparse.ArgumentParser) -> None:
    p.description = "grade one notebook: per-check pass/fail with a hint per failure; exit 0 only when all pass"
    p.add_argument("exercise", help="exercise id (see `ebpf-lab exercises`)")
    p.add_argument("notebook", help="the learner's .ipynb")
    p.add_argument("--hook", choices=["kprobe", "tracepoint"], default=None,
                   help="grade on this hook path (default: kprobes when the kernel has them)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (for machines)")


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        if not os.path.exists(args.notebook):
            raise LabParameterError(f"checking {args.notebook}: no such file")
        if os.path.isdir(args.notebook):
            raise LabParameterError(f"checking {args.notebook}: a folder, not a notebook (grade a folder with "
                                    "`ebpf-lab grade`)")
        rep = check(args.exercise, args.notebook, force_hook=args.hook)
        assert rep is not None  # a notebook path always gives a Report
    except LabError as e:
        if args.json:  # --json always prints JSON: the error, for machines; the line, for people
            print(json.dumps({"exercise": args.exercise, "origin": args.notebook, "error": str(e), "results": []}))
        raise
    print(json.dumps(report_to_dict(rep)) if args.json else rep.text())
    return 0 if rep.passed else 1


def _cfg_grade(p: argparse.ArgumentParser) -> None:
    p.description = "grade a folder of submitted notebooks: a table learner x check, and a CSV"
    p.add_argument("folder", help="folder of notebooks (FOLDER/*.ipynb or FOLDER/<learner>/...ipynb)")
    p.add_argument("--exercise", required=True, help="exercise id")
    p.add_argument("--csv", help="write the table (one row per learner: checks, points, percent) to this CSV file")
    p.add_argument("--checks-csv", help="write one row per learner and check (status, points, message, hint) here")


def _cmd_grade(args: argparse.Namespace) -> int:
    get_exercise(args.exercise)  # an unknown exercise, a bad folder or --csv path: said before any grading
    df = grade(args.folder, args.exercise, csv=args.csv, progress=True, checks_csv=args.checks_csv)
    checks = [c for c in get_exercise(args.exercise).CHECKS]
    short = df[checks + ["points", "max_points", "percent"]].replace({PASS: "ok", FAIL: "FAIL", SKIP: "-"})
    import pandas as _pd

    with _pd.option_context("display.width", 200, "display.max_columns", 40):
        print(short.to_string())
    print(f"{int(df['passed'].sum())}/{len(df)} learners passed every check")
    for out in (args.csv, args.checks_csv):
        if out:
            print(f"wrote {out}")
    return 0


def _cfg_release(p: argparse.ArgumentParser) -> None:
    p.description = ("make notebooks/exercises/ (learner versions, .py and .ipynb) from notebooks/solutions/ "
                     "(teacher versions), and the exercise table of each lesson notebook from the exercise list")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")


def _cmd_release(args: argparse.Namespace) -> int:
    changed = release(check_only=args.check)
    for c in changed:
        print(("out of date: " if args.check else "wrote ") + os.path.relpath(c, _repo_root()))
    if not changed:
        print("release: every learner notebook matches its teacher notebook; every exercise table is complete")
    return 1 if (args.check and changed) else 0


def _cfg_list(p: argparse.ArgumentParser) -> None:
    p.description = "list the exercises"


def _cmd_list(args: argparse.Namespace) -> int:
    df = exercises()
    for r in df.itertuples():
        print(f"{r.id:<22} lesson {r.lesson:<12} level {r.level}  {r.title}  [{r.hooks}, {r.checks} checks]")
    return 0


def _register() -> None:
    try:
        from .cli import EXTRA_COMMANDS
    except ImportError:  # pragma: no cover
        return
    EXTRA_COMMANDS.setdefault("exercises", (_cfg_list, _cmd_list))
    EXTRA_COMMANDS.setdefault("release", (_cfg_release, _cmd_release))
    EXTRA_COMMANDS.setdefault("check", (_cfg_check, _cmd_check))
    EXTRA_COMMANDS.setdefault("grade", (_cfg_grade, _cmd_grade))


_register()
