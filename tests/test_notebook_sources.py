"""The notebooks as sources (no root, no kernel, seconds): pairs in step, exercises released, tables complete.

- every notebook under notebooks/ is a pair NAME.ipynb + NAME.py (jupytext percent
  text) holding the same cells, cell types, sources and tags; the .ipynb are
  committed without outputs;
- notebooks/exercises/ (both forms) equal a fresh `ebpf-lab release` from notebooks/solutions/;
- each lesson notebook's exercise table lists exactly the registry's exercises of that
  lesson, with their level and title;
- each lesson's notebook shares the stem of its lesson module.
"""
from __future__ import annotations

import glob
import os
import re
import shutil

import pytest

from ebpf_lab import grading, nbpair
from ebpf_lab.catalog import LESSONS, get_lesson
from ebpf_lab.exercises import exercise_ids, get_exercise

pytestmark = pytest.mark.unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")


def stems() -> list:
    found = glob.glob(os.path.join(NOTEBOOKS, "**", "*.ipynb"), recursive=True)
    found += glob.glob(os.path.join(NOTEBOOKS, "**", "*.py"), recursive=True)
    return sorted({os.path.relpath(os.path.splitext(p)[0], NOTEBOOKS) for p in found
                   if ".ipynb_checkpoints" not in p})


def test_every_notebook_is_a_lesson_an_exercise_or_a_solution():
    lessons = {"00_setup"} | {os.path.splitext(get_lesson(lid).notebook)[0] for lid in LESSONS}
    ids = sorted(exercise_ids())
    assert stems() == sorted(lessons) + [f"exercises/{e}" for e in ids] + [f"solutions/{e}" for e in ids]


@pytest.mark.parametrize("stem", stems())
def test_ipynb_and_py_hold_the_same_cells(stem):
    assert nbpair.drift(os.path.join(NOTEBOOKS, stem + ".py")) == []


@pytest.mark.parametrize("stem", stems())
def test_committed_ipynb_has_no_outputs(stem):
    nb = nbpair.read_ipynb(os.path.join(NOTEBOOKS, stem + ".ipynb"))
    ran = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert ran == [], (f"{stem}.ipynb: cells {ran} have outputs; clear them before committing "
                       "(JupyterLab: Edit > Clear Outputs of All Cells, then save)")


def test_committed_exercises_equal_a_fresh_release():
    assert grading.release(check_only=True) == [], "run `ebpf-lab release` and commit what it wrote"


def test_each_lesson_table_lists_exactly_its_exercises():
    by_notebook: dict = {}
    for eid in exercise_ids():
        ex = get_exercise(eid)
        by_notebook.setdefault(get_lesson(ex.lesson).notebook, {})[eid] = ("★" * ex.level, ex.title)
    lesson_notebooks = {get_lesson(lid).notebook for lid in LESSONS}
    assert set(by_notebook) <= lesson_notebooks
    for name in sorted(lesson_notebooks):
        nb = nbpair.read_text(os.path.join(NOTEBOOKS, name))
        tables = [c.source for c in nb.cells if c.cell_type == "markdown" and grading._TABLE_HEAD in c.source]
        want = by_notebook.get(name, {})
        if not want and not tables:
            continue
        assert len(tables) == 1, f"{name}: {len(tables)} exercise tables"
        listed = {}
        for row in grading.table_rows(tables[0]):
            m = re.fullmatch(r"\| \[([\w-]+)\]\(exercises/([\w-]+)\.ipynb\) \| (★+) \| (.+) \|", row)
            assert m and m.group(1) == m.group(2), f"{name}: a row that is not `| [id](exercises/id.ipynb) | ★ | title |`: {row}"
            listed[m.group(1)] = (m.group(3), m.group(4))
        assert listed == want, f"{name}: its exercise table is out of step with the exercises; run `ebpf-lab release`"


def test_each_lesson_notebook_shares_its_lesson_stem():
    for lid in LESSONS:
        cls = get_lesson(lid)
        module_stem = cls.__module__.rsplit(".", 1)[1]
        stem = os.path.splitext(cls.notebook)[0]
        assert re.fullmatch(r"\d\d_" + module_stem, stem), f"lesson {lid}: notebook {cls.notebook}, module {cls.__module__}"
        for ext in (".ipynb", ".py"):
            assert os.path.exists(os.path.join(NOTEBOOKS, stem + ext)), f"lesson {lid}: no notebooks/{stem}{ext}"


# ----------------------------------------------------------- the tools themselves can fail
def _copy(tmp_path, rel):
    for ext in (".ipynb", ".py"):
        dst = tmp_path / (rel + ext)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(NOTEBOOKS, rel + ext), dst)
    shutil.copy(os.path.join(NOTEBOOKS, "jupytext.toml"), tmp_path / "jupytext.toml")
    return str(tmp_path / (rel + ".py"))


def test_drift_names_the_cell_and_the_command(tmp_path):
    py = _copy(tmp_path, "02_kmalloc")
    text = open(py, encoding="utf-8").read()
    assert text.count("# # 02 ") == 1
    open(py, "w", encoding="utf-8").write(text.replace("# # 02 ", "# # 02 (edited) ", 1))
    found = nbpair.drift(py)
    assert len(found) == 1 and "cell 0 (markdown" in found[0] and "its text differs" in found[0]
    assert f"jupytext --sync {py}" in found[0]
    with pytest.raises(grading.LabError, match="jupytext --sync"):
        nbpair.read_pair(py)
    # a tag lost in one file is drift too
    open(py, "w", encoding="utf-8").write(text.replace('# %% tags=["imports"]', "# %%", 1))
    assert "tags [] in the .py, ['imports'] in the .ipynb" in nbpair.drift(py)[0]
    os.remove(py)
    assert "is missing: run `jupytext --sync" in nbpair.drift(py)[0]


def test_write_pair_keeps_ids_and_round_trips(tmp_path):
    py = _copy(tmp_path, "02_kmalloc")
    nb = nbpair.read_pair(py)
    before = [c.id for c in nb.cells]
    assert before[:2] == ["md-00", "imports-01"]
    assert nbpair.write_pair(nb, py) == []  # unchanged: nothing rewritten
    nb.cells[0].source += "\n\nOne more sentence."
    assert nbpair.write_pair(nb, py) == [py[:-3] + ".ipynb", py]
    assert nbpair.drift(py) == []
    again = nbpair.read_pair(py)
    assert [c.id for c in again.cells] == before and again.cells[0].source.endswith("One more sentence.")


def test_release_from_the_text_writes_both_forms(tmp_path):
    root = tmp_path
    for lid in LESSONS:
        _copy(root / "notebooks", os.path.splitext(get_lesson(lid).notebook)[0])
    for eid in exercise_ids():
        _copy(root / "notebooks", f"solutions/{eid}")
    sol = root / "notebooks" / "solutions" / "kmalloc-filter.py"
    sol.write_text(sol.read_text(encoding="utf-8").replace("# %% [markdown]", "# %% [markdown]\n# A new first line.\n#", 1),
                   encoding="utf-8")
    os.remove(root / "notebooks" / "solutions" / "kmalloc-filter.ipynb")  # a new solution: its text alone
    lesson = root / "notebooks" / "02_kmalloc.py"
    lesson.write_text(lesson.read_text(encoding="utf-8").replace("| ★★ | Bytes per process", "| ★★ | stale", 1),
                      encoding="utf-8")
    nbpair.write_pair(nbpair.read_text(str(lesson)), str(lesson))
    written = grading.release(root=str(root))
    rel = sorted(os.path.relpath(p, root) for p in written)
    assert "notebooks/exercises/kmalloc-filter.ipynb" in rel and "notebooks/exercises/kmalloc-filter.py" in rel
    assert "notebooks/02_kmalloc.py" in rel and "notebooks/02_kmalloc.ipynb" in rel
    assert grading.release(root=str(root), check_only=True) == []
    learner = root / "notebooks" / "exercises" / "kmalloc-filter.py"
    text = learner.read_text(encoding="utf-8")
    assert "A new first line." in text and grading.C_STUB in text and grading.BEGIN not in text
    assert "version: learner" in text and "exercise: kmalloc-filter" in text
    assert nbpair.drift(str(learner)) == []
    assert "| ★★ | Bytes per process, counted in the kernel |" in lesson.read_text(encoding="utf-8")


def test_table_rows_are_replaced_and_nothing_else():
    md = "## Exercises\n\n| exercise | level | what to do |\n|---|---|---|\n| old |\n\nOpen one.\n"
    assert grading._replace_table(md, ["| a |", "| b |"]) == (
        "## Exercises\n\n| exercise | level | what to do |\n|---|---|---|\n| a |\n| b |\n\nOpen one.\n")
    assert grading.table_rows(grading._replace_table(md, ["| a |"])) == ["| a |"]
