"""The lessons, by their short stable ids."""
from __future__ import annotations

import importlib
from typing import Dict, List, Type

import pandas as pd

from .engine import Lesson
from .errors import LabParameterError

# id -> "module:Class" (imported on demand so one broken lesson cannot break the rest)
LESSONS: Dict[str, str] = {  # in the order of the notebooks
    "hello-kill": "ebpf_lab.lessons.hello_kill:HelloKillLesson",
    "kmalloc": "ebpf_lab.lessons.kmalloc:KmallocLesson",
    "args-return": "ebpf_lab.lessons.args_return:ArgsReturnLesson",
    "args-return-uprobes": "ebpf_lab.lessons.args_return:UprobeArgsReturnLesson",
    "tc-classifier": "ebpf_lab.lessons.tc_classifier:TcClassifierLesson",
    "xdp-vs-tc": "ebpf_lab.lessons.xdp_vs_tc:XdpVsTcLesson",
    "three-ways": "ebpf_lab.lessons.three_ways:ThreeWaysLesson",
}


def get_lesson(lesson_id: str) -> Type[Lesson]:
    """The lesson class for an id such as ``kmalloc``."""
    try:
        target = LESSONS[lesson_id]
    except KeyError:
        raise LabParameterError(f"no lesson {lesson_id!r}; lessons: {', '.join(LESSONS)}") from None
    mod, _, cls = target.partition(":")
    return getattr(importlib.import_module(mod), cls)


def lessons() -> pd.DataFrame:
    """A table of the lessons: id, title, notebook, program file, parameters."""
    rows: List[dict] = []
    for lid in LESSONS:
        c = get_lesson(lid)
        rows.append({"id": lid, "title": c.title, "notebook": f"notebooks/{c.notebook}", "program": f"ebpf_lab/programs/{c.program}",
                     "parameters": ", ".join(f"{n}={p.default}" for n, p in c.params.items())})
    return pd.DataFrame(rows)
