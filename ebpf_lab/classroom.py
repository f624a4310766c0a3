"""Marks for a class: points per check, graded notebook cells that fail, and an nbgrader course.

- :func:`notebook_check` is what ``check("<id>", globals())`` does in a notebook: it shows the
  report, then **raises** :class:`ChecksFailed` (with the first failure's hint) unless every check
  passed. ``check("<id>", globals(), "<check>")`` raises unless that one check earned its points
  (see :mod:`ebpf_lab.exercises._scoring`): one such cell per scored check gives nbgrader partial
  credit that follows the checks. The grading runs once per answer; the other cells reuse it.
- :func:`points_of` / :func:`check_rows` turn a report into points, for ``ebpf-lab grade``.
- :func:`make_course` writes an nbgrader course directory (``nbgrader_config.py`` and
  ``source/<id>/<id>.ipynb`` with one graded cell per scored check) from the teacher notebooks::

      ebpf-lab course ./course kmalloc-filter tc-drop-big-icmp
      cd course && nbgrader generate_assignment kmalloc-filter && nbgrader autograde kmalloc-filter
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import textwrap
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import LabParameterError
from .exercises import exercise_ids, get_exercise
from .exercises._base import FAIL, Report, submission_from_namespace
from .exercises._scoring import check_rows, report_points, scheme

__all__ = ["ChecksFailed", "notebook_check", "last_report", "points_of", "check_rows", "make_course"]


class ChecksFailed(AssertionError):
    """A graded cell's checks failed: the message says which, and what to try. ``.report`` has the details."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


_CACHE: Dict[Tuple[str, str, str], Report] = {}
_LAST: List[Report] = []


def last_report() -> Optional[Report]:
    """The report of the last check in this notebook (``last_report().data`` holds what your code produced)."""
    return _LAST[-1] if _LAST else None


def _key(exercise_id: str, sub: Any, force_hook: Optional[str]) -> Tuple[str, str, str]:
    h = hashlib.sha256(json.dumps([sub.bpf, sorted(sub.python.items()), sub.problems]).encode("utf-8", "replace"))
    return exercise_id, force_hook or "", h.hexdigest()


def _show(rep: Report) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(rep)
            return
    except ImportError:  # pragma: no cover - IPython is a dependency of the lab
        pass
    print(rep.text())


def points_of(rep: Report) -> Dict[str, Any]:
    """``{"points", "max_points", "percent"}`` of a report."""
    got, out_of = report_points(rep)
    return {"points": got, "max_points": out_of, "percent": round(100.0 * got / out_of, 1) if out_of else 0.0}


def notebook_check(exercise_id: str, ns: Mapping[str, Any], only: Optional[str] = None, *,
                   force_hook: Optional[str] = None) -> Optional[Report]:
    """Grade the answer in a notebook's namespace; raise :class:`ChecksFailed` when it falls short.

    Without ``only``: shows the report, returns it when every check passed, raises otherwise.
    With ``only`` (a check id): raises unless that check earned its points; returns None.
    """
    ex = get_exercise(exercise_id)
    sch = scheme(ex)
    if only is not None and only not in ex.CHECKS:
        raise LabParameterError(f"exercise {exercise_id} has no check {only!r}; checks: {', '.join(ex.CHECKS)}")
    sub = submission_from_namespace(dict(ns), ex)
    key = _key(exercise_id, sub, force_hook)
    rep = _CACHE.get(key)
    if rep is None:
        rep = ex.run(sub, force_hook=force_hook)
        _CACHE.clear()  # one answer at a time: the last one graded
        _CACHE[key] = rep
        _show(rep)
    _LAST[:] = [rep]
    if only is None:
        if rep.passed:
            return rep
        failed = [r for r in rep.results if r.status == FAIL]
        first = failed[0] if failed else next(r for r in rep.results if not r.passed)
        p = points_of(rep)
        raise ChecksFailed(f"{exercise_id}: {len([r for r in rep.results if not r.passed])} of {len(rep.results)} "
                           f"checks did not pass ({p['points']}/{p['max_points']} points). First: '{first.check}': "
                           f"{first.message.splitlines()[0] if first.message else first.status}"
                           + (f" — hint: {first.hint}" if first.hint else "")
                           + " (the whole report: ebpf_lab.classroom.last_report())", rep)
    st = {r.check: r.status for r in rep.results}
    got, why = sch.earned(st, only)
    if got:
        return None
    r = next(x for x in rep.results if x.check == only)
    text = f"{exercise_id}: check '{only}' ({r.title}) earns no points: "
    if r.status != "pass":
        text += (r.message.splitlines()[0] if r.message else r.status) + (f" — hint: {r.hint}" if r.hint else "")
    else:
        text += why
    raise ChecksFailed(text, rep)


# ------------------------------------------------------------------ nbgrader course
def _solutions_dir(root: Optional[str]) -> str:
    from .grading import notebooks_dir

    return notebooks_dir("solutions", root)


def check_cell(exercise_id: str, check: str, title: str, points: int) -> Dict[str, Any]:
    """An nbgrader graded cell worth ``points`` that passes only when ``check`` earned them."""
    gid = f"check-{exercise_id}-{check}"
    src = (f'"""{points} point{"s" if points != 1 else ""}: {title}."""\n'
           f'check("{exercise_id}", globals(), "{check}")')
    return {"cell_type": "code", "execution_count": None, "outputs": [], "source": src,
            "metadata": {"tags": [gid], "nbgrader": {"grade": True, "grade_id": gid, "locked": True,
                                                      "points": points, "schema_version": 3, "solution": False,
                                                      "task": False}}}


def course_notebook(exercise_id: str, root: Optional[str] = None) -> Dict[str, Any]:
    """The nbgrader source notebook of an exercise: the teacher notebook with one graded cell per scored check."""
    ex = get_exercise(exercise_id)
    sch = scheme(ex)
    path = os.path.join(_solutions_dir(root), ex.notebook)
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    nb = copy.deepcopy(nb)
    cells = []
    replaced = False
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "teacher-only" in tags:
            continue
        if f"check-{exercise_id}" in tags:
            for c in sch.scored():
                cells.append(check_cell(exercise_id, c, ex.CHECKS[c], sch.points[c]))
            replaced = True
            continue
        cells.append(cell)
    if not replaced:
        raise LabParameterError(f"{path}: no cell tagged check-{exercise_id} to turn into graded cells")
    nb["cells"] = cells
    return nb


NBGRADER_CONFIG = '''\
# nbgrader configuration of an ebpf-lab class (written by `ebpf-lab course`).
# Grading loads every learner's BPF program into the running kernel: run autograde as root, in the lab VM.
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "ebpf-lab"
c.CourseDirectory.root = {root!r}
# C answers sit in Python strings: their solution regions become `// YOUR CODE HERE`, as `ebpf-lab release` does
from nbgrader.converters import GenerateAssignment  # noqa: E402
from ebpf_lab._nbgrader import ClearSolutionsC  # noqa: E402
from nbgrader.preprocessors import ClearSolutions  # noqa: E402
c.GenerateAssignment.preprocessors = [ClearSolutionsC if p is ClearSolutions else p
                                      for p in GenerateAssignment.class_traits()["preprocessors"].default()]
c.Execute.timeout = {timeout}
c.Execute.allow_errors = True
'''


def make_course(dest: str, exercises: Sequence[str] = (), *, root: Optional[str] = None,
                assignment: Optional[str] = None) -> List[str]:
    """Write an nbgrader course directory at ``dest`` for ``exercises`` (default: all); returns the notebooks written.

    Each exercise is an assignment of its own (``source/<id>/<id>.ipynb``), or, with ``assignment``, a
    notebook of that one assignment (``source/<assignment>/<id>.ipynb``: one ``nbgrader autograde``
    grades them all).
    """
    from .exercises._base import GRADE_TIMEOUT

    ids = list(exercises) or exercise_ids()
    for e in ids:
        get_exercise(e)  # unknown ids: one clear error before anything is written
    if assignment is not None and (not assignment or assignment.startswith(".")
                                   or not all(ch.isalnum() or ch in "-_." for ch in assignment)):
        raise LabParameterError(f"assignment name {assignment!r}: use letters, digits, '-', '_' and '.'")
    os.makedirs(dest, exist_ok=True)
    dest = os.path.abspath(dest)
    with open(os.path.join(dest, "nbgrader_config.py"), "w", encoding="utf-8") as f:
        f.write(NBGRADER_CONFIG.format(root=dest, timeout=int(GRADE_TIMEOUT + 60)))
    written = []
    for e in ids:
        d = os.path.join(dest, "source", assignment or e)
        os.makedirs(d, exist_ok=True)
        out = os.path.join(d, get_exercise(e).notebook)
        with open(out, "w", encoding="utf-8") as f:
            f.write(json.dumps(course_notebook(e, root), indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        written.append(out)
    return written


# ------------------------------------------------------------------ command line
def _cfg_course(p: Any) -> None:
    p.description = ("write an nbgrader course directory (nbgrader_config.py, source/<id>/<id>.ipynb with one "
                     "graded cell per scored check) from the teacher notebooks")
    p.add_argument("dest", help="the course directory to write")
    p.add_argument("exercise", nargs="*", help="exercise ids (default: all)")
    p.add_argument("--assignment", metavar="NAME",
                   help="put every exercise in one nbgrader assignment NAME (default: one assignment per exercise)")


def _cmd_course(args: Any) -> int:
    for path in make_course(args.dest, args.exercise, assignment=args.assignment):
        print(f"wrote {path}")
    a = args.assignment or "<id>"
    print(textwrap.dedent(f"""\
        next, in {args.dest} (as root: autograding loads BPF programs):
          nbgrader generate_assignment {a:<18}# release/{a}/: the learner's version
          nbgrader collect / zip_collect {a:<13}# or copy into submitted/<learner>/{a}/
          nbgrader autograde {a:<26}# runs every graded cell: points per check
          nbgrader generate_feedback {a:<18}# feedback/<learner>/{a}/*.html"""))
    return 0


def _register() -> None:
    try:
        from .cli import EXTRA_COMMANDS
    except ImportError:  # pragma: no cover
        return
    EXTRA_COMMANDS.setdefault("course", (_cfg_course, _cmd_course))


_register()
