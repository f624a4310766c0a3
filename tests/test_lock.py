"""The locked Python dependencies (lock/pythonX.Y.txt) match pyproject.toml, and a stale lock is refused by name."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import lock  # noqa: E402


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, 1)[0].strip().lower().replace("_", "-")


@pytest.mark.parametrize("python", sorted(lock.TARGETS))
def test_every_lock_is_made_from_todays_pyproject(python):
    path = lock.check(python)  # raises LockError naming `python3 scripts/lock.py` when stale
    pins = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
            if m:
                pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    missing = [r for r in lock.requirements() if _name(r) not in pins]
    assert not missing, f"{path} pins nothing for {missing}; regenerate with `{lock.REGENERATE}`"
    assert not any(_name(p) == "bcc" for p in pins), "PyPI's bcc is an unrelated project"


def test_a_dependency_added_to_pyproject_makes_the_lock_stale(tmp_path):
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    changed = text.replace('test = [\n', 'test = [\n    "ebpf-lab-example-dependency>=1.0",\n', 1)
    assert changed != text
    p = tmp_path / "pyproject.toml"
    p.write_text(changed)
    with pytest.raises(lock.LockError) as e:
        lock.check("3.11", str(p))
    assert "python3 scripts/lock.py" in str(e.value) and "lock/python3.11.txt" in str(e.value)


def test_the_pre_3_11_reader_reads_pyproject_as_tomllib_does():
    import tomllib

    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    full = tomllib.loads(text)["project"]
    mini = lock._mini_toml_project(text)
    assert mini["dependencies"] == full["dependencies"]
    for extra in lock.EXTRAS:
        assert mini["optional-dependencies"][extra] == full["optional-dependencies"][extra]


def test_setup_installs_from_the_checked_lock():
    setup = open(os.path.join(ROOT, "scripts", "setup.sh")).read()
    assert 'scripts/lock.py" --check' in setup and 'pip install -q "${pip_fast[@]}" -r "$lock"' in setup
    assert "[lab,test]" not in setup, "setup must not resolve versions afresh from pyproject.toml"


def test_check_cli_names_the_command_for_an_unknown_python():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "lock.py"), "--check", "2.7"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no lock for Python 2.7" in r.stderr
