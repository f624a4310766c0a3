"""Points for checks: what a score means.

A check earns points only if passing it shows that the learner did something.

- **Gates** ("compiles", "loads") carry no points: the skeleton handed out
  already passes them, and when one fails nothing after it can be checked anyway.
- **Keeps-working checks** are the ones an untouched skeleton also passes
  ("clean", "small pings get through", "UDP gets through", "no stale entry",
  "the map has the declared shape", ...): a program that does nothing passes
  them. They earn their points only once a **core** check of the same part
  (BPF or Python) has passed, i.e. once the program does its job; until then they
  earn nothing (and the nbgrader cell of such a check fails, saying why).
- Every other check is core. BPF core checks are worth :data:`BPF_POINTS`,
  Python (pandas) checks :data:`PY_POINTS`: the grade is weighted on the BPF part.

So an untouched learner notebook scores 0, a reference solution scores the
maximum, and a wrong answer loses the points of the checks it fails (a program
that drops every UDP datagram loses "udp-pass"; one that pins a map loses "clean").
An exercise may override the split with class attributes ``GATES``,
``KEEPS_WORKING`` and ``POINTS`` (check -> points).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Sequence, Tuple

GATES: Tuple[str, ...] = ("compiles", "loads")
BPF_POINTS, PY_POINTS, KEEP_POINTS = 2, 1, 1

#: checks that an untouched skeleton passes, beyond the gates (tests/test_scoring.py proves the list
#: complete: every released notebook scores 0)
KEEPS_WORKING: Dict[str, Tuple[str, ...]] = {
    "kmalloc-filter": ("clean",),
    "kmalloc-per-pid": ("map", "clean"),
    "kill-to-pid": ("clean",),
    "kill-signal-counts": ("map", "clean"),
    "openat-failures": ("no-leak", "clean"),
    "openat-latency": ("no-leak", "clean"),
    "tc-count-protocols": ("passes-all", "clean"),
    "tc-drop-big-icmp": ("small-pass", "udp-pass", "tcp-pass", "clean"),
    "xdp-drop-big-icmp": ("small-pass", "udp-pass", "tcp-pass", "clean"),
    "xdp-then-tc": ("small-pass", "udp-pass", "tcp-pass", "clean"),
}


def is_python(check: str) -> bool:
    return check.startswith("py-")


@dataclasses.dataclass(frozen=True)
class Scheme:
    """How one exercise's checks are scored."""

    exercise: str
    points: Dict[str, int]            # check -> points it can earn (0 for gates)
    gates: Tuple[str, ...]
    keeps_working: Tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.points.values())

    def scored(self) -> List[str]:
        """The checks that carry points, in report order."""
        return [c for c, p in self.points.items() if p > 0]

    def core(self, check: str) -> List[str]:
        """The core checks of the same part as ``check`` (one of them must pass for ``check`` to earn)."""
        py = is_python(check)
        return [c for c in self.points if c not in self.gates and c not in self.keeps_working and is_python(c) == py]

    def earned(self, statuses: Dict[str, str], check: str) -> Tuple[int, str]:
        """Points ``check`` earns given every check's status, and why not when it earns none."""
        pts = self.points.get(check, 0)
        if pts == 0:
            return 0, "a gate: it carries no points"
        if statuses.get(check) != "pass":
            return 0, f"'{check}' did not pass"
        if check in self.keeps_working:
            core = self.core(check)
            if core and not any(statuses.get(c) == "pass" for c in core):
                return 0, (f"'{check}' passes for a program that does nothing, so it counts only once your "
                           f"program does its job: make '{core[0]}' pass first")
        return pts, ""

    def score(self, statuses: Dict[str, str]) -> Tuple[int, int]:
        return sum(self.earned(statuses, c)[0] for c in self.points), self.total


def scheme(ex: Any) -> Scheme:
    """The scoring of exercise ``ex`` (an :class:`Exercise` instance or class)."""
    checks: Sequence[str] = list(ex.CHECKS)
    gates = tuple(getattr(ex, "GATES", None) or GATES)
    keep = tuple(getattr(ex, "KEEPS_WORKING", None) or KEEPS_WORKING.get(ex.id, ("clean",)))
    custom: Dict[str, int] = dict(getattr(ex, "POINTS", None) or {})
    points: Dict[str, int] = {}
    for c in checks:
        if c in custom:
            points[c] = int(custom[c])
        elif c in gates:
            points[c] = 0
        elif c in keep:
            points[c] = KEEP_POINTS
        else:
            points[c] = PY_POINTS if is_python(c) else BPF_POINTS
    return Scheme(ex.id, points, gates, tuple(c for c in keep if c in points))


def report_points(rep: Any) -> Tuple[int, int]:
    """(points earned, points possible) of a :class:`Report`."""
    from . import get_exercise

    sch = scheme(get_exercise(rep.exercise))
    return sch.score({r.check: r.status for r in rep.results})


def check_rows(rep: Any) -> List[Dict[str, Any]]:
    """One row per check of a report: status, points earned and possible, message, hint."""
    from . import get_exercise

    sch = scheme(get_exercise(rep.exercise))
    st = {r.check: r.status for r in rep.results}
    rows = []
    for r in rep.results:
        got, why = sch.earned(st, r.check)
        rows.append({"check": r.check, "status": r.status, "points": got, "max_points": sch.points.get(r.check, 0),
                     "gate": r.check in sch.gates, "why_no_points": why if sch.points.get(r.check, 0) and not got else "",
                     "message": r.message, "hint": r.hint})
    return rows
