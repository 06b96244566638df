"""Third-party plugs: real installs into a fresh environment, with sdt-core unchanged.

The environment gets sdt-core and sdt-local from this repository (uv, for speed); then, with
pip as a plug's user would: the example plug kept in `examples/`, a copy of sdt-local renamed
to another distribution and plug name, and a deliberately broken distribution.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from uv import find_uv_bin

REPO = Path(__file__).resolve().parents[1]


def run(*args, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stderr}"
    return result


def renamed_copy_of_local(dest: Path) -> Path:
    """plugins/sdt-local as distribution sdt-localcopy, package sdt_localcopy, plug localcopy."""
    copy = dest / "sdt-localcopy"
    shutil.copytree(REPO / "plugins" / "sdt-local", copy, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    (copy / "sdt_local").rename(copy / "sdt_localcopy")
    for path in [copy / "pyproject.toml", *copy.rglob("*.py")]:
        text = path.read_text().replace("sdt_local", "sdt_localcopy").replace("sdt-local", "sdt-localcopy")
        text = text.replace('local = "sdt_localcopy"', 'localcopy = "sdt_localcopy"')
        path.write_text(text.replace('plug_name = "local"', 'plug_name = "localcopy"'))
    return copy


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh-env")
    venv = root / "venv"
    run(find_uv_bin(), "venv", "--seed", "-q", "-p", sys.executable, venv)
    python = venv / "bin" / "python"
    run(
        find_uv_bin(),
        "pip",
        "install",
        "-q",
        "--no-sources",
        "-p",
        python,
        REPO,
        REPO / "plugins" / "sdt-local",
    )
    third_parties = [
        REPO / "examples" / "sdt-inprocess",
        REPO / "tests" / "data" / "sdt-broken-plug",
        renamed_copy_of_local(root),
    ]
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *third_parties)
    yield python
    shutil.rmtree(root, ignore_errors=True)


def run_in(python: Path, source: str, tmp_path: Path) -> str:
    script = tmp_path / "script.py"  # a file, not -c: worker processes are spawned from it
    script.write_text(textwrap.dedent(source))
    return run(python, script, cwd=tmp_path).stdout


def test_installed_third_party_plugs_are_listed(fresh_env, tmp_path):
    out = run_in(
        fresh_env,
        """
        import json, sdt_core
        print(json.dumps({p.name: [p.distribution, p.status] for p in sdt_core.list_plugs()}))
    """,
        tmp_path,
    )
    plugs = json.loads(out)
    assert plugs["local"] == ["sdt-local", "ok"]
    assert plugs["inprocess"] == ["sdt-inprocess", "ok"]
    assert plugs["localcopy"] == ["sdt-localcopy", "ok"]
    assert plugs["broken-import"][1] == "ModuleNotFoundError: No module named 'sdt_no_such_backend'"
    assert plugs["broken-hook"][1].startswith("PlugUnusableError: hook make_clustr is not an sdt_core hook")
    assert plugs["broken-signature"][1].startswith("PluginValidationError: Plugin 'broken-signature'")
    assert "fargate" not in plugs  # only what is installed


def test_the_example_plug_starts_a_working_cluster(fresh_env, tmp_path):
    out = run_in(
        fresh_env,
        """
        from sdt_core import get_plug
        with get_plug("inprocess", workers=2, memory=1) as client:
            print(sum(client.gather(client.map(lambda x: x * x, range(10)))))
    """,
        tmp_path,
    )
    assert out.strip() == "285"


def test_a_renamed_copy_of_the_local_plug_starts_a_cluster(fresh_env, tmp_path):
    out = run_in(
        fresh_env,
        """
        import os
        from sdt_core import get_plug
        if __name__ == "__main__":
            with get_plug("localcopy", workers=2, threads=1, memory=1, dashboard_address="127.0.0.1:0") as client:
                pids = set(client.run(os.getpid).values())
                print(len(pids), os.getpid() not in pids, client.submit(sum, [1, 2, 3]).result())
    """,
        tmp_path,
    )
    assert out.split() == ["2", "True", "6"]  # two worker processes, not this one


def test_the_broken_plug_gives_one_line_and_exit_2_on_the_command_line(fresh_env):
    sdt = fresh_env.with_name("sdt")
    result = subprocess.run([sdt, "up", "broken-import"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == (
        "sdt: error: plug 'broken-import' (sdt-broken-plug) cannot be used: "
        "ModuleNotFoundError: No module named 'sdt_no_such_backend'\n"
    )
    listed = subprocess.run([sdt, "plugs"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "broken-hook" in listed and "localcopy" in listed
