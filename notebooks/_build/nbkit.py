"""What the notebook builders share: cell makers, the notebook frame, writing, exercise links.

Each ``lessons_*.py`` beside this file holds the cells of its notebooks;
run it to rewrite them (without outputs).
"""
from __future__ import annotations

import os
from typing import Iterable, List, Sequence, Tuple

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # notebooks/

# exercise id -> (lesson notebook, level, what it asks); notebooks/exercises/<id>.ipynb
EXERCISES: Sequence[Tuple[str, str, str, str]] = (
    ("kill-to-pid", "01_hello_kill.ipynb", "★", "report only the signals sent to one given pid"),
    ("kill-signal-counts", "01_hello_kill.ipynb", "★★", "who signals whom, counted in the kernel (a BPF hash map)"),
    ("kmalloc-filter", "02_kmalloc.ipynb", "★", "only one process, only big allocations: filter in the kernel"),
    ("kmalloc-per-pid", "02_kmalloc.ipynb", "★★", "count kmalloc bytes per process in a map instead of streaming"),
    ("openat-failures", "03_args_return.ipynb", "★★", "which opens fail, and why"),
    ("openat-latency", "03_args_return.ipynb", "★★★", "a latency histogram from an entry and a return hook"),
    ("tc-count-protocols", "04_tc_classifier.ipynb", "★", "count packets per protocol instead of dropping them"),
    ("tc-drop-big-icmp", "04_tc_classifier.ipynb", "★★", "drop only ICMP above the limit"),
    ("xdp-drop-big-icmp", "05_xdp_tc_iptables.ipynb", "★★", "move the size rule from TC to XDP"),
    ("xdp-then-tc", "05_xdp_tc_iptables.ipynb", "★★★", "XDP runs first: drop at XDP, count at TC"),
)


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(tag: str, text: str):
    return new_code_cell(text.strip("\n"), metadata={"tags": [tag]})


def exercises_cell(notebook_name: str):
    """A closing cell pointing at this lesson's exercises."""
    rows = [f"| [{eid}](exercises/{eid}.ipynb) | {level} | {what} |"
            for eid, nb, level, what in EXERCISES if nb == notebook_name]
    return md("## Exercises\n\n| exercise | level | what to do |\n|---|---|---|\n" + "\n".join(rows) + "\n\n"
              "Open one, fill in the marked gaps, and check it from a cell (`check(...)`, at its end) or from a shell:\n"
              "`sudo .venv/bin/ebpf-lab check EXERCISE notebooks/exercises/EXERCISE.ipynb`.")


def notebook(cells: List) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ebpf-lab)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(nb.cells):  # stable ids: diffs stay small
        c["id"] = f"{c.metadata.get('tags', ['md'])[0]}-{i:02d}"
    return nb


def write_all(books: Iterable[Tuple[str, List]]) -> int:
    """Write each (file name, cells) into notebooks/, a lesson's exercises appended when it has some."""
    for name, cells in books:
        if any(nb == name for _, nb, _, _ in EXERCISES):
            cells = list(cells) + [exercises_cell(name)]
        nb = notebook(cells)
        nbformat.validate(nb)
        path = os.path.join(OUT, name)
        with open(path, "w") as f:
            nbformat.write(nb, f)
        print(f"wrote {path}: {len(nb.cells)} cells")
    return 0
