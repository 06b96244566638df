"""Plugs that are importable but not installed, named by import path: `--plug package.module[:Name]`, `--data`."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest

from sdt_core import ClientPlug, RegisteredPlug, SdtError, UnknownPlugError, get_plug, open_data

#: The built-in plugs, all installed in the suite's environment, as an unknown plug's error lists them.
PLUGS = "address, azure, fargate, gateway, local, slurm, ssh"

SMALL = ["--workers", "2", "--threads", "1", "--memory", "1"]
QUICK = ["--analysis", "sdt_core.analysis:data_inventory", "--no-report", "--data-option", "real=false"]

HOOKS = '''
"""Threads in this process: a module of hooks, not installed."""
from sdt_core import Settings, hookimpl, setting

class HookSettings(Settings):
    label: str = setting("hooks", "A label.")

@hookimpl
def plug_settings():
    return HookSettings

@hookimpl
def make_cluster(settings):
    from distributed import LocalCluster
    return LocalCluster(n_workers=settings.workers, threads_per_worker=settings.threads, processes=False,
                        dashboard_address="127.0.0.1:0")
'''

CLIENT_PLUG = '''
from distributed import Client, LocalCluster
from sdt_core import ClientPlug

class ThreadsClient(ClientPlug):
    """A ClientPlug written as SDT's Dask tool README shows: subclass, override init_client()."""

    def init_client(self):
        self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=self.threads, processes=False,
                                    dashboard_address="127.0.0.1:0")
        self.client = Client(self.cluster)
        print("ThreadsClient", self.workers, self.threads, self.kwargs)
        return self.client
'''

DATA = '''
import pandas as pd
from sdt_core import DataPlug, setting

DAYS = pd.date_range("2024-06-01", periods=3 * 288, freq="5min")

class Frames(DataPlug):
    """Frames made up on the spot, one per key."""
    count: int = setting(2, "How many keys.")
    power_column: str | None = setting(None, "Power column.")

    def keys(self):
        return [(f"frame-{i}",) for i in range(self.count)]

    def get_data(self, key):
        return pd.DataFrame({"timestamp": DAYS, "temperature": 20.0, "power": 3.0 + int(key[0][-1])})
'''


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """A package `myplugs` in the current directory, not installed."""
    package = tmp_path / "myplugs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in (("hooks", HOOKS), ("clients", CLIENT_PLUG), ("data", DATA)):
        (package / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sdt_run_takes_a_module_of_hooks_by_import_path(sdt, modules):
    result = sdt("run", "--plug", "myplugs.hooks", *SMALL, "--set", "label=x", *QUICK, "--limit", "2", cwd=modules)
    assert result.returncode == 0, result.stderr
    assert "2 keys: 2 ok, 0 failed" in result.stderr
    assert json.loads((modules / "sdt-results" / "run.json").read_text())["cluster"].startswith(
        "RegisteredPlug(plug='myplugs.hooks', settings=HookSettings(workers=2, threads=1, memory=1.0, label='x'"
    )


def test_sdt_run_takes_a_client_plug_class_by_import_path(sdt, modules):
    result = sdt("run", "--plug", "myplugs.clients:ThreadsClient", *SMALL, "--set", "tag=7", *QUICK, "--limit", "2")
    assert result.returncode == 0, result.stderr
    assert "2 keys: 2 ok, 0 failed" in result.stderr
    # what the plug printed while the run held the terminal
    assert "ThreadsClient 2 1 {'tag': 7}" in (modules / "sdt-results" / "logs" / "stderr.log").read_text()


def test_sdt_run_takes_a_data_plug_class_by_import_path_and_applies_its_power_column(sdt, modules):
    args = ["--analysis", "sdt_core.analysis:data_inventory", "--no-report", *SMALL]
    result = sdt("run", "--data", "myplugs.data:Frames", "--data-option", "power_column=power", *args)
    assert result.returncode == 0, result.stderr
    assert "2 keys: 2 ok, 0 failed" in result.stderr
    table = pd.read_csv(modules / "sdt-results" / "summary.csv").set_index("key_field_0")
    assert table["max_power"].to_dict() == {"frame-0": 3.0, "frame-1": 4.0}  # not the temperature


def test_sdt_up_and_info_take_an_import_path(sdt, modules):
    info = sdt("info", "myplugs.hooks")
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith(
        "myplugs.hooks: Threads in this process: a module of hooks, not installed. (not installed)"
    )
    assert "label" in info.stdout
    up = sdt("up", "myplugs.hooks", "--workers", "1", "--threads", "1", "--check")
    assert up.returncode == 0, up.stderr
    assert "check: 100 tasks ran on 1 workers" in up.stdout
    client_plug = sdt("up", "myplugs.clients:ThreadsClient", "--workers", "1", "--threads", "1", "--check")
    assert client_plug.returncode == 0, client_plug.stderr
    assert "ThreadsClient 1 1 {}" in client_plug.stdout and "check: 100 tasks ran on 1 workers" in client_plug.stdout
    data = sdt("info", "myplugs.data:Frames")
    assert data.returncode == 0 and "power_column" in data.stdout and "Data: sdt run --data" not in data.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--plug", "myplugs.nothere"],
            "sdt: error: unknown plug 'myplugs.nothere' (nor a module myplugs.nothere to import from here or "
            "PYTHONPATH); installed plugs: " + PLUGS,
        ),
        (
            ["run", "--plug", "myplugs.data:Frames"],
            "sdt: error: plug 'myplugs.data:Frames' cannot be used: PlugUnusableError: the plug does not "
            "implement the required hook plug_settings",
        ),
        (
            ["run", "--plug", "myplugs.hooks:Nope"],
            "sdt: error: plug 'myplugs.hooks:Nope' cannot be used: AttributeError: module 'myplugs.hooks' has no "
            "attribute 'Nope'",
        ),
        (
            ["run", "--data", "myplugs.hooks:HookSettings"],
            "sdt: error: data plug 'myplugs.hooks:HookSettings' cannot be used: TypeError: entry point "
            "myplugs.hooks:HookSettings is <class 'myplugs.hooks.HookSettings'>, not a DataPlug subclass",
        ),
        (
            ["run", "--plug", "myplugs.clients:ThreadsClient", "--dask-config", "a=1"],
            "sdt: error: --dask-config needs a plug with hooks; myplugs.clients:ThreadsClient is a ClientPlug "
            "class: set dask config in it",
        ),
        (
            ["run", "--plug", "sdt_local"],  # a plain name is a module only in the current directory
            "sdt: error: unknown plug 'sdt_local'; did you mean 'local'? installed plugs: " + PLUGS,
        ),
    ],
)
def test_a_bad_import_path_is_one_line_and_starts_nothing(sdt, modules, args, message):
    result = sdt(*args)
    assert (result.returncode, result.stderr) == (2, message + "\n")


def test_a_plain_name_is_a_module_only_in_the_current_directory(modules):
    (modules / "loose.py").write_text(textwrap.dedent(HOOKS))
    assert isinstance(get_plug("loose", workers=1, threads=1), RegisteredPlug)
    with pytest.raises(UnknownPlugError, match=r"^unknown plug 'json'; installed plugs: "):
        get_plug("json")  # the standard library's is not taken for a plug


def test_get_plug_and_open_data_take_import_paths(modules):
    plug = get_plug("myplugs.clients:ThreadsClient", workers=1, threads=1, extra=True)
    assert type(plug).__name__ == "ThreadsClient" and isinstance(plug, ClientPlug)
    assert (plug.workers, plug.threads, plug.kwargs) == (1, 1, {"extra": True})
    frames = open_data(plug="myplugs.data:Frames", count=3)
    assert frames.keys() == [("frame-0",), ("frame-1",), ("frame-2",)]
    with pytest.raises(SdtError, match="no data: give a directory, a data plug URL or a data plug"):
        open_data()
