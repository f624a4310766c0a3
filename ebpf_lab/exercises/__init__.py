"""Auto-graded exercises, by stable id. Each lives in a module of this package.

An exercise is a class with a literal ``id = "..."`` in a module here (see
:mod:`ebpf_lab.catalog`): adding one is adding its class, nothing else.

The teacher's notebook of an exercise is ``notebooks/solutions/<id>.ipynb``;
``ebpf-lab release`` makes the learner's ``notebooks/exercises/<id>.ipynb`` from it.
"""
from __future__ import annotations

import importlib
from typing import Dict, List

from ..errors import LabParameterError
from ._base import Exercise


def _discovered() -> Dict[str, str]:
    """id -> "module:Class" of every exercise class in this package, in the order of their lessons."""
    from ..catalog import LESSONS, exercise_lesson, discover

    found = discover("exercises")
    rank = {lid: i for i, lid in enumerate(LESSONS)}
    order = sorted(range(len(found)), key=lambda i: (rank.get(exercise_lesson(found[i]) or "", len(rank)), i))
    return {found[i].id: found[i].target for i in order}


# id -> "module:Class" (discovered from the modules; do not edit), imported on demand
EXERCISES: Dict[str, str] = _discovered()


def get_exercise(exercise_id: str) -> Exercise:
    try:
        target = EXERCISES[exercise_id]
    except KeyError:
        raise LabParameterError(f"no exercise {exercise_id!r}; exercises: {', '.join(EXERCISES)}") from None
    mod, _, cls = target.partition(":")
    return getattr(importlib.import_module(mod), cls)()


def exercise_ids() -> List[str]:
    return list(EXERCISES)
