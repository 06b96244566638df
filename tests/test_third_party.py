"""Third-party plugs: real installs into a fresh environment, with sdt-core unchanged.

The environment gets sdt-core and sdt-local from this repository (uv, for speed); then, with
pip as a plug's user would: the example plug kept in `examples/`, a copy of sdt-local renamed
to another distribution and plug name, and a deliberately broken distribution.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from .conftest import REPO, checked, fresh_env


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
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh-env")
    python = fresh_env(root / "venv", REPO / "plugins" / "sdt-local")
    third_parties = [
        REPO / "examples" / "sdt-inprocess",
        REPO / "tests" / "data" / "sdt-broken-plug",
        renamed_copy_of_local(root),
    ]
    checked(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *third_parties)
    yield python
    shutil.rmtree(root, ignore_errors=True)


def run_in(python: Path, source: str, tmp_path: Path) -> str:
    script = tmp_path / "script.py"  # a file, not -c: worker processes are spawned from it
    script.write_text(textwrap.dedent(source))
    return checked(python, script, cwd=tmp_path).stdout


def test_installed_third_party_plugs_are_listed(env, tmp_path):
    out = run_in(
        env,
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
    assert (
        plugs["broken-hook"][1] == "PlugUnusableError: make_clustr is not an sdt-core hook; did you mean make_cluster?"
    )
    assert plugs["broken-signature"][1] == (
        "PlugUnusableError: hook make_cluster(settings, region) takes region, which sdt-core does not pass: "
        "its arguments are (settings)"
    )
    assert plugs["broken-config"][1] == (
        "PlugUnusableError: configure_dask raised RuntimeError: this plug's Dask config is broken, "
        "for a start of another plug"
    )
    assert plugs["broken-at-start"][1] == "ok"  # it raises only when the local plug starts
    assert "fargate" not in plugs  # only what is installed


def test_sdt_plugs_gives_each_broken_plug_one_line_and_v_the_detail(env):
    sdt = env.with_name("sdt")
    listed = checked(sdt, "plugs").stdout.splitlines()
    rows = {line.split()[0]: line for line in listed[1 : 1 + len(listed) - 3]}
    broken = {"broken-hook", "broken-import", "broken-signature", "broken-config", "broken-at-start"}
    assert set(rows) == broken | {"inprocess", "local", "localcopy"}
    assert rows["broken-hook"].split(None, 4) == [
        "broken-hook",
        "sdt-broken-plug",
        "0.0.1",
        "broken",
        "PlugUnusableError: make_clustr is not an sdt-core hook; did you mean make_cluster?",
    ]
    assert rows["broken-signature"].split()[3] == "broken" and rows["inprocess"].split()[3] == "ok"
    assert listed[-2:] == ["", "4 broken; `sdt plugs -v` shows their errors in full."]
    detail = checked(sdt, "plugs", "-v").stdout
    assert "broken-import (sdt-broken-plug):\nTraceback (most recent call last):" in detail
    assert "import sdt_no_such_backend" in detail  # the line that failed


def test_the_example_plug_starts_a_working_cluster(env, tmp_path):
    out = run_in(
        env,
        """
        from sdt_core import get_plug
        with get_plug("inprocess", workers=2, memory=1) as client:
            print(sum(client.gather(client.map(lambda x: x * x, range(10)))))
    """,
        tmp_path,
    )
    assert out.strip() == "285"


def test_a_renamed_copy_of_the_local_plug_starts_a_cluster(env, tmp_path):
    out = run_in(
        env,
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


def test_a_plug_whose_configure_dask_raises_breaks_no_other_plug(env, tmp_path):
    """Installed beside the local plug: broken-config raises for every start (listed broken on load,
    never called), broken-at-start only for the local plug's (found at the start): the run goes on."""
    sdt = env.with_name("sdt")
    args = ["run", "sample://?systems=2&days=2&real=false", "--analysis", "sdt_core.analysis:data_inventory"]
    args += ["--workers", "1", "--threads", "1", "--memory", "1", "--set", "dashboard_address=127.0.0.1:0"]
    result = subprocess.run([sdt, *args, "--no-report"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 keys: 2 ok, 0 failed" in result.stderr
    assert "broken" not in result.stderr  # a quiet terminal: the warning is in run.log, and counted there
    logged = (tmp_path / "sdt-results" / "run.log").read_text().splitlines()
    warnings = [line.split("] ", 1)[1] for line in logged if "broken" in line and " WARNING " in line]
    assert warnings == [
        "plug 'broken-at-start' is broken, the start of 'local' goes on without it: "
        "configure_dask raised KeyError: 'local'"
    ]
    out = run_in(
        env,
        """
        from sdt_core import get_plug, list_plugs
        get_plug("local", workers=1, threads=1, memory=1).contributed_config()
        print({p.name: p.status for p in list_plugs()}["broken-at-start"])
    """,
        tmp_path,
    )
    assert out.strip() == "KeyError: 'local' (configure_dask, for a start of 'local')"


def test_the_broken_plug_gives_one_line_and_exit_2_on_the_command_line(env):
    sdt = env.with_name("sdt")
    result = subprocess.run([sdt, "up", "broken-import"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == (
        "sdt: error: plug 'broken-import' (sdt-broken-plug) cannot be used: "
        "ModuleNotFoundError: No module named 'sdt_no_such_backend'\n"
    )
    listed = subprocess.run([sdt, "plugs"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "broken-hook" in listed and "localcopy" in listed


def test_sdt_new_plug_writes_the_guides_plug_that_installs_as_printed_and_passes_its_tests(env, tmp_path):
    """The template of `sdt new-plug`: the guide's layout and names, installed with the command it
    prints (pip's form: this environment is a plain pip one), listed with its summary, its own
    tests pass, and `sdt up NAME --no-dashboard --check` starts and stops it."""
    sdt = env.with_name("sdt")
    written = checked(sdt, "new-plug", "demo-cluster", cwd=tmp_path).stdout.splitlines()
    assert written[0].startswith("Wrote sdt-demo-cluster: ")
    assert written[1] == (
        "Next: uv pip install -e 'sdt-demo-cluster[test]' && sdt plugs && pytest sdt-demo-cluster/tests"
    )
    folder = tmp_path / "sdt-demo-cluster"
    module = (folder / "sdt_demo_cluster" / "__init__.py").read_text()
    settings = (folder / "sdt_demo_cluster" / "settings.py").read_text()
    for hook in ("def plug_settings(", "def preflight(", "def make_cluster(", "def plan_cluster(", "ClusterStartError"):
        assert hook in module, hook
    assert 'env: dict[str, str] = setting({}, "Environment variables of the workers.", secret=True)' in settings
    assert "os.cpu_count()" in settings and "dashboard: bool" in settings
    assert "(https://pypi.org/project/sdt-core/)" in (folder / "README.md").read_text()
    pip_form = written[2].removeprefix("(without uv: ").removesuffix(")")
    path = f"{env.parent}:{os.environ['PATH']}"
    checked("bash", "-c", f"{pip_form} -q --disable-pip-version-check", cwd=tmp_path, env=os.environ | {"PATH": path})
    rows = [line for line in checked(sdt, "plugs").stdout.splitlines()[1:] if line.strip()]
    listed = {line.split()[0]: line.split(None, 4) for line in rows}
    assert listed["demo-cluster"] == [
        "demo-cluster",
        "sdt-demo-cluster",
        "0.1.0",
        "ok",
        "Dask workers as processes on this machine, until make_cluster starts them on your backend.",
    ]
    tests = checked(env, "-m", "pytest", "-q", "-p", "no:cacheprovider", folder / "tests", cwd=folder)
    assert "3 passed" in tests.stdout
    up = checked(sdt, "up", "demo-cluster", "--workers", "1", "--memory", "1", "--no-dashboard", "--check")
    assert "check: 100 tasks ran on 1 workers" in up.stdout and "Dashboard" not in up.stdout + up.stderr
