"""nbgrader's ``ClearSolutions``, taught that a solution region inside a C string is C.

nbgrader replaces every ``### BEGIN SOLUTION`` region by the kernel language's stub
(``raise NotImplementedError()`` for Python), which inside ``PROGRAM = r\"\"\"...\"\"\"`` would
leave C that cannot compile. This subclass does what ``ebpf-lab release`` does: a region opened
by a ``// ### BEGIN SOLUTION`` line becomes ``// YOUR CODE HERE``; Python regions get nbgrader's
usual stub. ``ebpf-lab course`` writes an ``nbgrader_config.py`` that uses it. Imported only by
nbgrader (nbgrader is a teacher's tool, in the ``test`` extra, not a dependency of the lab).
"""
from __future__ import annotations

from typing import Any

from nbgrader.preprocessors import ClearSolutions


class ClearSolutionsC(ClearSolutions):
    def _replace_solution_region(self, cell: Any, language: str) -> bool:
        from .grading import strip_solutions

        if self.begin_solution_delimeter not in cell.source:
            return False
        lines = cell.source.split("\n")
        is_c = any(ln.strip().startswith(("//", "/*")) and self.begin_solution_delimeter in ln for ln in lines)
        if not is_c:
            return super()._replace_solution_region(cell, language)
        try:
            out = strip_solutions([ln + "\n" for ln in lines], cell.cell_type, "a solution cell")
        except Exception as e:
            raise RuntimeError(str(e)) from None
        cell.source = "".join(out).rstrip("\n") if not cell.source.endswith("\n") else "".join(out)
        return True
