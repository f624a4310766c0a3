"""JupyterLab in a real browser: lesson 02 runs, its widgets render, its plot appears.

The lab is started the way a user starts it (scripts/jupyter.sh, the token
from the URL it prints), then driven with Debian's Chromium through
Playwright (Playwright's own browser download does not work here, and is not
needed): open notebooks/02_kmalloc.ipynb, Run > Run All Cells, wait for every
code cell to finish (cells numbered 1..n on the fresh kernel), then visit
each cell and assert an ipywidgets slider rendered and a plot image was drawn. A screenshot is saved in artifacts/ (pass or fail).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from labserver import ROOT, LabServer, lab_server  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.notebook, pytest.mark.root, pytest.mark.tracepoints]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "artifacts"
NOTEBOOK = "02_kmalloc.ipynb"


def run_all_cells_in_browser(server: LabServer, notebook: str, screenshot: Path, timeout_s: float = 300) -> dict:
    """Open `notebook` in JupyterLab, run all cells, return what the page shows.

    Returns {"cells": n, "executed": n, "sliders": n, "images": [(w, h), ...],
    "errors": [text, ...]}. Always leaves a screenshot at `screenshot`.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="ebl-chromium-"))
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            # A fresh profile each run (--user-data-dir is how Playwright takes it).
            ctx = pw.chromium.launch_persistent_context(
                str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": 1400, "height": 1000})
            try:
                page = ctx.new_page()
                page.set_default_timeout(60_000)
                page.goto(f"{server.base}/lab/tree/{notebook}?token={server.token}")
                page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
                # A notebook without kernel metadata asks which kernel: take the default.
                dialog = page.locator(".jp-Dialog").filter(has_text="Select Kernel")
                try:
                    dialog.wait_for(timeout=5_000)
                    dialog.get_by_role("button", name="Select").click()
                except PlaywrightTimeout:
                    pass
                # The kernel must be up before Run All.
                page.wait_for_function(
                    "() => { const e = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
                    ".jp-Notebook-ExecutionIndicator'); return e && e.dataset.status === 'idle'; }",
                    timeout=120_000)
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                page.locator(".lm-Menu-content .lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
                nb = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
                code_cells = nb.locator(".jp-CodeCell")
                n = code_cells.count()
                # JupyterLab renders only the cells near the viewport, so "done" is
                # read off the last cell: on a fresh kernel, Run All numbers the code
                # cells 1..n. A failing cell stops the run: the kernel then stays
                # idle with the last cell unnumbered.
                deadline = time.monotonic() + timeout_s
                idle_since = None
                while time.monotonic() < deadline:
                    last = code_cells.nth(n - 1)
                    last.scroll_into_view_if_needed()
                    prompt = last.locator(".jp-InputArea-prompt").inner_text().strip()
                    if prompt == f"[{n}]:":
                        break
                    status = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) "
                                          ".jp-Notebook-ExecutionIndicator").get_attribute("data-status")
                    if status == "idle" and "*" not in prompt:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > 10:
                            break
                    else:
                        idle_since = None
                    time.sleep(1)
                # Visit every code cell (bringing it into view renders it) and read it.
                prompts, sliders, images, errors = [], 0, [], []
                for i in range(n):
                    cell = code_cells.nth(i)
                    cell.scroll_into_view_if_needed()
                    page.wait_for_timeout(300)
                    prompts.append(cell.locator(".jp-InputArea-prompt").inner_text().strip())
                    sliders += cell.locator(".jp-OutputArea-output .widget-slider").count()
                    images += cell.locator(".jp-OutputArea-output img").evaluate_all(
                        "els => els.filter(e => e.complete).map(e => [e.naturalWidth, e.naturalHeight])")
                    errors += [t for t in cell.locator(
                        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'],"
                        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").all_inner_texts()
                        if "Traceback" in t]
                return {"cells": n, "executed": sum(p == f"[{i + 1}]:" for i, p in enumerate(prompts)),
                        "prompts": prompts, "sliders": sliders, "images": images, "errors": errors}
            finally:
                try:
                    page.screenshot(path=str(screenshot), full_page=True)
                finally:
                    ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_lesson_02_runs_in_chromium(lab_server):
    if not (ROOT / "notebooks" / NOTEBOOK).exists():
        pytest.fail(f"notebooks/{NOTEBOOK} does not exist")
    shot = ARTIFACTS / "browser-02_kmalloc.png"
    # the notebook and its text form (jupytext saves both)
    paths = [ROOT / "notebooks" / NOTEBOOK, (ROOT / "notebooks" / NOTEBOOK).with_suffix(".py")]
    original = {p: p.read_bytes() for p in paths}
    try:
        seen = run_all_cells_in_browser(lab_server, NOTEBOOK, shot)
    finally:
        # JupyterLab autosaves open notebooks: keep the lesson's files as they were.
        for p, data in original.items():
            if p.read_bytes() != data:
                p.write_bytes(data)
    assert shot.stat().st_size > 10_000, "the screenshot is empty"
    assert seen["cells"] > 0, "no code cells in the page"
    assert not seen["errors"], f"cells failed in the browser: {seen['errors']}"
    assert seen["executed"] == seen["cells"], f"not every cell ran: prompts {seen['prompts']}"
    assert seen["sliders"] >= 1, "no ipywidgets slider rendered"
    assert any(w > 100 and h > 100 for w, h in seen["images"]), f"no plot image drawn: {seen['images']}"
