"""Notebook pairs: ``NAME.ipynb`` (what JupyterLab opens and runs) and ``NAME.py`` (the same cells as text).

Every notebook under ``notebooks/`` is a pair, tied by ``notebooks/jupytext.toml``
(jupytext's percent format: ``# %% [markdown]``, ``# %% tags=["attach"]``).
JupyterLab with jupytext installed writes both files on every save; after
editing a ``.py`` by hand, ``jupytext --sync NAME.py`` rewrites its ``.ipynb``.
The ``.py`` holds the cells; the ``.ipynb`` adds what text cannot carry (cell
ids, outputs).

This module reads and writes pairs for ``ebpf-lab release`` and tells how a
pair has drifted (the tests use it). It needs jupytext (the ``lab`` and
``test`` extras); nothing a learner runs imports it.
"""
from __future__ import annotations

import copy
import os
from typing import Any, List, Optional, Tuple

from .errors import LabError

FORMAT = "py:percent"
SYNC = "jupytext --sync {path}"


def _jupytext() -> Any:
    try:
        import jupytext
    except ImportError:
        raise LabError("notebook pairs (.ipynb + .py) need jupytext: install the project's `lab` extra "
                       "(scripts/setup.sh does), or `pip install jupytext`") from None
    return jupytext


def paths(path: str) -> Tuple[str, str]:
    """(NAME.ipynb, NAME.py) for either member of a pair."""
    stem = os.path.splitext(path)[0]
    return stem + ".ipynb", stem + ".py"


def _config(path: str) -> Any:
    from jupytext.config import load_jupytext_config

    return load_jupytext_config(os.path.dirname(os.path.abspath(path)))


def _recorded_options(path: str) -> dict:
    """The format options from the pair's configuration that jupytext records in the .ipynb's metadata."""
    from jupytext.formats import _VALID_FORMAT_OPTIONS

    config, fmt = _config(path), {}  # type: Any, dict
    if config is not None:
        config.set_default_format_options(fmt)
    return {k: fmt[k] for k in _VALID_FORMAT_OPTIONS if k in fmt}


def to_text(nb: Any, path: str) -> str:
    """The percent-format text of ``nb``, as the pair's configuration writes it (metadata filters included)."""
    return _jupytext().writes(nb, fmt=FORMAT, config=_config(path))


def from_text(text: str) -> Any:
    return _jupytext().reads(text, fmt=FORMAT)


def read_text(path: str) -> Any:
    """The notebook in ``NAME.py`` (cells and the metadata the text keeps; no ids, no outputs)."""
    with open(paths(path)[1], encoding="utf-8") as f:
        return from_text(f.read())


def read_ipynb(path: str) -> Any:
    import nbformat

    return nbformat.read(paths(path)[0], as_version=4)


def _tags(cell: Any) -> List[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def cell_differences(text_nb: Any, ipynb_nb: Any, path: str, limit: int = 3) -> List[str]:
    """How the cells of ``ipynb_nb`` differ from those of ``text_nb`` (type, source, tags, other cell metadata).

    The ``.ipynb`` is compared as its own text would read (through the pair's
    filters), so what the text form cannot hold (ids, outputs) never counts.
    """
    seen = from_text(to_text(ipynb_nb, path))
    a, b = text_nb.cells, seen.cells
    out = []
    meta = {k: v for k, v in text_nb.metadata.items() if k != "jupytext"}
    if meta != {k: v for k, v in seen.metadata.items() if k != "jupytext"}:
        out.append("the notebook metadata (the .py's header) differs")
    if len(a) != len(b):
        out.append(f"{len(a)} cells in the .py, {len(b)} in the .ipynb")
    for i, (x, y) in enumerate(zip(a, b)):
        if len(out) >= limit:
            break
        first = (x.source.strip().splitlines() or [""])[0][:60]
        where = f"cell {i} ({x.cell_type}: {first!r})"
        if x.cell_type != y.cell_type:
            out.append(f"{where}: a {x.cell_type} cell in the .py, {y.cell_type} in the .ipynb")
        elif x.source != y.source:
            out.append(f"{where}: its text differs")
        elif _tags(x) != _tags(y):
            out.append(f"{where}: tags {_tags(x)} in the .py, {_tags(y)} in the .ipynb")
        elif x.metadata != y.metadata:
            out.append(f"{where}: cell metadata differs")
    return out


def drift(path: str) -> List[str]:
    """What differs between the two files of a pair; empty when they hold the same cells.

    Each entry names the file and the command that re-syncs it.
    """
    ipynb, py = paths(path)
    for have, other in ((ipynb, py), (py, ipynb)):
        if not os.path.exists(other):
            return [f"{other} is missing: run `{SYNC.format(path=have)}`"]
    found = cell_differences(read_text(py), read_ipynb(ipynb), py)
    return [f"{os.path.basename(py)} and its .ipynb differ: {d}; run `{SYNC.format(path=py)}` "
            "(it keeps the newer file's cells)" for d in found]


def read_pair(path: str) -> Any:
    """The pair as one notebook: cells from the ``.py``, ids and notebook metadata from the ``.ipynb``.

    Refuses (LabError) a pair whose files disagree: which of the two is
    meant is the teacher's call, and ``jupytext --sync`` makes it.
    """
    ipynb, py = paths(path)
    if not os.path.exists(py):
        raise LabError(f"reading {ipynb}: its text form {py} is missing: run `{SYNC.format(path=ipynb)}`")
    text_nb = read_text(py)
    if not os.path.exists(ipynb):
        return _fill_ids(text_nb, os.path.basename(os.path.splitext(py)[0]), set())
    problems = drift(py)
    if problems:
        raise LabError(f"reading {py}: " + problems[0])
    from jupytext.combine import combine_inputs_with_outputs

    old = read_ipynb(ipynb)
    return combine_inputs_with_outputs(text_nb, old, fmt=FORMAT)


def _fill_ids(nb: Any, stem: str, keep: set) -> Any:
    """Give every cell whose id is not in ``keep`` a stable one (``STEM-NN``): a rewrite changes no id."""
    used = set(keep)
    for i, cell in enumerate(nb.cells):
        if cell.get("id") in keep:
            continue
        new, n = f"{stem}-{i:02d}", 0
        while new in used:
            n += 1
            new = f"{stem}-{i:02d}-{n}"
        cell["id"] = new
        used.add(new)
    return nb


def pair_texts(nb: Any, path: str, *, keep_ids: Optional[set] = None) -> Tuple[str, str]:
    """The two files' contents for ``nb``: (ipynb JSON, percent text); the .ipynb's cells read from the text."""
    import nbformat
    from jupytext.combine import combine_inputs_with_outputs

    text = to_text(nb, path)
    back = combine_inputs_with_outputs(from_text(text), copy.deepcopy(nb), fmt=FORMAT)
    back.metadata.pop("jupytext", None)
    recorded = _recorded_options(path)
    if recorded:  # what JupyterLab's jupytext records on every save: a release and a save write the same file
        back.metadata["jupytext"] = recorded
    ids = {c.get("id") for c in nb.cells} if keep_ids is None else keep_ids
    _fill_ids(back, os.path.basename(os.path.splitext(path)[0]), ids)
    for cell in back.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(back)
    return nbformat.writes(back) + "\n", text


def write_pair(nb: Any, path: str, *, check_only: bool = False) -> List[str]:
    """Write ``nb`` as both files of the pair at ``path`` (outputs cleared); return the files that changed."""
    changed = []
    for out, content in zip(paths(path), pair_texts(nb, path)):
        old = None
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                old = f.read()
        if old != content:
            changed.append(out)
            if not check_only:
                os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
                with open(out, "w", encoding="utf-8") as f:
                    f.write(content)
    return changed
