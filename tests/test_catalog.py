"""Lessons and exercises are discovered from their modules; every other list is checked against that."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ebpf_lab import catalog
from ebpf_lab.exercises import EXERCISES

ROOT = Path(__file__).resolve().parents[1]


def test_lessons_are_discovered_in_notebook_order():
    assert list(catalog.LESSONS)[:6] == ["hello-kill", "kmalloc", "args-return", "args-return-uprobes",
                                         "tc-classifier", "xdp-vs-tc"]
    for lid in catalog.LESSONS:
        assert catalog.get_lesson(lid).id == lid


def test_exercises_are_discovered_and_name_a_lesson():
    assert len(EXERCISES) >= 10
    for f in catalog.discover("exercises"):
        assert catalog.exercise_lesson(f) in catalog.LESSONS, f


def test_readme_table_lists_exactly_the_discovered_lessons():
    text = (ROOT / "README.md").read_text()
    ids = []
    for line in text.splitlines():
        m = re.match(r"^\| `\d\d_\w+\.ipynb` \| (.+?) \|", line)
        if m:
            ids += re.findall(r"`([a-z0-9-]+)`", m.group(1))
    assert sorted(ids) == sorted(catalog.LESSONS)


def test_a_copied_lesson_module_is_found_with_no_list_to_edit(tmp_path):
    """What a newcomer does: copy one lesson's files, rename the stem and the id; discovery picks it up."""
    pkg = tmp_path / "ebpf_lab"
    shutil.copytree(ROOT / "ebpf_lab" / "lessons", pkg / "lessons")
    shutil.copytree(ROOT / "ebpf_lab" / "exercises", pkg / "exercises")
    (pkg / "programs").mkdir()
    (pkg / "workloads").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "tests").mkdir()
    src = (ROOT / "ebpf_lab" / "lessons" / "hello_kill.py").read_text()
    new = src.replace('id = "hello-kill"', 'id = "three-ways"').replace('"01_hello_kill.ipynb"', '"06_three_ways.ipynb"') \
             .replace('program = "hello_kill.bpf.c"', 'program = "three_ways.bpf.c"')
    assert new != src
    (pkg / "lessons" / "three_ways.py").write_text(new)
    (pkg / "programs" / "three_ways.bpf.c").write_text("// copied\n")
    (tmp_path / "notebooks" / "06_three_ways.ipynb").write_text("{}")
    (tmp_path / "tests" / "test_three_ways.py").write_text("")
    ids = [f.id for f in catalog.discover("lessons", root=str(tmp_path))]
    assert ids[-1] == "three-ways" and ids.count("three-ways") == 1
    files = catalog.lesson_files(str(tmp_path))
    mine = files[files["lesson"] == "three-ways"]
    assert set(mine["kind"]) >= {"module", "program", "notebook", "test"}
    assert "tests/test_three_ways.py" in catalog.lesson_test_files(str(tmp_path))


def test_two_classes_with_one_id_are_refused(tmp_path):
    pkg = tmp_path / "ebpf_lab" / "lessons"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text('class A:\n    id = "same"\n')
    (pkg / "b.py").write_text('class B:\n    id = "same"\n')
    with pytest.raises(Exception, match="same"):
        catalog.discover("lessons", root=str(tmp_path))


def test_every_lesson_has_its_module_program_notebook_and_tests():
    files = catalog.lesson_files()
    for lid in catalog.LESSONS:
        kinds = set(files.loc[files["lesson"] == lid, "kind"])
        assert {"module", "program", "test"} <= kinds, (lid, kinds)
    for path in files["path"]:
        assert (ROOT / path).exists(), path


def test_the_lesson_core_runs_every_lesson():
    """The core that every emulated row and the lab VM run (tests/guest/core-lessons.txt) holds a test
    of every discovered lesson, so a new lesson cannot go unproven on the guest kernels."""
    from labtest import read_selection

    core = read_selection(ROOT / "tests" / "guest" / "core-lessons.txt")[0]
    assert "read_selection" in (ROOT / "tests" / "test_vm.py").read_text() and "core-lessons.txt" in (
        ROOT / "tests" / "test_vm.py").read_text()
    files = catalog.lesson_files()
    for lid in catalog.LESSONS:
        tests = set(files.loc[(files["lesson"] == lid) & (files["kind"] == "test"), "path"])
        assert tests and any(arg.split("::")[0] in tests for arg in core), (lid, sorted(tests))
    for arg in core:
        assert (ROOT / arg.split("::")[0]).exists(), arg
