"""Auto-graded exercises, by stable id. Each lives in a module of this package.

The teacher's notebook of an exercise is ``notebooks/solutions/<id>.ipynb``;
``ebpf-lab release`` makes the learner's ``notebooks/exercises/<id>.ipynb`` from it.
"""
from __future__ import annotations

import importlib
from typing import Dict, List

from ..errors import LabParameterError
from ._base import Exercise

# id -> "module:Class", imported on demand so that one broken exercise cannot break the rest
EXERCISES: Dict[str, str] = {
    "kmalloc-filter": "ebpf_lab.exercises.kmalloc:KmallocFilter",
    "kmalloc-per-pid": "ebpf_lab.exercises.kmalloc:KmallocPerPid",
    "kill-to-pid": "ebpf_lab.exercises.kill:KillToPid",
    "kill-signal-counts": "ebpf_lab.exercises.kill:KillSignalCounts",
    "openat-failures": "ebpf_lab.exercises.openat:OpenatFailures",
    "openat-latency": "ebpf_lab.exercises.openat:OpenatLatency",
    "tc-count-protocols": "ebpf_lab.exercises.net:TcCountProtocols",
    "tc-drop-big-icmp": "ebpf_lab.exercises.net:TcDropBigIcmp",
    "xdp-drop-big-icmp": "ebpf_lab.exercises.net:XdpDropBigIcmp",
    "xdp-then-tc": "ebpf_lab.exercises.net:XdpThenTc",
    "choose-the-hook": "ebpf_lab.exercises.choose_hook:ChooseHook",
    "fix-the-verifier": "ebpf_lab.exercises.verifier:FixTheVerifier",
    "write-the-loader": "ebpf_lab.exercises.loader:WriteTheLoader",
}


def get_exercise(exercise_id: str) -> Exercise:
    try:
        target = EXERCISES[exercise_id]
    except KeyError:
        raise LabParameterError(f"no exercise {exercise_id!r}; exercises: {', '.join(EXERCISES)}") from None
    mod, _, cls = target.partition(":")
    return getattr(importlib.import_module(mod), cls)()


def exercise_ids() -> List[str]:
    return list(EXERCISES)
