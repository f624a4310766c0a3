"""The notebook runner's bounds: a cell that sits is stopped and named, never waited for in silence."""
import time

import nbformat
import pytest

from nbrun import LAST_TIMINGS, NotebookStalled, run_notebook

pytestmark = [pytest.mark.notebook]


def _notebook(tmp_path, *sources):
    nb = nbformat.v4.new_notebook()
    for i, src in enumerate(sources):
        cell = nbformat.v4.new_code_cell(src)
        cell.metadata["tags"] = [f"step-{i}"]
        nb.cells.append(cell)
    path = tmp_path / "stall.ipynb"
    nbformat.write(nb, str(path))
    return str(path)


def test_a_sitting_cell_is_stopped_and_named(tmp_path):
    path = _notebook(tmp_path, "x = 1", "import time\ntime.sleep(120)  # waits for nothing", "x = 2")
    t0 = time.monotonic()
    with pytest.raises(NotebookStalled) as e:
        run_notebook(path, timeout=5)
    msg = str(e.value)
    assert "cell 1 [step-1] `import time`" in msg and "longer than 5 s" in msg and "EBPF_LAB_NB_CELL_S" in msg
    assert time.monotonic() - t0 < 120, "the runner waited for the cell instead of stopping it"
    rows = LAST_TIMINGS[path]
    assert [r["tags"] for r in rows[:-1]] == [["step-0"]] and rows[-1]["cell"] == "total"


def test_a_notebook_over_its_total_bound_is_named(tmp_path):
    path = _notebook(tmp_path, "import time\ntime.sleep(2)", "y = 1")
    with pytest.raises(NotebookStalled) as e:
        run_notebook(path, timeout=60, total=1)
    assert "before cell 1 [step-1] `y = 1`" in str(e.value) and "EBPF_LAB_NB_TOTAL_S" in str(e.value)


def test_a_dead_kernel_is_named_with_its_signal_and_cell(tmp_path):
    path = _notebook(tmp_path, "x = 1", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "x = 2")
    with pytest.raises(NotebookStalled) as e:
        run_notebook(path, timeout=60)
    msg = str(e.value)
    assert "the kernel died while running cell 1 [step-1] `import os, signal`" in msg, msg
    assert "killed by signal 9 (SIGKILL)" in msg and "MemAvailable" in msg, msg
    assert "kernel log since the notebook started:" in msg, msg
