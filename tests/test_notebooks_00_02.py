"""Notebooks 00 and 02 run top to bottom headless on this kernel; nothing stays attached."""
import re

import pytest

from nbrun import has_image, outputs_by_tag, run_notebook, text_of

pytestmark = [pytest.mark.notebook, pytest.mark.root, pytest.mark.tracepoints]


def test_00_setup():
    out = outputs_by_tag(run_notebook("00_setup.ipynb"))
    assert "bcc tools installed" in text_of(out["tools"])
    doctor = text_of(out["doctor"]) + str(out["doctor"])
    assert "tracepoint" in doctor and "kprobe" in doctor
    assert "kmalloc" in text_of(out["lessons"])


def test_02_kmalloc():
    out = outputs_by_tag(run_notebook("02_kmalloc.ipynb"))
    assert "kmem:kmalloc" in text_of(out["tracepoints"])
    assert "bytes_alloc" in text_of(out["format"])
    tut = text_of(out["tutorial-run"])
    assert re.search(r"\d+\.\d{9}\s+\S+\s+\d+\s+bytes_alloc: \d+", tut) and "b'" not in tut
    collected = text_of(out["collect"])
    assert re.search(r"[\d,]+ allocations; lost: 0; hook: \['tracepoint:kmem:kmalloc'\]", collected)
    assert "[closed]" in text_of(out["detach"])
    for tag in ("plot-sizes", "plot-top", "plot-slack", "aggregation", "page-alloc"):
        assert has_image(out[tag]), f"cell {tag} drew no plot"
    assert "workload's own allocations" in text_of(out["plot-top"])
    assert "application/vnd.jupyter.widget-view+json" in str(out["slider"])
    agg = text_of(out["aggregation"])
    assert re.search(r"in-kernel:\s+0 events to Python", agg)
