"""A root JupyterLab reachable from a network is a root shell for anyone.

These checks run on the host (no VM): the lab's server refuses requests
without its token and listens on loopback only; scripts/jupyter.sh refuses
wildcard addresses; the Vagrantfile forwards JupyterLab to the host's
127.0.0.1 only; the VM's systemd unit serves on 127.0.0.1 by default. The VM
tier (tests/test_vm.py) checks the same inside a running VM.
"""
from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

import pytest

from labserver import ROOT, free_port, http_status, lab_server, port_listening  # noqa: F401 (fixture)

pytestmark = pytest.mark.root


# ------------------------------------------------------------ the server
def test_api_refuses_requests_without_the_token(lab_server):
    api = f"{lab_server.base}/api/contents"
    assert http_status(f"{api}?token={lab_server.token}") == 200, "the server does not work with its token"
    assert http_status(api) in (401, 403)
    assert http_status(f"{api}?token={'0' * len(lab_server.token)}") in (401, 403)
    # The lab page itself sends a token-less visitor to the login form.
    status = http_status(f"{lab_server.base}/lab")
    assert status in (302, 401, 403), f"/lab without a token answered {status}"


def _tree(pid: int) -> set:
    """pid and all its descendants (kernels are children of the server)."""
    out = {pid}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out |= _tree(int(p.name))
    return out


def _listening(pids: set) -> list:
    """(address, port) of every TCP/UDP listening socket owned by one of pids."""
    out = subprocess.run(["ss", "-Hlntup"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if not owners & pids:
            continue
        local = line.split()[4]
        addr, _, port = local.rpartition(":")
        found.append((addr.strip("[]").split("%")[0], int(port)))
    return found


def test_listens_on_loopback_only(lab_server):
    # The server opens sockets for each kernel: start one so they are checked too.
    import json
    import urllib.request

    req = urllib.request.Request(f"{lab_server.base}/api/kernels?token={lab_server.token}",
                                 data=json.dumps({"name": "python3"}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        kernel = json.load(r)
    try:
        # The kernel binds its ZMQ sockets while starting: wait for them.
        import time

        deadline = time.monotonic() + 60
        while True:
            sockets = _listening(_tree(lab_server.proc.pid))
            if len(sockets) > 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert (lab_server.host, lab_server.port) in sockets, f"the server's own port is not among {sockets}"
        assert len(sockets) > 1, f"the kernel's sockets were not found: {sockets}"
        exposed = [s for s in sockets if not ipaddress.ip_address(s[0] or "0.0.0.0").is_loopback]
        assert not exposed, f"listening on non-loopback addresses: {exposed}"
    finally:
        urllib.request.urlopen(urllib.request.Request(
            f"{lab_server.base}/api/kernels/{kernel['id']}?token={lab_server.token}", method="DELETE"), timeout=30)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "*", ""])
def test_jupyter_sh_refuses_wildcard_addresses(address):
    port = free_port()
    r = subprocess.run(["bash", str(ROOT / "scripts" / "jupyter.sh"), "--ip", address, "--port", str(port)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "refusing" in r.stderr
    assert not port_listening(port)


# ---------------------------------------------------------- the lab VM
def _forwarded_port_calls(text: str) -> list:
    """Every `...network "forwarded_port", ...` call of a Vagrantfile, joined onto one line."""
    calls, current = [], None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if current is None and re.search(r"\.network\s*\(?\s*[\"':]forwarded_port", line):
            current = line
        elif current is not None:
            current += " " + line.strip()
        if current is not None and not current.rstrip().endswith(","):
            calls.append(current)
            current = None
    return calls


def test_vagrantfile_forwards_to_host_loopback_only():
    calls = _forwarded_port_calls((ROOT / "Vagrantfile").read_text())
    assert calls, "the Vagrantfile forwards no port to JupyterLab"
    for call in calls:
        assert re.search(r"host_ip:\s*\"127\.0\.0\.1\"", call), f"not bound to the host's 127.0.0.1: {call}"
        assert "auto_correct: true" not in call
        assert "gateway_ports" not in call, f"gateway_ports opens the tunnel to the network: {call}"
    assert "public_network" not in (ROOT / "Vagrantfile").read_text()


def _unit(path: Path) -> dict:
    """systemd unit as {section: [(key, value), ...]} (keys may repeat)."""
    sections, cur = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            cur = sections.setdefault(line.strip("[]"), [])
        else:
            k, _, v = line.partition("=")
            cur.append((k.strip(), v.strip()))
    return sections


def test_service_unit_binds_loopback_as_root():
    unit = _unit(ROOT / "scripts" / "ebpf-lab-jupyter.service")
    service = unit["Service"]
    keys = dict(service)
    assert keys.get("User", "root") == "root", "BPF needs root"
    env = dict(v.split("=", 1) for k, v in service if k == "Environment")
    assert env["EBPF_LAB_JUPYTER_IP"] == "127.0.0.1"
    exec_start = keys["ExecStart"]
    assert "scripts/jupyter.sh" in exec_start
    assert "--ip ${EBPF_LAB_JUPYTER_IP}" in exec_start
    assert "0.0.0.0" not in (ROOT / "scripts" / "ebpf-lab-jupyter.service").read_text()
    # The script it runs needs a token and takes the address from --ip only.
    script = (ROOT / "scripts" / "jupyter.sh").read_text()
    assert '--ServerApp.ip="$ip"' in script and "--IdentityProvider.token=" in script
    assert "ip=127.0.0.1" in script
    assert unit["Install"] == [("WantedBy", "multi-user.target")]
