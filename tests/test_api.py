"""The public API is small and guarded; parameters and data shaping (no kernel needed)."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import ebpf_lab
from ebpf_lab import errors
from ebpf_lab.engine import ChunkedRecords, Param, bytes_to_category, wall_clock
from ebpf_lab.lessons.kmalloc import KmallocLesson, tracepoint_format


def test_public_names():
    assert sorted(ebpf_lab.__all__) == sorted([
        "__version__", "doctor", "lessons", "get_lesson", "KmallocLesson", "LabError", "PrivilegeError",
        "FeatureUnavailable", "CompileError", "VerifierError", "AttachError", "LessonStateError",
        "LabParameterError"])
    for name in ebpf_lab.__all__:
        assert getattr(ebpf_lab, name) is not None
    assert os.path.exists(os.path.join(os.path.dirname(ebpf_lab.__file__), "py.typed"))


def test_one_root_error_type():
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.LabError)
    doc = errors.__doc__
    for name in errors.__all__:
        assert name in doc, f"{name} missing from the error tree in errors.py's docstring"


def test_import_is_cheap():
    code = "import sys, ebpf_lab; print('bcc' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("value", [-1, 1 << 31, "abc", 1.5, True, None])
def test_absurd_parameters_refused(value):
    with pytest.raises(errors.LabParameterError) as e:
        KmallocLesson(min_bytes=value)
    assert "min_bytes" in str(e.value)


def test_unknown_parameter_names_the_known_ones():
    with pytest.raises(errors.LabParameterError, match="known: min_bytes"):
        KmallocLesson(min_byte=5)


def test_param_coercion():
    p = Param(3, "x", min=0, max=10)
    assert p.check("x", "7") == 7 and p.check("x", "0x3") == 3
    assert Param(True, "b").check("b", "off") is False
    with pytest.raises(errors.LabParameterError):
        Param("a", "c", choices=("a", "b")).check("c", "z")


def test_cflags_are_the_parameters():
    lab = KmallocLesson(min_bytes=256, stream=False, only_pid=42)
    assert lab.cflags() == ["-DMIN_BYTES=256", "-DSTREAM=0", "-DONLY_PID=42"]
    src = lab.source()
    assert "-DMIN_BYTES=256" in src.splitlines()[1]
    assert "int on_kmalloc(struct tracepoint__kmem__kmalloc *args)" in src


def test_steps_out_of_order_say_what_to_do():
    lab = KmallocLesson()
    with pytest.raises(errors.LessonStateError, match="call compile\\(\\) first"):
        lab.load()
    with pytest.raises(errors.LessonStateError, match="collecting from lesson kmalloc"):
        lab.collect()
    lab.detach()
    with pytest.raises(errors.LessonStateError, match="make a new one"):
        lab.compile()


def test_bytes_to_category_exact():
    col = np.array([b"bash", b"python", b"bash", b"a" * 16, b"kworker/0:1", b"python"], dtype="S16")
    cat = bytes_to_category(col)
    assert list(cat) == ["bash", "python", "bash", "a" * 16, "kworker/0:1", "python"]
    assert len(cat.categories) == 4
    assert len(bytes_to_category(np.array([], dtype="S16"))) == 0


def test_chunked_records_columns_and_limit():
    dt = np.dtype([("a", "<u4"), ("b", "<u8")])
    r = ChunkedRecords(dt)
    r.add(np.array([(1, 10), (2, 20)], dt))
    r.add(np.array([(3, 30)], dt))
    assert len(r) == 3
    r.limit(2)
    assert len(r) == 2 and list(r["b"]) == [10, 20]
    with pytest.raises(KeyError, match="taken once"):
        r["b"]
    assert len(ChunkedRecords(dt)["a"]) == 0
    st = np.dtype([("comm", "S16"), ("x", "<u4")])
    r = ChunkedRecords(st)
    r.add(np.array([(b"bash", 1), (b"cat", 2)], st))
    r.add(np.array([(b"cat", 3), (b"zsh", 4), (b"bash", 5)], st))
    assert list(r.category("comm")) == ["bash", "cat", "cat", "zsh", "bash"]
    r2 = ChunkedRecords(st)
    r2.add(np.array([(b"bash", 1), (b"cat", 2)], st))
    assert list(r2["comm"]) == [b"bash", b"cat"]


def test_wall_clock_is_now():
    import time

    # Bracketed by two wall-clock readings, not compared with a quota: however slow the machine,
    # the converted time must fall between them (1 ms of slack for the clocks' rounding).
    before = time.time_ns()
    t = wall_clock(np.array([time.monotonic_ns()], dtype=np.uint64))[0]
    after = time.time_ns()
    slack = 1_000_000
    assert before - slack <= int(t.astype("datetime64[ns]").astype(np.int64)) <= after + slack


def test_tracepoint_format_parsing(tmp_path, monkeypatch):
    fmt = tmp_path / "events" / "kmem" / "kmalloc"
    fmt.mkdir(parents=True)
    (tmp_path / "available_events").write_text("kmem:kmalloc\n")
    (fmt / "format").write_text(
        "name: kmalloc\nID: 1\nformat:\n"
        "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
        "\tfield:unsigned long call_site;\toffset:8;\tsize:8;\tsigned:0;\n"
        "\tfield:char comm[16];\toffset:16;\tsize:16;\tsigned:0;\n\n"
        'print fmt: "call_site=%pS", (void *)REC->call_site\n')
    from ebpf_lab import _kernel

    monkeypatch.setattr(_kernel, "tracefs", lambda: str(tmp_path))
    monkeypatch.setattr(_kernel, "ensure_kernel_fs", lambda: {})
    df = tracepoint_format("kmem", "kmalloc")
    assert list(df.field) == ["common_type", "call_site", "comm"]
    assert list(df.type) == ["unsigned short", "unsigned long", "char[16]"]
    assert list(df.common) == [True, False, False]
    assert df.attrs["print_fmt"].startswith('"call_site=%pS"')


def test_bcc_found_from_a_venv_without_system_site_packages():
    # The project venv is made without --system-site-packages: plain `import bcc` fails there.
    code = ("import sys\ntry:\n import bcc; print('plain-import-works')\nexcept ImportError: print('no-plain-import')\n"
            "sys.modules.pop('bcc', None)\n"
            "from ebpf_lab._bcc import import_bcc; m = import_bcc(); print(m.__name__, hasattr(m, 'BPF'))\n"
            "from bcc import BPF; print('from-bcc-works')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "bcc True" in out.stdout and "from-bcc-works" in out.stdout


def test_bcc_absent_says_what_to_install():
    code = "from ebpf_lab._bcc import import_bcc\nimport_bcc()"
    env = dict(os.environ, EBPF_LAB_BCC_PATH="/nonexistent")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(ebpf_lab.__file__)))
    if "from-system" in out.stdout:  # pragma: no cover
        pytest.skip("this interpreter imports the OS's bcc directly")
    assert out.returncode != 0
    assert "apt-get install python3-bpfcc" in out.stderr and "unrelated project" in out.stderr


def test_match_in_order():
    from ebpf_lab.engine import match_in_order

    seen = [(1, "a"), (7, "x"), (2, "b"), (1, "a")]
    assert match_in_order(seen, [(1, "a"), (2, "b"), (1, "a")]) == [0, 2, 3]
    # a missing event does not hide the ones after it
    assert match_in_order(seen, [(1, "a"), (9, "z"), (2, "b")]) == [0, None, 2]
    assert match_in_order([], [(1, "a")]) == [None]
