"""Execute a notebook headless (nbclient) and read its cells by tag — shared by the notebook tests."""
import os
from typing import Dict, List

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_notebook(name: str, timeout: int = 600) -> nbformat.NotebookNode:
    """Run notebooks/NAME top to bottom in its folder; any cell error fails (CellExecutionError)."""
    path = os.path.join(ROOT, "notebooks", name)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    return nb


def outputs_by_tag(nb: nbformat.NotebookNode) -> Dict[str, List[dict]]:
    out: Dict[str, List[dict]] = {}
    for cell in nb.cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            out.setdefault(tag, []).extend(cell.get("outputs", []))
    return out


def text_of(outputs: List[dict]) -> str:
    parts = []
    for o in outputs:
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif "data" in o:
            parts.append(o["data"].get("text/plain", ""))
    return "".join(parts)


def has_image(outputs: List[dict]) -> bool:
    return any("image/png" in o.get("data", {}) for o in outputs)
