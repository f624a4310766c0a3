"""Drain a BPF ring buffer in bulk, without one Python call per event.

bcc's ``open_ring_buffer`` calls a Python callback through ctypes for every
event, and programs usually ask the kernel to wake user space for every event
too. Both cost more than the tracing itself. The lab's programs submit with
``BPF_RB_NO_WAKEUP``; this reader maps the ring buffer itself (the layout is
the kernel's ABI: a consumer page, a producer page, then the data area, which the kernel
lets one map twice in a row so that a record never wraps; this reader maps it
once — mapped ring pages count in the process's RSS, so a double mapping of
a 16 MiB ring would cost 32 MB of it — and copies the rare record that
straddles the end) and turns every committed record between
the consumer and producer positions into one numpy array, in a few numpy calls
per drain however many events there are.

Record header (8 bytes): ``u32 len`` with bit 31 = busy (not yet committed)
and bit 30 = discarded, then ``u32 page offset``. Records are 8-byte aligned.

Waiting: the reader also makes an epoll file descriptor on the map (as
libbpf's ``ring_buffer__poll`` does) and :meth:`RingReader.wait` sleeps on it
with a timeout. Edge-triggered: the programs submit without wake-ups, except
when the unread data crosses a high-water mark (``BPF_RB_FORCE_WAKEUP``), so
a wait ends either at that mark or at the timeout — never spinning on a ring
that always holds a few events, never sleeping while the ring fills.

Memory ordering: the kernel commits a record with a release store of its
header. This reader uses plain loads, which x86-64's ordering makes enough;
on weaker architectures (arm64) a header could be seen before its data, so
the lab has been exercised on x86-64 only.
"""
from __future__ import annotations

import mmap
import select
from typing import Any, List, Mapping, Tuple

import numpy as np

BUSY = 1 << 31
DISCARD = 1 << 30
HDR = 8


def _trim_heap() -> None:
    """Give the C heap that the compiler (LLVM, inside bcc) freed back to the system, before collecting."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _round8(n: int) -> int:
    return (n + 7) & ~7


class RingReader:
    """Bulk reader of one ring buffer map holding fixed-size records of ``dtype``."""

    def __init__(self, map_fd: int, size: int, dtype: np.dtype) -> None:
        if size & (size - 1):
            raise ValueError(f"ring buffer size {size} is not a power of two")
        page = mmap.PAGESIZE
        self.dtype = np.dtype(dtype)
        self.size = size
        self._mask = size - 1
        self._cons_map = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        _trim_heap()
        self._prod_map = mmap.mmap(map_fd, page + size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self._cons = np.frombuffer(self._cons_map, dtype=np.uint64, count=1)
        self._prod = np.frombuffer(self._prod_map, dtype=np.uint64, count=1)
        self._data = np.frombuffer(self._prod_map, dtype=np.uint8, offset=page)
        self.stride = HDR + _round8(self.dtype.itemsize)
        # The same fields, seen through the ring's record stride (header skipped).
        names = list(self.dtype.names or ())
        fields: Mapping[str, Tuple[Any, ...]] = self.dtype.fields or {}
        self._strided = np.dtype(
            {
                "names": names,
                "formats": [fields[n][0] for n in names],
                "offsets": [fields[n][1] + HDR for n in names],
                "itemsize": self.stride,
            }
        )
        self.records = 0
        self.discarded = 0
        self.wakeups = 0
        self.wrapped = 0
        self._epoll = select.epoll()
        self._epoll.register(map_fd, select.EPOLLIN | select.EPOLLET)

    def wait(self, timeout: float) -> bool:
        """Sleep until the program wakes the reader or ``timeout`` seconds pass. True if woken."""
        try:
            woken = bool(self._epoll.poll(timeout))
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            woken = False
        self.wakeups += woken
        return woken

    def pending_bytes(self) -> int:
        return int(self._prod[0]) - int(self._cons[0])

    def producer_position(self) -> int:
        """How far programs have reserved (committed or not): drain until :meth:`consumed` says it is reached."""
        return int(self._prod[0])

    def consumed(self, position: int) -> bool:
        return int(self._cons[0]) >= position

    def drain(self) -> np.ndarray:
        """Consume every committed record; returns them as a compact array."""
        cons = int(self._cons[0])
        prod = int(self._prod[0])
        chunks: List[np.ndarray] = []
        want = self.dtype.itemsize
        while cons < prod:
            start = cons & self._mask
            k = min(prod - cons, self.size - start) // self.stride  # whole records before the end of the area
            if k:
                hdrs = np.ndarray((k,), dtype="<u4", buffer=self._data, offset=start, strides=(self.stride,))
                good = hdrs == want
                if good.all():
                    n = k
                else:
                    n = int(np.argmin(good))  # first record that is not a plain committed one
                if n:
                    recs = np.ndarray((n,), dtype=self._strided, buffer=self._data, offset=start)
                    chunks.append(recs.astype(self.dtype))
                    cons += n * self.stride
                    continue
            # Slow path: one record that is busy, discarded, of another size, or straddling the end.
            hdr = int(np.ndarray((1,), dtype="<u4", buffer=self._data, offset=start)[0])
            if hdr & BUSY:
                break  # not committed yet: stop here, keep order
            length = hdr & ~(BUSY | DISCARD)
            total = HDR + _round8(length)
            if hdr & DISCARD:
                self.discarded += 1
            elif length == want:
                if start + total <= self.size:
                    raw = self._data[start:start + total]
                else:  # wraps: its tail is at the start of the area
                    self.wrapped += 1
                    raw = np.concatenate([self._data[start:], self._data[:start + total - self.size]])
                chunks.append(np.ndarray((1,), dtype=self._strided, buffer=raw.tobytes()).astype(self.dtype))
            cons += total
        self._cons[0] = cons  # hand the space back to the kernel
        if not chunks:
            return np.empty(0, dtype=self.dtype)
        out = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        self.records += len(out)
        return out

    def close(self) -> None:
        try:
            self._epoll.close()
        except OSError:
            pass
        # numpy views keep the maps referenced; drop them first.
        self._cons = self._prod = self._data = None  # type: ignore[assignment]
        for m in (self._cons_map, self._prod_map):
            try:
                m.close()
            except BufferError:  # a view still alive; the GC will unmap it
                pass
