"""Writing a lesson's DataFrame to a file (``ebpf-lab run … --out FILE``), fast and without losing it.

- The path is checked *before* anything is compiled or collected
  (:func:`check_out_path`): a name ending in .csv or .parquet, in a folder that
  exists and can be written (tested by creating a file there), with the Parquet
  writer importable.
- The write is atomic (:func:`write_frame`): a temporary file in the same folder,
  then ``os.replace``; a reader never sees half a file.
- If the write still fails (disk full, folder removed meanwhile), the data is
  written beside — the same folder under another name, else the current folder,
  else the temporary folder — and :class:`OutputError` names where it went.

CSV writer. pandas' ``to_csv`` costs 2.5–5 µs per row for a 13-column lesson
frame (Python-level formatting per cell); pyarrow's CSV writer is fast but
pandas imports pyarrow eagerly once it is installed (~70 MB more per process,
notebook kernels included), so the lab does not depend on it. This module
formats from numpy columns, 16k rows at a time: every integer column becomes
right-aligned ASCII digits in one byte matrix (a few vectorised divisions),
text columns (categoricals) are looked up in a table of their distinct values
(quoted once per value, RFC 4180), times become ISO 8601 text per distinct
second plus nine digits of nanoseconds, then the padding is squeezed out with
one boolean mask. Memory: one chunk's matrix (~3 MB), never a copy of the frame.
Columns of other types (floats, booleans, objects) go through numpy's ``str``.

Parquet: fastparquet (also no pyarrow), written column by column from numpy.
"""
from __future__ import annotations

import os
import sys
import tempfile
from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from .errors import LabError, LabParameterError

__all__ = ["check_out_path", "write_frame", "write_text", "write_csv", "OutputError", "FORMATS"]

FORMATS = (".csv", ".parquet")
CHUNK = 1 << 14


class OutputError(LabError):
    """A file could not be written. ``saved`` is where the data was kept instead (or None)."""

    def __init__(self, message: str, saved: Optional[str] = None) -> None:
        super().__init__(message)
        self.saved = saved


def check_out_path(out: str, *, option: str = "--out", formats: Optional[Sequence[str]] = FORMATS) -> str:
    """Refuse an output path that cannot be written, before any work is done. Returns the absolute path.

    ``formats``: the endings a name may have (None: any name)."""
    endings = " or ".join(formats) if formats else ""
    if formats and not out.endswith(tuple(formats)):
        raise LabParameterError(f"{option} {out!r}: the file name must end in {endings}")
    path = os.path.abspath(out)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise LabParameterError(f"{option} {out!r} is a folder; give a file name" + (f" ending in {endings}" if endings else ""))
    if not os.path.isdir(folder):
        raise LabParameterError(f"{option} {out!r}: the folder {folder} does not exist; create it first")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ebpf-lab-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise LabParameterError(f"{option} {out!r}: cannot write in {folder} ({e.strerror or e}); "
                                "choose a folder you can write to") from None
    if path.endswith(".parquet"):
        try:
            import fastparquet  # noqa: F401
        except ImportError:
            raise LabParameterError(f"{option} {out!r}: writing Parquet needs the fastparquet package "
                                    "(scripts/setup.sh installs it); or write .csv") from None
    return path


def _write_to(df: Any, path: str, fmt: str) -> None:
    if fmt == ".parquet":
        _write_parquet(df, path)
    else:
        with open(path, "wb") as f:
            write_csv(df, f)


def _atomic(write: Callable[[str], None], path: str) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it over ``path``."""
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _beside(path: str) -> List[str]:
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    alt = f"{stem}.saved-{os.getpid()}{ext}"
    places = [folder, os.getcwd(), tempfile.gettempdir()]
    seen: List[str] = []
    for p in places:
        cand = os.path.join(p, alt)
        if cand not in seen:
            seen.append(cand)
    return seen


def write_frame(df: Any, out: str) -> str:
    """Write ``df`` to ``out`` (.csv or .parquet) atomically; returns the path written.

    If that fails, the data is written beside (see the module's doc) and
    :class:`OutputError` says why and where it is.
    """
    path = os.path.abspath(out)
    if not path.endswith(FORMATS):
        raise LabParameterError(f"--out {out!r}: the file name must end in .csv or .parquet")
    fmt = os.path.splitext(path)[1]
    return _write_or_keep(lambda p: _write_to(df, p, fmt), path, f"the {len(df):,} rows were saved to", " instead")


def write_text(path: str, text: str) -> str:
    """Write ``text`` to ``path`` atomically (e.g. ``ebpf-lab grade --csv``); kept beside if that fails."""
    def write(p: str) -> None:
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)

    return _write_or_keep(write, os.path.abspath(path), "the data was kept in")


def _write_or_keep(write: Callable[[str], None], path: str, kept: str, after: str = "") -> str:
    """Atomically write ``path``; if that fails, write beside it and raise OutputError naming where."""
    try:
        _atomic(write, path)
        return path
    except (OSError, ValueError, TypeError) as e:
        first = e
    for alt in _beside(path):
        try:
            _atomic(write, alt)
        except (OSError, ValueError, TypeError):
            continue
        raise OutputError(f"writing {path} failed ({_why(first)}); {kept} {alt}{after}", saved=alt)
    raise OutputError(f"writing {path} failed ({_why(first)}), and so did writing beside it "
                      f"({', '.join(_beside(path))}): the data is only in memory", saved=None)


def _why(e: BaseException) -> str:
    return e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------- Parquet
def _write_parquet(df: Any, path: str) -> None:
    import fastparquet

    fastparquet.write(path, df, write_index=False, stats=False)


# -------------------------------------------------------------------- CSV
def _quote(s: str) -> str:
    if any(c in s for c in ',"\n\r') or s != s.strip(" "):
        return '"' + s.replace('"', '""') + '"'
    return s


def _table(texts: Sequence[str]) -> np.ndarray:
    """Strings -> a (k, width) uint8 table, NUL-padded on the right (NUL bytes are squeezed out later)."""
    enc = [_quote(t).encode("utf-8") for t in texts]
    width = max([len(b) for b in enc] + [1])
    arr = np.frombuffer(b"".join(b.ljust(width, b"\0") for b in enc), dtype=np.uint8) if enc else np.zeros(0, np.uint8)
    return arr.reshape(len(enc), width)


_POW10 = np.array([10 ** k for k in range(20)], dtype=np.uint64)
# "0000".."9999" as a (10000, 4) byte table: four digits per division.
_QUAD = np.frombuffer("".join(f"{i:04d}" for i in range(10000)).encode(), dtype=np.uint8).reshape(10000, 4)


_QUAD32 = _QUAD.reshape(-1).view(np.uint32)


def _digit_field(a: np.ndarray, width: int, zeros: bool = False) -> np.ndarray:
    """The decimal digits of uint64 ``a``, right-aligned in a (n, width) byte array.

    Leading positions are NUL (squeezed out later), or '0' with ``zeros``.
    Four digits per pass: one division by 10**4 and one 4-byte table lookup,
    written as a uint32 column of a field whose width is a multiple of four.
    """
    n = len(a)
    w4 = (width + 3) & ~3
    field = np.empty((n, w4), np.uint8)
    f32 = field.view(np.uint32)
    rest = a.copy()
    q = np.uint64(10000)
    j = w4 // 4 - 1
    while j >= 0:
        nxt = rest // q  # numpy divides by a scalar with libdivide; '%' would cost 3x more
        f32[:, j] = _QUAD32[(rest - nxt * q).astype(np.intp)]
        rest = nxt
        j -= 1
        if j >= 0 and not zeros and not rest.any():
            field[:, :4 * (j + 1)] = 0
            break
    if not zeros and n and a.min() < _POW10[width - 1]:
        # leading '0's -> NUL: multiply by (position >= first digit's), no masked store (skipped when every
        # value has all `width` digits, as timestamps and kernel addresses do)
        nd = _ndigits_of(a, width)
        field *= np.arange(w4, dtype=np.uint8)[None, :] >= (w4 - nd)[:, None]
    return field[:, w4 - width:]


def _ndigits_of(a: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits of each uint64 (0 has one): comparisons with powers of ten for narrow fields,
    a binary search in them (one numpy call) for wide ones."""
    if width > 6:
        return np.maximum(np.searchsorted(_POW10, a, side="right"), 1)
    nd = np.ones(len(a), np.uint8)
    for k in range(1, min(width, 20)):
        nd += a >= _POW10[k]
    return nd


def _ndigits(m: int) -> int:
    return len(str(int(m)))


class _Col:
    """One column of a chunk, formatted into its slice of the chunk's byte matrix."""

    def __init__(self, series: Any) -> None:
        import pandas as pd

        self.kind = "str"
        self.table: Optional[np.ndarray] = None
        dt = series.dtype
        if isinstance(dt, pd.CategoricalDtype):
            self.kind = "cat"
            cats = ["" if c is None else str(c) for c in series.cat.categories.tolist()]
            self.table = _table(cats + [""])  # the last row: NaN (code -1)
            self.codes = series.cat.codes.to_numpy()
        else:
            v = series.to_numpy()
            self.values = v
            if v.dtype.kind in "iu":
                self.kind = "int"
            elif v.dtype.kind == "M":
                self.kind = "time"
                self.unit = np.datetime_data(v.dtype)[0]

    def width(self, lo: int, hi: int) -> int:
        if self.kind == "cat":
            assert self.table is not None  # set with kind "cat"
            return self.table.shape[1]
        v = self.values[lo:hi]
        if self.kind == "int":
            if not len(v):
                return 1
            mx = int(v.max())
            mn = int(v.min())
            return max(_ndigits(mx), _ndigits(-mn) + 1 if mn < 0 else 1)
        if self.kind == "time":
            return 29  # 2026-01-01T00:00:00.123456789
        self._text = _table([_text(x) for x in v.tolist()])
        return self._text.shape[1]

    def fill(self, mat: np.ndarray, off: int, w: int, lo: int, hi: int) -> None:
        if self.kind == "cat":
            t = self.table
            assert t is not None  # set with kind "cat"
            mat[:, off:off + t.shape[1]] = t[self.codes[lo:hi]]
        elif self.kind == "int":
            v = self.values[lo:hi]
            if v.dtype.kind == "i":
                neg = v < 0
                a = np.where(neg, (-(v + 1)).astype(np.uint64) + np.uint64(1), v.astype(np.uint64))
                mat[:, off:off + w] = _digit_field(a, w)
                if neg.any():
                    rows = np.flatnonzero(neg)
                    nd = _ndigits_of(a[rows], 20).astype(np.intp)
                    mat[rows, off + w - 1 - nd] = ord("-")
            else:
                mat[:, off:off + w] = _digit_field(v.astype(np.uint64), w)
        elif self.kind == "time":
            v = self.values[lo:hi].astype("datetime64[ns]")
            nat = np.isnat(v)
            ns = v.view(np.int64)
            sec = np.floor_divide(ns, 1_000_000_000)
            frac = (ns - sec * 1_000_000_000).astype(np.uint64)
            first = int(sec.min()) if len(sec) else 0
            if len(sec) and int(sec.max()) - first < len(sec):  # a chunk spans a few seconds: index, no sort
                uniq, inv = np.arange(first, int(sec.max()) + 1), sec - first
            else:
                uniq, inv = np.unique(sec, return_inverse=True)
            heads = _table([str(np.datetime64(int(s), "s")) + "." for s in uniq.tolist()])  # 20 chars
            mat[:, off:off + heads.shape[1]] = heads[inv.reshape(-1)]
            mat[:, off + 20:off + 29] = _digit_field(frac, 9, zeros=True)
            if nat.any():
                mat[nat, off:off + 29] = 0
        else:
            t = self._text
            mat[:, off:off + t.shape[1]] = t


def _text(x: Any) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return ""
    return str(x)


def write_csv(df: Any, f: Any, chunk: int = CHUNK) -> None:
    """Write ``df`` (a header line, then one line per row, no index) to the binary file ``f``."""
    names = [str(c) for c in df.columns]
    f.write((",".join(_quote(n) for n in names) + "\n").encode("utf-8"))
    cols = [_Col(df[c]) for c in df.columns]
    n = len(df)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        widths = [c.width(lo, hi) for c in cols]
        total = sum(widths) + len(cols)  # a separator after each field
        # every field's bytes are written by its column (NUL padding included), so the matrix starts as
        # one row of separators, broadcast: a contiguous pass instead of a strided store per separator
        row = np.zeros(total, np.uint8)
        row[np.cumsum(np.array(widths) + 1) - 1] = ord(",")
        row[total - 1] = ord("\n")
        mat = np.empty((hi - lo, total), np.uint8)
        mat[:] = row
        off = 0
        for c, w in zip(cols, widths):
            c.fill(mat, off, w, lo, hi)
            off += w + 1
        flat = mat.reshape(-1)
        f.write(flat[flat.astype(bool)])  # the padding squeezed out (a cast to bool beats `!= 0` here)
    if hasattr(f, "flush"):
        f.flush()


def _main(argv: List[str]) -> int:  # pragma: no cover - a manual timing aid
    import time

    import pandas as pd

    df = pd.read_parquet(argv[0])
    t = time.perf_counter()
    write_frame(df, argv[1])
    print(f"{len(df):,} rows in {time.perf_counter() - t:.2f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
