"""Lesson 06 on a second kernel: compile once, run everywhere, proven both ways.

The guest-kernel tier's stock Debian kernel has headers that match it, so there
bcc's parent pids must be right and trusted (tests/test_three_ways.py checks
that branch in the guest). And the CO-RE tool crosses kernels unchanged:

1. on the host: build the CO-RE object and its loader from the host kernel's BTF
   into the results share;
2. in the guest (vm/run-guest.sh): run lesson 06's tests and notebook, load the
   host's build unchanged (tests/guest/three_ways_inside.py), and build the tool
   again from the guest kernel's BTF into the results share;
3. back on the host: load the guest's build unchanged here.

Each run must read the parents /proc reports. Uses its own results folder and
the image vm/image.sh builds (shared with test_guest_kernel.py's tier).
"""
from __future__ import annotations

import glob
import os
import platform
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ebpf_lab.lessons.three_ways import build_core
from test_guest_kernel import _run, build_image, keep_compat_records  # one runner and one image step for every guest test
from three_ways_inside import check_foreign_core

ROOT = Path(__file__).resolve().parents[2]
GUEST_RESULTS = "/mnt/results"
GUEST_TESTS = ["tests/test_three_ways.py", "tests/test_notebooks_06.py", "tests/guest/three_ways_inside.py"]
#: the newest guest: notebook 06 runs there, like every other lesson notebook (the trixie row)
SUITE = "trixie"
IMAGE_TIMEOUT_S = 900
GUEST_TIMEOUT_S = 3000  # a bound against a hung guest; in a whole run it shares the cores (docs/matrix.md)


def _tail(text: str, n: int = 40) -> str:
    return "\n".join(text.splitlines()[-n:])


@pytest.mark.guest
@pytest.mark.slow
@pytest.mark.root
@pytest.mark.bpf
def test_three_ways_on_the_guest_kernel(tmp_path, tier_report):
    if os.environ.get("EBPF_LAB_GUEST"):
        pytest.skip("guest: already inside the guest kernel")
    results = tmp_path / "results"
    results.mkdir()
    # 1. the host's build, into the share
    host_core = build_core(cache=str(results / "host-core"), force=True)
    assert host_core.built_on == platform.release()
    rel_host = os.path.relpath(host_core.dir, results)

    # the newest guest's image (./test builds it in the background; a failed build fails here with its log)
    image_dir, build_s, _ = build_image(SUITE, IMAGE_TIMEOUT_S)
    image = str(image_dir)

    # 2. in the guest
    # what the guest proved goes into the suite's column of docs/compatibility.md, beside its row's record
    guest_cmd = ["env", f"CI={os.environ.get('CI', '')}", f"EBPF_LAB_GUEST_SUITE={SUITE}",
                 f"EBPF_LAB_COMPAT_DIR={GUEST_RESULTS}/compat", "EBPF_LAB_COMPAT_PART=three-ways",
                 f"EBPF_LAB_THREE_WAYS_FOREIGN_CORE={GUEST_RESULTS}/{rel_host}",
                 f"EBPF_LAB_THREE_WAYS_CACHE={GUEST_RESULTS}/guest-core",
                 "python", "-m", "pytest", *GUEST_TESTS, f"--junitxml={GUEST_RESULTS}/junit.xml",
                 "-p", "no:cacheprovider", "-v", "-rA", "-s"]
    rc, out, run_s = _run(["bash", str(ROOT / "vm" / "run-guest.sh"), "--image", image, "--timeout",
                           str(GUEST_TIMEOUT_S), "--results", str(results), "--", *guest_cmd], GUEST_TIMEOUT_S + 60)
    guest_out = (results / "output.log").read_text(errors="replace") if (results / "output.log").exists() else ""
    info = (results / "guest-info").read_text().strip() if (results / "guest-info").exists() else ""
    keep_compat_records(results)
    where = f"guest output ({results}/output.log):\n{_tail(guest_out, 60)}\n\nrun-guest.sh:\n{_tail(out, 15)}"
    assert rc not in (124, 125), f"the guest timed out or never ran the tests (status {rc})\n{where}"
    junit = results / "junit.xml"
    assert junit.exists(), f"the guest wrote no JUnit XML (status {rc})\n{where}"
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    bad = [f"{c.get('classname')}::{c.get('name')}: {tag}" for c in cases for tag in ("failure", "error", "skipped")
           if c.find(tag) is not None]
    assert not bad, "guest tests failed or were skipped:\n  " + "\n  ".join(bad) + f"\n\n{where}"
    names = {c.get("name") for c in cases}
    for must in ("test_bcc_is_right_where_headers_match_and_flagged_where_not", "test_06_three_ways",
                 "test_core_built_on_the_host_runs_here_unchanged"):
        assert must in names, f"{must} did not run in the guest\n{where}"
    assert rc == 0, f"guest pytest exited with status {rc}\n{where}"

    # 3. the guest's build, here
    guest_builds = [p for p in glob.glob(str(results / "guest-core" / "*")) if os.path.exists(os.path.join(p, "build.json"))]
    assert len(guest_builds) == 1, f"expected one CO-RE build made in the guest, found {guest_builds}\n{where}"
    facts = check_foreign_core(guest_builds[0])

    crossed = re.findall(r"CO-RE object built on .*", guest_out)  # printed by three_ways_inside.py (-s)
    assert crossed, f"the guest did not report loading the host's CO-RE object\n{where}"
    tier_report.extend([f"three-ways guest tier: {info.splitlines()[0] if info else '?'}; {len(cases)} guest tests "
                        f"passed in {run_s:.0f} s (image {build_s:.0f} s)"]
                       + [f"  host -> guest: {ln}" for ln in crossed]
                       + [f"  guest -> host: CO-RE object built on {facts['built_on']} ran unchanged on "
                          f"{facts['ran_on']}; " + ", ".join(f"task_struct.{f}: offset {a} in the object -> {b} here"
                                                             for f, (a, b) in facts["offsets"].items())])
