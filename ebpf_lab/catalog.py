"""The lessons and exercises, discovered from their modules: no list to keep by hand.

A lesson is a class with a literal ``id = "..."`` in a module of
``ebpf_lab/lessons/`` (modules starting with ``_`` are shared plumbing); an
exercise is such a class in a module of ``ebpf_lab/exercises/``. Both are
found by reading the modules' source (a class's literal ``id = "..."`` line),
so listing them imports nothing, and one broken module cannot break the rest: a class is imported
only when it is asked for.

Lessons come in the order of their notebooks (``01_hello_kill.ipynb``, ...),
then of their place in the module. Everything that lists lessons (the CLI,
the VM tier's test selection, the README's table, checked by a test) is
generated from, or checked against, :func:`discover`.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Type

from .errors import LabParameterError

__all__ = ["discover", "LESSONS", "get_lesson", "lesson_classes", "lessons", "lesson_files", "lesson_test_files", "Found"]

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


@dataclasses.dataclass(frozen=True)
class Found:
    """A lesson or exercise class, as its module's source declares it."""

    id: str
    module: str   # e.g. ebpf_lab.lessons.hello_kill
    cls: str      # e.g. HelloKillLesson
    stem: str     # the module's file name without .py: the lesson's stem
    attrs: Dict[str, str]  # its other literal string attributes (notebook, program, title, lesson, ...)

    @property
    def target(self) -> str:
        return f"{self.module}:{self.cls}"


_CLASS = re.compile(r"^class (\w+)\b.*:[ \t]*(?:#.*)?$")
_ATTR = re.compile(r"^    (\w+)(?:\s*:[^=]+)?\s*=\s*\"([^\"\\]*)\"[ \t]*(?:#.*)?$")


def _classes(text: str) -> List[tuple]:
    """(name, {attribute: literal string}) of each top-level class, read line by line (no import, no parse)."""
    out: List[tuple] = []
    current: Optional[tuple] = None
    for line in text.splitlines():
        m = _CLASS.match(line)
        if m:
            current = (m.group(1), {})
            out.append(current)
        elif line[:1] not in ("", " ", "\t", ")", "#"):
            current = None  # back at module level
        elif current is not None:
            a = _ATTR.match(line)
            if a and a.group(1) not in current[1]:
                current[1][a.group(1)] = a.group(2)
    return out


def discover(package: str = "lessons", *, root: Optional[str] = None) -> List[Found]:
    """Every class with a literal ``id`` in ``ebpf_lab/<package>/*.py`` (not ``_*.py``), in teaching order."""
    found: List[Found] = []
    folder = (Path(root) / "ebpf_lab" if root else PACKAGE) / package
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        for name, attrs in _classes(path.read_text(encoding="utf-8")):
            lid = attrs.pop("id", "")
            if lid and not name.startswith("_"):
                found.append(Found(lid, f"ebpf_lab.{package}.{path.stem}", name, path.stem, attrs))
    if package == "lessons":
        found = [f for _, f in sorted(enumerate(found), key=lambda p: (p[1].attrs.get("notebook", "~"), p[0]))]
    ids = [f.id for f in found]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise LabParameterError(f"two classes in ebpf_lab/{package}/ declare the same id: {', '.join(dupes)}")
    return found


def _lessons_map() -> Dict[str, str]:
    return {f.id: f.target for f in discover("lessons")}


#: id -> "module:Class", in the order of the notebooks (discovered; do not edit)
LESSONS: Dict[str, str] = _lessons_map()


def get_lesson(lesson_id: str) -> Type[Any]:
    """The lesson class for an id such as ``kmalloc``."""
    try:
        target = LESSONS[lesson_id]
    except KeyError:
        raise LabParameterError(f"no lesson {lesson_id!r}; lessons: {', '.join(LESSONS)}") from None
    mod, _, cls = target.partition(":")
    return getattr(importlib.import_module(mod), cls)


def lesson_classes() -> List[Type[Any]]:
    """Every lesson class, in order (imports each lesson module)."""
    return [get_lesson(lid) for lid in LESSONS]


def lessons() -> Any:
    """A table of the lessons: id, title, notebook, program file, parameters."""
    import pandas as pd

    rows: List[dict] = []
    for lid in LESSONS:
        c = get_lesson(lid)
        rows.append({"id": lid, "title": c.title, "notebook": f"notebooks/{c.notebook}",
                     "program": f"ebpf_lab/programs/{c.program}",
                     "parameters": ", ".join(f"{n}={p.default}" for n, p in c.params.items())})
    return pd.DataFrame(rows)


def exercise_lesson(f: Found) -> Optional[str]:
    """The lesson an exercise belongs to (its ``lesson`` attribute, possibly inherited)."""
    if "lesson" in f.attrs:
        return f.attrs["lesson"]
    if not f.module.startswith("ebpf_lab.") or f.id not in _installed_exercises():
        return None
    cls = getattr(importlib.import_module(f.module), f.cls)
    return getattr(cls, "lesson", None)


def _installed_exercises() -> List[str]:
    return [e.id for e in discover("exercises")]


def lesson_files(root: Optional[str] = None) -> Any:
    """Every place each lesson lives, matched by its stem: one row per (lesson, kind, path).

    kinds: module, notebook, program, workload, exercise, solution, test. The
    stem is the lesson module's name (``hello_kill``): its notebook is
    ``notebooks/NN_<stem>.*``, its programs ``ebpf_lab/programs/<stem>*.bpf.c``,
    its tests ``tests/test_<stem>*.py``; workloads are the programs its module
    runs (``binary("...")``); exercises are those whose ``lesson`` is its id.
    """
    import pandas as pd

    base = Path(root) if root else ROOT
    ex = discover("exercises", root=root)
    rows: List[dict] = []
    for f in discover("lessons", root=root):
        def add(kind: str, path: Path, f: Found = f) -> None:
            rows.append({"lesson": f.id, "stem": f.stem, "kind": kind, "path": str(path.relative_to(base))})

        module = base / "ebpf_lab" / "lessons" / f"{f.stem}.py"
        add("module", module)
        declared = [base / "notebooks" / f.attrs["notebook"]] if f.attrs.get("notebook") else []
        for nb in sorted(set(declared) | set((base / "notebooks").glob(f"[0-9][0-9]_{f.stem}.*"))):
            add("notebook", nb)
        for prog in sorted((base / "ebpf_lab" / "programs").glob(f"{f.stem}*.bpf.c")):
            add("program", prog)
        for name in sorted(set(re.findall(r'binary\("(\w+)"\)', module.read_text(encoding="utf-8")))):
            add("workload", base / "ebpf_lab" / "workloads" / f"{name}.c")
        for e in ex:
            if exercise_lesson(e) == f.id:
                add("exercise", base / "ebpf_lab" / "exercises" / f"{e.stem}.py")
                for folder, kind in (("solutions", "solution"), ("exercises", "exercise notebook")):
                    for nb in sorted((base / "notebooks" / folder).glob(f"{e.id}.*")):
                        add(kind, nb)
        for t in sorted((base / "tests").glob(f"test_{f.stem}*.py")):
            add("test", t)
    df = pd.DataFrame(rows, columns=["lesson", "stem", "kind", "path"]).drop_duplicates(ignore_index=True)
    df.attrs["root"] = os.fspath(base)
    return df


def lesson_test_files(root: Optional[str] = None) -> List[str]:
    """The test files of every lesson (``tests/test_<stem>*.py``) and of the lessons' shared modules
    (``tests/test_<name>_lessons.py`` for ``ebpf_lab/lessons/_<name>.py``), relative to the checkout."""
    base = Path(root) if root else ROOT
    files = [p for p in lesson_files(root).query("kind == 'test'")["path"]]
    for shared in sorted((base / "ebpf_lab" / "lessons").glob("_*.py")):
        t = base / "tests" / f"test{shared.stem}_lessons.py"
        if t.exists():
            files.append(str(t.relative_to(base)))
    return list(dict.fromkeys(files))
