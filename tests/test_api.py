"""The public API is small and guarded; parameters and data shaping (no kernel needed)."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import ebpf_lab
from ebpf_lab import _kernel, errors
from ebpf_lab.engine import ChunkedRecords, Param, bytes_to_category, wall_clock
from ebpf_lab.lessons.kmalloc import KmallocLesson, tracepoint_format


def test_public_names():
    from ebpf_lab.catalog import discover

    lessons = [f.cls for f in discover("lessons")]
    assert {"HelloKillLesson", "KmallocLesson", "ArgsReturnLesson", "UprobeArgsReturnLesson", "TcClassifierLesson",
            "XdpVsTcLesson"} <= set(lessons)
    assert sorted(ebpf_lab.__all__) == sorted(lessons + [
        "__version__", "doctor", "lessons", "get_lesson", "lesson_files", "LabError", "PrivilegeError",
        "FeatureUnavailable", "CompileError", "VerifierError", "AttachError", "LessonStateError",
        "LabParameterError", "Lesson", "Param", "Hook", "program_path", "kprobes_available",
        "receive_path_figure"])
    for name in ebpf_lab.__all__:
        assert getattr(ebpf_lab, name) is not None
    assert os.path.exists(os.path.join(os.path.dirname(ebpf_lab.__file__), "py.typed"))
    with pytest.raises(AttributeError):
        ebpf_lab.no_such_name  # noqa: B018


def test_every_discovered_lesson_is_exported():
    from ebpf_lab.catalog import lesson_classes

    for cls in lesson_classes():
        assert getattr(ebpf_lab, cls.__name__) is cls, f"{cls.__name__} is a lesson but not in ebpf_lab.__all__"


def test_no_private_name_is_imported_across_modules():
    """A module uses another module's _private names only through its public API (ebpf_lab.bpf & co.)."""
    import ast
    import pathlib

    root = pathlib.Path(ebpf_lab.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level >= 1:
                for alias in node.names:
                    pkg = (path.parent.joinpath(*[".."] * (node.level - 1)) / node.module.replace(".", "/")).resolve()
                    if (pkg / f"{alias.name}.py").exists():
                        continue  # a private module of the package, not a private name of another module
                    if alias.name.startswith("_"):
                        found.append(f"{path.relative_to(root)}: from {'.' * node.level}{node.module} import {alias.name}")
    assert found == []


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
    cache = ["-DCOMM_CACHE"] if all(_kernel.tracepoint_exists("task", e) for e in ("task_rename", "task_newtask")) else []
    assert lab.cflags() == ["-DMIN_BYTES=256", "-DSTREAM=0", "-DONLY_PID=42", "-DRING_PAGES=2048"] + cache
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
    with pytest.raises(KeyError, match="already taken.*once"):
        r["b"]
    assert r.taken == ["b"] and list(r.take("a")) == [1, 2] and r.taken == ["b", "a"]
    with pytest.raises(KeyError, match="no such field"):
        r.take("c")
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


def test_lost_is_unknown_not_zero_when_the_counter_cannot_be_read():
    from ebpf_lab.lessons.hello_kill import HelloKillLesson

    lab = HelloKillLesson()
    assert lab.lost() is None  # nothing loaded: no counter to read, so no figure
    assert lab.describe()["lost"] is None
    lab.detach()


def test_uprobe_comparison_survives_one_missing_call():
    """One call the uprobes did not see must not mark every later call unseen (the match_in_order fix)."""
    from types import SimpleNamespace

    from ebpf_lab.lessons.args_return import UprobeArgsReturnLesson

    lab = UprobeArgsReturnLesson()
    lab._report = pd.DataFrame({"function": ["strtol", "ebl_collatz", "strtol"], "int_arg": [10, 27, 16],
                                "result": [42, 111, 255], "text_arg": ["42", "a", "ff"]})
    lab.workload = SimpleNamespace(pid=7)  # type: ignore[assignment]
    seen = pd.DataFrame({"pid": [7, 7], "function": pd.Categorical(["strtol", "strtol"]),
                         "text_arg": ["42", "ff"], "int_arg": [10, 16], "ret": [42, 255]})  # ebl_collatz missed
    out = lab.compare_with_workload(seen)
    assert list(out["seen"]) == [True, False, True]
    assert list(out["agree"]) == [True, False, True]
    lab.workload = None
    lab.detach()


class _StalledRing:
    """A ring whose first records are held up by one reserved, not yet committed, for ``stalled`` drains."""

    dtype = np.dtype([("x", "<u8")])

    def __init__(self, stalled: int) -> None:
        self.stalled, self.cons, self.prod, self.drains = stalled, 0, 3, 0

    def producer_position(self) -> int:
        return self.prod

    def consumed(self, position: int) -> bool:
        return self.cons >= position

    def drain(self) -> np.ndarray:
        self.drains += 1
        if self.drains <= self.stalled:
            return np.empty(0, dtype=self.dtype)  # stops at the busy record
        n, self.cons = self.prod - self.cons, self.prod
        return np.arange(n, dtype="<u8").view(self.dtype)


def test_collect_waits_for_records_reserved_before_its_end():
    lab = KmallocLesson()
    lab._reader = _StalledRing(stalled=3)
    assert lab._drain_reserved(timeout=5) == 3 and lab._reader.drains == 4
    assert len(lab._pending) == 3
    lab._reader, lab._pending = _StalledRing(stalled=10**9), None
    assert lab._drain_reserved(timeout=0.05) == 0  # never committed: gives up after the timeout
    lab._reader = None
