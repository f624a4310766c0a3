"""environment.yml (conda) and pyproject.toml name the same Python packages.

pyproject.toml is the source of truth: the conda environment must carry its
runtime dependencies and the "lab" extra with the same version bounds, the
Python bound of ``requires-python``, and install the project itself with
``pip install -e .``. bcc must appear in neither (it comes from the OS).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*((?:[<>=!~]=?|==)\s*[^\s]+)?\s*$")


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def env():
    data = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert isinstance(data, dict), "environment.yml is not a mapping"
    return data


def conda_specs(env):
    """{canonical name: SpecifierSet} of the conda (non-pip) dependencies."""
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            continue
        m = CONDA_SPEC.match(dep)
        assert m, f"environment.yml: cannot parse conda spec {dep!r}"
        name, spec = m.group(1), (m.group(2) or "").replace(" ", "")
        out[canonicalize_name(name)] = SpecifierSet(spec)
    return out


def pip_section(env):
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one pip: section"
    return sections[0]


def test_parses_with_name_and_conda_forge(env):
    assert env["name"] == "ebpf-lab"
    assert env["channels"] == ["conda-forge"]


def test_same_packages_and_bounds_as_pyproject(pyproject, env):
    project = pyproject["project"]
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["lab"]]
    have = conda_specs(env)
    have.pop("pip", None)
    python = have.pop("python")
    assert python == SpecifierSet(project["requires-python"])
    assert set(have) == {canonicalize_name(r.name) for r in wanted}, (
        "environment.yml and pyproject.toml (dependencies + lab) name different packages"
    )
    for req in wanted:
        assert have[canonicalize_name(req.name)] == req.specifier, (
            f"{req.name}: environment.yml says {have[canonicalize_name(req.name)]}, "
            f"pyproject.toml says {req.specifier}"
        )


def test_installs_the_project_editable(env):
    pip = [p.split() for p in pip_section(env)]
    assert ["-e", "."] in pip or ["--editable", "."] in pip


def test_no_bcc_from_any_channel_and_says_why(env):
    names = set(conda_specs(env)) | {canonicalize_name(Requirement(p).name)
                                     for p in pip_section(env) if not p.startswith("-")}
    assert not names & {"bcc", "bpfcc", "python-bcc"}
    text = (ROOT / "environment.yml").read_text()
    comments = " ".join(l for l in text.splitlines() if l.lstrip().startswith("#"))
    assert "bcc" in comments and "conda-forge" in comments and "ebpf_lab" in comments
