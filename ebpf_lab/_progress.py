"""Progress for waits longer than a moment: a widget in Jupyter, a line on a terminal."""
from __future__ import annotations

import sys
import time
from typing import Any, Optional


def in_notebook() -> bool:
    try:
        from IPython import get_ipython

        ip = get_ipython()
        return ip is not None and "IPKernelApp" in getattr(ip, "config", {})
    except ImportError:
        return False


class Progress:
    """``with Progress(total_s, "collecting") as p: p.update(elapsed, "123 events")``.

    Shown only when the wait is expected to exceed ``min_seconds``.
    """

    def __init__(self, total: float, label: str, min_seconds: float = 2.0, quiet: bool = False) -> None:
        self.total = max(total, 1e-9)
        self.label = label
        self.show = not quiet and total > min_seconds
        self._bar: Any = None
        self._text: Any = None
        self._tty = False
        self._last = 0.0

    def __enter__(self) -> "Progress":
        if not self.show:
            return self
        if in_notebook():
            try:
                import ipywidgets as w
                from IPython.display import display

                self._bar = w.FloatProgress(min=0, max=self.total, description=self.label[:20])
                self._text = w.Label("")
                display(w.HBox([self._bar, self._text]))
            except ImportError:  # no ipywidgets: no bar
                self._bar = None
        else:
            self._tty = sys.stderr.isatty()
        return self

    def update(self, done: float, text: str = "") -> None:
        if not self.show:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        if self._bar is not None:
            self._bar.value = min(done, self.total)
            self._text.value = text
        elif self._tty:
            pct = 100.0 * min(done, self.total) / self.total
            sys.stderr.write(f"\r{self.label}: {pct:5.1f}%  {text}   ")
            sys.stderr.flush()

    def __exit__(self, *exc: Optional[BaseException]) -> None:
        if self._bar is not None:
            self._bar.value = self.total
            self._bar.bar_style = "danger" if exc[0] else "success"
        elif self._tty and self.show:
            sys.stderr.write("\n")
