"""The lab VM: the project's Vagrantfile, brought up for real on libvirt.

Public boxes cannot be downloaded here, so the test builds a small local box
from Debian packages (vm/vagrant-box.sh: the guest-kernel tier's base stage
plus a `vagrant` user; cached) and brings the unchanged Vagrantfile up on it
through its environment overrides (EBPF_LAB_BOX, EBPF_LAB_PROVIDER=libvirt,
driver "qemu" = software emulation, direct kernel boot). Then, in order:

1. `vagrant up` ran the real provisioning (scripts/setup.sh in the VM, the
   systemd unit) and printed the URL with the token, which works from the
   host's 127.0.0.1 and refuses requests without the token;
2. the forwarded port is on the host's loopback only, and inside the VM
   JupyterLab listens on 127.0.0.1 only, as an enabled systemd service;
3. pip in the VM reaches PyPI through this network's TLS re-signing (the
   box carries the host's CA store, as a laptop behind a company proxy would);
4. the lessons' host tests pass inside the VM over `vagrant ssh`
   (`sudo ./test --host`, the README's command);
5. `vagrant destroy -f` leaves no domain, volume, network or tunnel behind.

Every libvirt object has a unique `ebl-vm-<id>` name, the daemons are started
by the test when absent (no systemd here), and everything (VM, box, pool,
network, daemons it started) is removed on success, failure and interrupt.
Timings go to artifacts/vm-timings.json.
"""
from __future__ import annotations

import atexit
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from labserver import ROOT, free_port, http_status

# `vagrant validate` is cheap; the tests that bring a VM up are marked `vm` one by
# one, so that `./test --no-vm` can leave out the slow part.
pytestmark = [pytest.mark.root]

ARTIFACTS = ROOT / "artifacts"
VIRSH = ["virsh", "-c", "qemu:///system"]
# Inside the VM (software-emulated, bookworm's kernel 6.1 and toolchain: the matrix's 6.1 row): the
# lesson core that every emulated row runs (tests/guest/core-lessons.txt: each lesson's main end-to-end
# tests, kprobe paths included, and one graded reference solution per lesson) and the doctor's
# notebook. The host tier runs every lesson test; the notebooks run on the host and in the newest guest.


def vm_selection() -> List[str]:
    from labtest import read_selection

    return read_selection(ROOT / "tests" / "guest" / "core-lessons.txt")[0] + ["tests/test_notebooks.py::test_00_setup"]


# shell words: the command runs through `vagrant ssh` (test ids hold brackets)
VM_PYTEST_ARGS = os.environ.get("EBPF_LAB_VM_PYTEST_ARGS", "-q " + " ".join(shlex.quote(a) for a in vm_selection()))
TIMINGS: Dict[str, object] = {}


def run(cmd: List[str], *, env: Optional[dict] = None, timeout: float = 600, check: bool = True,
        log: Optional[Path] = None) -> subprocess.CompletedProcess:
    # Own process group: on a timeout or an interrupt the whole tree is stopped.
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    r = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    # Progress bars are \r-rewritten lines: keep the last state of each.
    out = "\n".join(line.split("\r")[-1] for line in (r.stdout + r.stderr).splitlines())
    r.output = out  # type: ignore[attr-defined]
    if log:
        with open(log, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n{out}\n[exit {r.returncode}]\n")
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{out[-6000:]}")
    return r


def virsh(*args: str, check: bool = True) -> str:
    return run(VIRSH + list(args), check=check, timeout=120).stdout


# ------------------------------------------------------------ 0. validate
@pytest.mark.parametrize("provider_env", [
    {},  # the first usable provider here: libvirt (VirtualBox is not installed in CI)
    {"EBPF_LAB_PROVIDER": "libvirt", "EBPF_LAB_BOX": "ebl-vm-box", "EBPF_LAB_LIBVIRT_DRIVER": "qemu",
     "EBPF_LAB_LIBVIRT_KERNEL": "/boot/vmlinuz", "EBPF_LAB_LIBVIRT_INITRD": "/boot/initrd.img",
     "EBPF_LAB_LIBVIRT_CMDLINE": "root=/dev/vda", "EBPF_LAB_LIBVIRT_DISK_CACHE": "unsafe"},
], ids=["default", "libvirt-ci"])
def test_vagrant_validate(tmp_path, provider_env):
    if shutil.which("vagrant") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI must validate the Vagrantfile, but vagrant is not installed (scripts/setup.sh --test installs it)")
        pytest.skip("vm: `vagrant` is not installed")
    env = dict(os.environ, VAGRANT_HOME=str(tmp_path / "home"), VAGRANT_DOTFILE_PATH=str(tmp_path / "dot"),
               VAGRANT_CHECKPOINT_DISABLE="1", **provider_env)
    r = run(["vagrant", "validate"], env=env, timeout=120)
    assert "validated successfully" in r.output


# ------------------------------------------------------------- the VM
@dataclass
class LabVM:
    name: str
    env: Dict[str, str]
    pool: str
    network: str
    box: str
    host_port: int
    tmp: Path
    log: Path
    timings: Dict[str, object] = field(default_factory=dict)
    up_output: str = ""
    destroyed: bool = False

    @property
    def pool_dir(self) -> Path:
        return Path("/var/lib/libvirt/images") / self.name

    def vagrant(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        return run(["vagrant", *args, "--no-color"], env=self.env, timeout=timeout, check=check, log=self.log)

    def ssh(self, command: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        return self.vagrant("ssh", self.name, "-c", command, timeout=timeout, check=check)


def _daemon_running(name: str) -> bool:
    return subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def libvirtd():
    """libvirtd and virtlogd, started here when not running (no systemd); stopped if we started them."""
    started = []
    for daemon in ("virtlogd", "libvirtd"):
        if not _daemon_running(daemon):
            subprocess.run([daemon, "-d"], check=True, timeout=60)
            started.append(daemon)
    deadline = time.monotonic() + 60
    while subprocess.run(VIRSH + ["version"], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "libvirtd did not answer within 60 s"
        time.sleep(0.5)
    yield
    for daemon in reversed(started):
        pidfile = Path(f"/run/{daemon}.pid")
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass


@pytest.fixture(scope="module")
def box_dir(tmp_path_factory) -> Path:
    t0 = time.monotonic()
    r = run(["bash", str(ROOT / "vm" / "vagrant-box.sh"), "build"], timeout=1800)
    path = Path(r.stdout.strip().splitlines()[-1])
    assert (path / "ebpf-lab.box").is_file(), r.output
    TIMINGS["box_build_s"] = round(time.monotonic() - t0, 1)
    return path


def _free_subnet() -> str:
    used = run(["ip", "-4", "-o", "addr"], check=False).stdout + run(["ip", "-4", "route"], check=False).stdout
    nets = [ipaddress.ip_network(m, strict=False) for m in re.findall(r"(\d+\.\d+\.\d+\.\d+/\d+)", used)]
    for third in list(range(180, 250)):
        cand = ipaddress.ip_network(f"192.168.{third}.0/24")
        if not any(cand.overlaps(n) for n in nets):
            return str(cand)
    raise RuntimeError("no free 192.168.x.0/24 for the VM's network")


def _leftovers(vm: LabVM) -> List[str]:
    """libvirt objects and processes of this VM that still exist."""
    left = []
    if vm.name in virsh("list", "--all", "--name", check=False).split():
        left.append(f"domain {vm.name}")
    if vm.network in virsh("net-list", "--all", "--name", check=False).split():
        left.append(f"network {vm.network}")
    if vm.pool in virsh("pool-list", "--all", "--name", check=False).split():
        for vol in virsh("vol-list", vm.pool, check=False).splitlines()[2:]:
            if vol.strip() and not vol.split()[0].startswith(vm.box):
                left.append(f"volume {vol.split()[0]} in {vm.pool}")
    tunnels = subprocess.run(["pgrep", "-af", f"127.0.0.1:{vm.host_port}:"], capture_output=True, text=True).stdout
    left += [f"ssh tunnel: {t}" for t in tunnels.splitlines() if t.strip()]
    return left


def _teardown(vm: LabVM) -> None:
    """Remove everything, whatever state the test left it in (idempotent)."""
    if not vm.destroyed:
        vm.vagrant("destroy", "-f", vm.name, timeout=300, check=False)
    domains = virsh("list", "--all", "--name", check=False).split()
    if vm.name in domains:  # vagrant could not: do it by hand
        virsh("destroy", vm.name, check=False)
        virsh("undefine", vm.name, "--nvram", check=False)
    if vm.network in virsh("net-list", "--all", "--name", check=False).split():
        virsh("net-destroy", vm.network, check=False)
        virsh("net-undefine", vm.network, check=False)
    if vm.pool in virsh("pool-list", "--all", "--name", check=False).split():
        for vol in virsh("vol-list", vm.pool, check=False).splitlines()[2:]:
            if vol.strip():
                virsh("vol-delete", vol.split()[0], "--pool", vm.pool, check=False)
        virsh("pool-destroy", vm.pool, check=False)
        virsh("pool-undefine", vm.pool, check=False)
    vm.vagrant("box", "remove", "--force", vm.box, timeout=120, check=False)
    shutil.rmtree(vm.pool_dir, ignore_errors=True)
    shutil.rmtree(vm.tmp, ignore_errors=True)


def _remaining(vm: LabVM) -> List[str]:
    """Anything of this test left after the teardown: must be nothing."""
    left = _leftovers(vm)
    if vm.pool in virsh("pool-list", "--all", "--name", check=False).split():
        left.append(f"pool {vm.pool}")
    if vm.pool_dir.exists():
        left.append(f"folder {vm.pool_dir}")
    if vm.tmp.exists():
        left.append(f"folder {vm.tmp} (VAGRANT_HOME with the box, .vagrant)")
    return left


@pytest.fixture(scope="module")
def lab_vm(libvirtd, box_dir, tmp_path_factory):
    uid = secrets.token_hex(3)
    name = f"ebl-vm-{uid}"
    tmp = Path(tmp_path_factory.mktemp(name))
    ARTIFACTS.mkdir(exist_ok=True)
    vm = LabVM(name=name, env={}, pool=f"{name}-pool", network=f"{name}-net", box=f"{name}-box",
               host_port=free_port(), tmp=tmp, log=ARTIFACTS / f"vm-{name}.log")
    vm.env = dict(
        os.environ,
        VAGRANT_HOME=str(tmp / "vagrant.d"), VAGRANT_DOTFILE_PATH=str(tmp / "dot"), VAGRANT_CHECKPOINT_DISABLE="1",
        EBPF_LAB_PROVIDER="libvirt", EBPF_LAB_BOX=vm.box, EBPF_LAB_NAME=name,
        EBPF_LAB_HOST_PORT=str(vm.host_port), EBPF_LAB_CPUS="2", EBPF_LAB_MEMORY="3072",
        EBPF_LAB_LIBVIRT_DRIVER="qemu", EBPF_LAB_LIBVIRT_POOL=vm.pool,
        EBPF_LAB_LIBVIRT_NETWORK=vm.network, EBPF_LAB_LIBVIRT_NETWORK_ADDRESS=_free_subnet(),
        EBPF_LAB_LIBVIRT_KERNEL=str(box_dir / "vmlinuz"), EBPF_LAB_LIBVIRT_INITRD=str(box_dir / "initrd.img"),
        EBPF_LAB_LIBVIRT_CMDLINE=(box_dir / "cmdline").read_text().strip(),
        EBPF_LAB_LIBVIRT_DISK_CACHE="unsafe", EBPF_LAB_LIBVIRT_GRAPHICS="none",
    )
    # Interrupts and CI's SIGTERM still clean up.
    atexit.register(_teardown, vm)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    vm.timings = TIMINGS
    try:
        # Where libvirt's qemu user can reach it (pytest's tmp is private to root).
        vm.pool_dir.mkdir(parents=True)
        virsh("pool-define-as", vm.pool, "dir", "--target", str(vm.pool_dir))
        virsh("pool-start", vm.pool)
        vm.vagrant("box", "add", "--name", vm.box, str(box_dir / "ebpf-lab.box"), timeout=300)
        t0 = time.monotonic()
        r = vm.vagrant("up", "--provider=libvirt", timeout=3000, check=False)
        vm.timings["vagrant_up_s"] = round(time.monotonic() - t0, 1)
        vm.up_output = r.output
        m = re.search(r"ebpf-lab: set-up took (\d+) s", r.output)
        if m:
            vm.timings["provisioning_setup_sh_s"] = int(m.group(1))
        assert r.returncode == 0, f"vagrant up failed:\n{r.output[-8000:]}"
        yield vm
    finally:
        t0 = time.monotonic()
        _teardown(vm)
        vm.timings["teardown_s"] = round(time.monotonic() - t0, 1)
        atexit.unregister(_teardown)
        signal.signal(signal.SIGTERM, previous)
        (ARTIFACTS / "vm-timings.json").write_text(json.dumps(vm.timings, indent=2) + "\n")
        remaining = _remaining(vm)
        assert not remaining, f"left behind after the VM tier: {remaining}"


@pytest.mark.vm
def test_up_provisions_and_prints_a_working_url(lab_vm):
    out = lab_vm.up_output
    assert "Running provisioner: setup" in out and "ebpf-lab: set-up took" in out, out[-4000:]
    assert "[setup] done" in out.replace("\x1b[1m", "").replace("\x1b[0m", ""), "scripts/setup.sh did not finish"
    m = re.search(r"ebpf-lab:\s+(http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]{32,}))", out)
    assert m, f"vagrant up printed no URL:\n{out[-3000:]}"
    assert int(m.group(2)) == lab_vm.host_port
    token = m.group(3)
    base = f"http://127.0.0.1:{lab_vm.host_port}"
    assert http_status(f"{base}/api/contents?token={token}") == 200
    assert http_status(f"{base}/api/contents") in (401, 403)
    # The notebooks are what it serves.
    import urllib.request

    with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=30) as r:
        names = {c["name"] for c in json.load(r)["content"]}
    assert any(n.endswith(".ipynb") for n in names), names


@pytest.mark.vm
def test_port_and_service_are_loopback_only(lab_vm):
    # vagrant-libvirt forwards through an SSH tunnel (`vagrant port` is not
    # implemented for libvirt): from the host's loopback to the guest's.
    tunnels = run(["pgrep", "-af", "^ssh .* -L "], check=False).stdout.splitlines()
    ours = [t for t in tunnels if f":{lab_vm.host_port}:" in t]
    assert ours, f"no SSH tunnel for port {lab_vm.host_port}: {tunnels}"
    for t in ours:
        assert f"-L 127.0.0.1:{lab_vm.host_port}:127.0.0.1:8888" in t, t
        assert " -g" not in t, f"the tunnel accepts remote hosts: {t}"
    # On the host: the forwarded port listens on loopback only.
    host = run(["ss", "-Hltn", f"sport = :{lab_vm.host_port}"]).stdout.split("\n")
    addrs = [line.split()[3].rsplit(":", 1)[0].strip("[]") for line in host if line.strip()]
    assert addrs, f"nothing listens on the host's port {lab_vm.host_port}"
    assert all(ipaddress.ip_address(a).is_loopback for a in addrs), addrs
    # In the VM: an enabled, active root service listening on 127.0.0.1:8888 only.
    r = lab_vm.ssh("sudo systemctl is-enabled ebpf-lab-jupyter; sudo systemctl is-active ebpf-lab-jupyter; "
                   "sudo ss -Hltnp", timeout=120)
    assert "enabled" in r.stdout and "\nactive" in r.stdout, r.output
    jupyter = [line for line in r.stdout.splitlines() if "jupyter" in line or ":8888 " in line]
    assert any("127.0.0.1:8888" in line for line in jupyter), r.stdout
    for line in jupyter:
        local = line.split()[3]
        assert ipaddress.ip_address(local.rsplit(":", 1)[0].strip("[]")).is_loopback, line


@pytest.mark.vm
def test_pip_in_the_vm_reaches_pypi(lab_vm):
    """This network re-signs TLS (as a company proxy would): with the host's CA
    trust store in the box, pip in the VM reaches PyPI. The CI box points pip
    at its pre-seeded wheels; this overrides that and goes to the index."""
    r = lab_vm.ssh("rm -rf /tmp/ebl-pip && PIP_NO_INDEX=false /opt/ebpf-lab/venv/bin/pip download -q --no-deps "
                   "--index-url https://pypi.org/simple --dest /tmp/ebl-pip six && ls /tmp/ebl-pip",
                   timeout=600, check=False)
    assert r.returncode == 0 and ".whl" in r.stdout, r.output[-3000:]


@pytest.mark.vm
def test_lessons_host_tests_pass_inside_the_vm(lab_vm):
    t0 = time.monotonic()
    # The VM is software-emulated too: the same guard as the guests' against the emulator's race
    # with live-patched static keys (vm/hold-static-keys.sh).
    lab_vm.ssh("sudo bash /home/vagrant/ebpf-lab/vm/hold-static-keys.sh", timeout=300, check=False)
    r = lab_vm.ssh("cd /home/vagrant/ebpf-lab && sudo env EBPF_LAB_TIER=vm-bookworm EBPF_LAB_EMULATED=1 "
                   f"./test --host -- {VM_PYTEST_ARGS}",
                   timeout=2700, check=False)
    lab_vm.timings["tests_in_vm_s"] = round(time.monotonic() - t0, 1)
    # The VM's per-lesson record (tests/compat.py) joins the host's for docs/compatibility.md.
    rec = lab_vm.ssh("cat /home/vagrant/ebpf-lab/artifacts/compat/vm-bookworm.json", timeout=120, check=False)
    if rec.returncode == 0 and rec.stdout.lstrip().startswith("{"):
        (ARTIFACTS / "compat").mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "compat" / "vm-bookworm.json").write_text(rec.stdout)
    tail = r.output[-6000:]
    assert r.returncode == 0, f"the host tests failed inside the VM:\n{tail}"
    assert re.search(r"\d+ passed", r.output), tail
    # One venv: the provisioned one (EBPF_LAB_VENV reaches sudo through /etc/environment).
    assert "creating the project venv" not in r.output, tail
    lab_vm.timings["tests_in_vm_summary"] = [line.strip(" =") for line in r.output.splitlines()
                                             if re.search(r"\d+ passed", line)][-1:]


@pytest.mark.vm
def test_destroy_leaves_nothing_behind(lab_vm):
    r = lab_vm.vagrant("destroy", "-f", lab_vm.name, timeout=300)
    lab_vm.destroyed = True
    assert not _leftovers(lab_vm), f"left after vagrant destroy: {_leftovers(lab_vm)}\n{r.output}"
    assert http_status(f"http://127.0.0.1:{lab_vm.host_port}/api") == 0
