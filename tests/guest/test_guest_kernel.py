"""The guest-kernel tier: a matrix of Debian suites, each booted under QEMU with its own kernel and userspace.

Some hosts (this project's CI among them) have BPF but no kprobes, and one
host proves one kernel and one toolchain. Each row of this tier is a Debian
suite (its stock kernel, bcc, clang, bpftrace and Python): a row exists for
every file ``tests/guest/selection-<suite>.txt`` (one pytest argument per line,
lines starting with ``#`` are comments; an optional ``# budget: SECONDS`` line sets the row's budget,
image build included). A row builds or reuses the suite's image
(vm/image.sh --suite), boots it with software emulation (vm/run-guest.sh),
runs pytest inside over this checkout with the row's selection, and turns the
guest's JUnit XML into this test's verdict: it fails on any failed guest test,
on a guest test skipped for want of kprobes, and when the guest ran no test at
all — a test that ran nowhere is a failure, not a pass. Each row records what
it proved for docs/compatibility.md as ``guest-<suite>`` (tests/compat.py).

``./test`` starts every row's image build in the background before pytest
(EBPF_LAB_GUEST_PREBUILD_DIR, logs there): a row then waits for that build
instead of starting its own, and fails with its log's tail if it failed.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from labtest import read_selection  # tests/ is on the path (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
IMAGE_SH = ROOT / "vm" / "image.sh"
RUN_GUEST = ROOT / "vm" / "run-guest.sh"


def selection_files() -> Dict[str, Path]:
    """{suite: its selection file}, one per tests/guest/selection-<suite>.txt."""
    return {m.group(1): p for p in sorted(HERE.glob("selection-*.txt"))
            if (m := re.fullmatch(r"selection-([a-z]+)\.txt", p.name))}


ROWS = selection_files()
# Which rows run: every selection file; EBPF_LAB_GUEST_SUITE=S keeps only row S. For one run, the row's
# selection can be replaced with EBPF_LAB_GUEST_PYTEST_ARGS (shell words, e.g. "-k 'not notebook'
# tests/test_tc_classifier.py"), and its time limit with EBPF_LAB_GUEST_TIMEOUT_S.
if os.environ.get("EBPF_LAB_GUEST_SUITE"):
    ROWS = {s: p for s, p in ROWS.items() if s == os.environ["EBPF_LAB_GUEST_SUITE"]} or {
        os.environ["EBPF_LAB_GUEST_SUITE"]: HERE / f"selection-{os.environ['EBPF_LAB_GUEST_SUITE']}.txt"}
# A row's budget (image build + boot + tests) when its file names none: a cold image is 5-10 min
# on a busy 2-core machine, boot ~25 s, then the selection's tests 5-10x slower than on the host.
DEFAULT_BUDGET_S = 1800
IMAGE_TIMEOUT_S = 900        # a cold image on a busy 2-core machine: 5-10 min (docs/matrix.md)
MIN_GUEST_TIMEOUT_S = 720
GUEST_RESULTS = "/mnt/results"  # the results share, as the guest sees it


def _run(cmd: List[str], timeout: float) -> Tuple[int, str, float]:
    """Run cmd in its own process group; kill the whole group on timeout."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, cwd=ROOT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:  # timeout, Ctrl-C: leave no QEMU or debootstrap behind
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        raise
    return proc.returncode, out, time.monotonic() - t0


def _tail(text: str, n: int = 40) -> str:
    return "\n".join(text.splitlines()[-n:])


def _junit_outcomes(path: Path) -> Dict[str, Tuple[str, str, float]]:
    """{test id: (outcome, message, seconds)} from pytest's JUnit XML."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        cls = case.get("classname", "")
        test_id = f"{cls.replace('.', '/')}.py::{case.get('name')}" if cls else case.get("name", "?")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                text = (el.text or "").strip()
                message = el.get("message") or (text.splitlines()[-1] if text else "")
                message = message.strip().splitlines()[0][:160] if message.strip() else ""
                break
        out[test_id] = (outcome, message, float(case.get("time", 0) or 0))
    return out


def keep_compat_records(results: Path) -> None:
    """Copy what a guest recorded for docs/compatibility.md (tests/compat.py, in the results share's
    compat/) to artifacts/compat, where ./test makes the table from every tier's records."""
    compat_dir = ROOT / "artifacts" / "compat"
    for record in sorted((results / "compat").glob("*.json")) if (results / "compat").is_dir() else []:
        compat_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(record, compat_dir / record.name)


def build_image(suite: str, timeout: float) -> Tuple[Path, float, str]:
    """The suite's image folder (vm/image.sh --suite), the seconds this took, and how it was had.

    When ``./test`` started the suite's build in the background (EBPF_LAB_GUEST_PREBUILD_DIR has
    image-<suite>.log), wait for that build instead of starting a second one; a failed build fails
    here with its log's tail. Otherwise build (or reuse) it now. Fails the test on any error."""
    t0 = time.monotonic()
    how = ""
    pre = os.environ.get("EBPF_LAB_GUEST_PREBUILD_DIR")
    log = Path(pre) / f"image-{suite}.log" if pre else None
    if log is not None and log.exists():
        status, pid_file = log.with_suffix(".status"), log.with_suffix(".pid")
        while not status.exists():
            pid = pid_file.read_text().strip() if pid_file.exists() else ""
            if pid and not os.path.exists(f"/proc/{pid}") and not status.exists():
                pytest.fail(f"the background build of the {suite} image (./test) stopped without a status; "
                            f"its log ({log}):\n{_tail(log.read_text(errors='replace'))}", pytrace=False)
            if time.monotonic() - t0 > timeout:
                pytest.fail(f"the background build of the {suite} image (./test) is still running after "
                            f"{timeout:.0f} s; its log ({log}):\n{_tail(log.read_text(errors='replace'))}",
                            pytrace=False)
            time.sleep(5)
        prebuild_rc = status.read_text().strip()
        text = log.read_text(errors="replace")
        assert prebuild_rc == "0", (f"building the {suite} guest image failed (vm/image.sh in the background, "
                                    f"status {prebuild_rc}); its log ({log}):\n{_tail(text)}")
        done = re.search(r"done in (\d+) s", text)
        how = (f"built in the background in {done.group(1)} s, waited {time.monotonic() - t0:.0f} s" if done
               else f"reused (background check, waited {time.monotonic() - t0:.0f} s)")
    rc, out, secs = _run(["bash", str(IMAGE_SH), "--suite", suite], timeout)
    assert rc == 0, f"building the {suite} guest image failed (vm/image.sh, {secs:.0f} s):\n{_tail(out)}"
    total = time.monotonic() - t0
    return Path(out.strip().splitlines()[-1]), total, how or ("built" if secs > 30 else "reused") + f" in {secs:.0f} s"


@pytest.mark.guest
@pytest.mark.slow
@pytest.mark.parametrize("suite", sorted(ROWS))
def test_guest_kernel_tier(suite, tmp_path, tier_report):
    if os.environ.get("EBPF_LAB_GUEST"):
        pytest.skip("guest: already inside the guest kernel")
    sel_path = ROWS[suite]
    args, budget = read_selection(sel_path) if sel_path.exists() else (["-m", "kprobes"], 0)
    if os.environ.get("EBPF_LAB_GUEST_PYTEST_ARGS"):
        args = shlex.split(os.environ["EBPF_LAB_GUEST_PYTEST_ARGS"])
    assert args, f"{sel_path.relative_to(ROOT)} selects nothing: a row must name the tests it runs"
    budget = budget or DEFAULT_BUDGET_S

    image, build_s, how = build_image(suite, IMAGE_TIMEOUT_S)

    guest_timeout = max(MIN_GUEST_TIMEOUT_S, int(budget - build_s))
    if os.environ.get("EBPF_LAB_GUEST_TIMEOUT_S"):  # a larger selection than the row's own, for one run
        guest_timeout = int(os.environ["EBPF_LAB_GUEST_TIMEOUT_S"])
    results = tmp_path / "results"
    ci = os.environ.get("CI", "")
    # the guest's per-lesson record for docs/compatibility.md goes to the results share (tests/compat.py)
    guest_cmd = ["env", f"CI={ci}", f"EBPF_LAB_GUEST_SUITE={suite}", f"EBPF_LAB_COMPAT_DIR={GUEST_RESULTS}/compat",
                 "python", "-m", "pytest", *args,
                 f"--junitxml={GUEST_RESULTS}/junit.xml", "-p", "no:cacheprovider", "-v", "-rA"]
    rc, out, run_s = _run(["bash", str(RUN_GUEST), "--suite", suite, "--image", str(image),
                           "--timeout", str(guest_timeout),
                           "--results", str(results), "--", *guest_cmd],
                          guest_timeout + 60)

    def read(name: str) -> str:
        p = results / name
        return p.read_text(errors="replace") if p.exists() else ""

    guest_out, console, info = read("output.log"), read("console.log"), read("guest-info").strip()
    keep_compat_records(results)
    where = f"guest output ({results}/output.log):\n{_tail(guest_out)}\n\nrun-guest.sh:\n{_tail(out, 15)}"
    assert rc != 124, f"the guest ran out of time ({guest_timeout} s)\n{where}"
    assert rc != 125, f"the guest never ran the tests (boot failure?); console:\n{_tail(console)}\n\n{where}"
    assert "kprobe_events present" in info, f"the guest kernel has no kprobes: {info!r}"
    junit = results / "junit.xml"
    assert junit.exists(), f"the guest wrote no JUnit XML (pytest exit status {rc})\n{where}"

    outcomes = _junit_outcomes(junit)
    counts: Dict[str, int] = {}
    for outcome, _, _ in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    lines = [
        f"guest-{suite}: {info.splitlines()[0].removeprefix('guest: ')}; image {image.name} "
        f"({how}); boot + run {run_s:.0f} s of a {budget} s budget",
        f"guest pytest {' '.join(args)}: "
        + (", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "no tests"),
    ]
    for test_id, (outcome, message, secs) in outcomes.items():
        lines.append(f"  {outcome.upper():8} {test_id} ({secs:.1f} s){'  ' + message if message else ''}")
    tier_report.extend(lines)
    print("\n".join(lines))

    bad = [f"{t} {o}: {m}" for t, (o, m, _) in outcomes.items() if o in ("failed", "error")]
    assert not bad, "guest tests failed:\n  " + "\n  ".join(bad) + f"\n\n{where}"
    no_kprobes = [t for t, (o, m, _) in outcomes.items() if o == "skipped" and m.startswith("kprobes")]
    assert not no_kprobes, f"guest tests skipped for want of kprobes on the guest kernel: {no_kprobes}"
    ran = sum(1 for o, _, _ in outcomes.values() if o != "skipped")
    assert ran > 0, (f"the guest ran no test (selection {args}; {len(outcomes)} collected): "
                     f"a test that ran nowhere is a failure, not a pass\n{where}")
    assert rc == 0, f"guest pytest exited with status {rc} although no test failed\n{where}"


def _collect(args: List[str]) -> set:
    """The test ids pytest collects on this host for args (no test runs)."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    ids = {ln.strip() for ln in out.stdout.splitlines() if "::" in ln}
    assert out.returncode in (0, 5), f"pytest --collect-only {args} failed:\n{_tail(out.stdout + out.stderr)}"
    return ids


@pytest.mark.slow
def test_the_rows_run_every_kprobe_test():
    """The host has no kprobes: together the guest rows must run every test marked ``kprobes``."""
    files = selection_files()
    assert files, "no tests/guest/selection-<suite>.txt: the guest tier has no row"
    for path in files.values():
        args, _ = read_selection(path)
        assert args, f"{path.name} selects nothing"
    kprobe_tests = _collect(["-m", "kprobes"])
    assert kprobe_tests, "no test is marked kprobes: the guest tier would prove nothing about kprobes"
    covered = set().union(*(_collect(read_selection(p)[0]) for p in files.values()))
    missing = sorted(kprobe_tests - covered)
    assert not missing, ("tests marked kprobes that no guest row runs (add them to a "
                         f"tests/guest/selection-<suite>.txt): {missing}")


def test_a_failed_background_build_fails_the_row_with_its_log(tmp_path, monkeypatch):
    """./test's background build failed, or died: the row fails at once with the build log's tail."""
    monkeypatch.setenv("EBPF_LAB_GUEST_PREBUILD_DIR", str(tmp_path))
    (tmp_path / "image-trixie.log").write_text("[image +  5s] debootstrap\n[image] error: debootstrap failed; see x\n")
    (tmp_path / "image-trixie.pid").write_text("1\n")
    (tmp_path / "image-trixie.status").write_text("1\n")
    with pytest.raises(AssertionError, match=r"(?s)status 1.*debootstrap failed"):
        build_image("trixie", 60)
    (tmp_path / "image-trixie.status").unlink()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "image-trixie.pid").write_text(f"{dead.pid}\n")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)stopped without a status.*debootstrap failed"):
        build_image("trixie", 60)
