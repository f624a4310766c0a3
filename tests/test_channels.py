"""ebpf_lab.channels: one kmalloc storm through trace_pipe, perf buffer, ring buffer and the lab's reader.

Asserts the accounting each channel guarantees, never a rate: every round of the storm
allocates at least once; what arrived plus what was lost is what the program offered.
"""
import pytest

from attached import Snapshot
from ebpf_lab.channels import CHANNELS, conclusions, measure_channels, read_channel
from ebpf_lab.errors import LabParameterError

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.tracepoints, pytest.mark.ringbuf]

N = 2000


def test_every_channel_accounts_for_every_event():
    snap = Snapshot(("tracepoint__kmem__kmalloc", "on_kmalloc"))
    df = measure_channels(N).set_index("channel")
    assert list(df.index) == ["trace_pipe", "perf buffer", "ring buffer", "lab bulk reader"]
    assert (df["seen"] >= N).all(), df                       # one open() = at least one kmalloc
    for c in ("perf buffer", "ring buffer", "lab bulk reader"):  # these channels count their own losses
        assert df.loc[c, "received"] + df.loc[c, "lost_reported"] == df.loc[c, "seen"], df
    assert 0 < df.loc["trace_pipe", "received"] <= df.loc["trace_pipe", "seen"]
    assert (df["received"] + df["lost"] == df["seen"]).all()
    assert df.loc["ring buffer", "out_of_order"] == 0        # one buffer, submission order
    assert snap.leftovers() == {}
    text = "\n".join(conclusions(df.reset_index()))
    assert "most events per second into Python: " in text and "least CPU per event: " in text


def test_unknown_channel_is_one_clear_error():
    with pytest.raises(LabParameterError, match="choose one of"):
        read_channel("carrier pigeon")
    with pytest.raises(LabParameterError):
        measure_channels(N, channels=["ring buffer", "smoke"])
    assert set(CHANNELS) == {"trace_pipe", "perf buffer", "ring buffer"}
