"""Discovery: each entry point loads on its own; a broken plug is reported, never hidden."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint

import dask.config
import pytest

from sdt_core import GROUP, list_plugs
from sdt_core.errors import PlugUnusableError, UnknownPlugError
from sdt_core.plugs.discovery import PlugRegistry

HEAVY = ("dask", "distributed", "dask_cloudprovider", "boto3", "botocore", "aiobotocore", "azure", "pandas", "numpy")

GOOD = """
    '''A good plug.'''
    from sdt_core import Settings, hookimpl

    @hookimpl
    def plug_settings():
        return Settings

    @hookimpl
    def make_cluster(settings):
        return ("cluster of", settings.workers)
"""


@pytest.fixture
def plug_modules(tmp_path, monkeypatch):
    """Write plug modules into an importable folder; returns a registry loading them."""
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = PlugRegistry()

    def add(name: str, source: str, module: str | None = None):
        module = module or f"plug_{name.replace('-', '_')}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        return registry.add(EntryPoint(name, module, GROUP))

    add.registry = registry
    yield add
    for name in [m for m in sys.modules if m.startswith("plug_")]:
        del sys.modules[name]


def test_installed_plugs_are_listed_with_distribution_version_and_settings():
    plugs = {p.name: p for p in list_plugs()}
    assert {"local", "fargate", "azure"} <= set(plugs)
    for name in ("local", "fargate", "azure"):
        assert plugs[name].status == "ok", plugs[name].status
        assert plugs[name].distribution == f"sdt-{name}" and plugs[name].version
        assert {"workers", "threads", "memory"} <= {s.name for s in plugs[name].settings}
    assert plugs["local"].summary == "Dask LocalCluster on this machine."


def test_listing_in_a_cold_process_imports_no_backend():
    code = (
        "import json, sys, sdt_core; plugs = sdt_core.list_plugs(); "
        f"print(json.dumps([[[p.name, p.status] for p in plugs], sorted(set({HEAVY!r}) & "
        "{m.split('.')[0] for m in sys.modules})]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    plugs, heavy = json.loads(out.stdout)
    assert ["local", "ok"] in plugs and ["fargate", "ok"] in plugs and ["azure", "ok"] in plugs
    assert heavy == []


@pytest.mark.parametrize(
    ("source", "status"),
    [
        ("import sdt_no_such_backend", "ModuleNotFoundError: No module named 'sdt_no_such_backend'"),
        ("raise RuntimeError('boom at import')", "RuntimeError: boom at import"),
        ("raise RuntimeError('boom\\nmore lines\\nof it')", "RuntimeError: boom"),
        (
            GOOD.replace("@hookimpl\n    def make_cluster", "@hookimpl(hookwrapper=True)\n    def make_cluster"),
            "PluginValidationError: Plugin 'bad' for hook 'make_cluster': "
            "Declared as wrapper=True or hookwrapper=True but function is not a generator function",
        ),
        (
            GOOD + "\n    @hookimpl\n    def make_clustr(settings): pass\n",
            "PlugUnusableError: make_clustr is not an sdt-core hook; did you mean make_cluster?",
        ),
        (
            GOOD + "\n    @hookimpl\n    def frobnicate(settings): pass\n",
            "PlugUnusableError: frobnicate is not an sdt-core hook "
            "(hooks: adapt_cluster, clean_up, cluster_logs, configure_dask, make_cluster, plan_cluster, plug_settings, "
            "preflight, worker_plugins, workers_share_files)",
        ),
        (
            GOOD.replace("def make_cluster(settings)", "def make_cluster(settings, region)"),
            "PlugUnusableError: hook make_cluster(settings, region) takes region, which sdt-core does not pass: "
            "its arguments are (settings)",
        ),
        (
            GOOD.replace("@hookimpl\n    def make_cluster", "def make_cluster"),
            "PlugUnusableError: the plug does not implement the required hook make_cluster "
            "(a function of that name is not marked @sdt_core.hookimpl)",
        ),
        (
            GOOD.replace("return Settings", "return dict"),
            "PlugUnusableError: plug_settings returned <class 'dict'>, not a Settings class",
        ),
    ],
    ids=[
        "missing-backend",
        "raises",
        "raises-many-lines",
        "pluggy-validation",
        "misspelled-hook",
        "unknown-hook",
        "wrong-signature",
        "unmarked-hook",
        "bad-settings",
    ],
)
def test_a_broken_plug_is_reported_and_the_others_stay_ok(plug_modules, source, status):
    plug_modules("good-before", GOOD)
    bad = plug_modules("bad", source)
    plug_modules("good-after", GOOD)
    registry = plug_modules.registry
    assert bad.status == status
    assert "\n" not in bad.status and bad.detail.startswith("Traceback (most recent call last):")
    assert [p.status for p in registry.records] == ["ok", bad.status, "ok"]
    assert registry.make_cluster("good-after", registry.settings("good-after", {"workers": 3})) == (
        "cluster of",
        3,
    )
    with pytest.raises(PlugUnusableError, match=rf"^plug 'bad' cannot be used: {re.escape(status)}$"):
        registry.settings_class("bad")
    assert not registry.manager.has_plugin("bad")


def test_two_entry_points_with_one_name_are_both_listed(plug_modules, tmp_path):
    plug_modules("same", GOOD, module="plug_same_one")
    second = plug_modules("same", GOOD, module="plug_same_two")
    assert [p.name for p in plug_modules.registry.records] == ["same", "same"]
    assert second.status == "PlugUnusableError: plug name 'same' is already taken by None"
    first = plug_modules.registry.settings("same", {"workers": 3})
    assert plug_modules.registry.make_cluster("same", first) == ("cluster of", 3)


def test_an_installed_plug_named_by_its_import_path_is_refused_with_its_name(plug_modules):
    plug_modules("good", GOOD)
    again = plug_modules.registry.add_import("plug_good")
    assert again.status == "PlugUnusableError: plug_good is the installed plug 'good': use that name"
    assert plug_modules.registry.make_cluster("good", plug_modules.registry.settings("good", {}))[0] == "cluster of"


def test_unknown_plug_names_installed_ones_and_suggests(plug_modules):
    plug_modules("local", GOOD)
    plug_modules("fargate", GOOD)
    with pytest.raises(UnknownPlugError) as err:
        plug_modules.registry.settings_class("locl")
    assert str(err.value) == "unknown plug 'locl'; did you mean 'local'? installed plugs: local, fargate"


def test_make_cluster_is_called_on_the_started_plug_only(plug_modules):
    plug_modules("one", GOOD.replace('"cluster of"', '"one"'))
    plug_modules("two", GOOD.replace('"cluster of"', '"two"'))
    registry = plug_modules.registry
    assert registry.make_cluster("two", registry.settings("two", {}))[0] == "two"
    assert registry.make_cluster("one", registry.settings("one", {}))[0] == "one"


CONTRIBUTES = (
    GOOD
    + """
    @hookimpl
    def configure_dask(plug, settings):
        return {VALUES}
"""
)


def test_a_plug_whose_configure_dask_raises_is_broken_and_touches_no_other(plug_modules, caplog):
    plug_modules("a", CONTRIBUTES.replace("{VALUES}", '{"distributed.worker.memory.target": 0.5}'))
    always = plug_modules("always", CONTRIBUTES.replace("{VALUES}", "1 / 0"))
    assert (
        always.status
        == "PlugUnusableError: configure_dask raised ZeroDivisionError: division by zero, for a start of another plug"
    )
    assert "ZeroDivisionError" in always.detail
    plug_modules("for-a", CONTRIBUTES.replace("{VALUES}", '{}["boom"] if plug == "a" else None'))
    registry = plug_modules.registry
    assert registry.plugs["for-a"].ok  # it raises only when "a" starts
    assert registry.dask_config("a", registry.settings("a", {})) == {"distributed.worker.memory.target": 0.5}
    assert caplog.messages == [
        "plug 'for-a' is broken, the start of 'a' goes on without it: configure_dask raised KeyError: 'boom'"
    ]
    assert registry.plugs["for-a"].status == "KeyError: 'boom' (configure_dask, for a start of 'a')"
    assert [r.status for r in registry.records if r.name == "for-a"] == [registry.plugs["for-a"].status]
    with pytest.raises(PlugUnusableError, match="plug 'for-a' cannot be used: KeyError: 'boom'"):
        registry.settings("for-a", {})
    plug_modules("self", CONTRIBUTES.replace("{VALUES}", '{}["mine"] if plug == "self" else None'))
    with pytest.raises(PlugUnusableError, match="plug 'self' cannot be used: configure_dask raised KeyError: 'mine'"):
        registry.dask_config("self", registry.settings("self", {}))


def test_configure_dask_contributions_merge_and_the_user_config_wins(plug_modules, monkeypatch):
    plug_modules("a", CONTRIBUTES.replace("{VALUES}", '{"distributed.worker.memory.target": 0.5}'))
    plug_modules(
        "b",
        CONTRIBUTES.replace(
            "{VALUES}",
            '{"distributed": {"worker": {"memory": {"spill": 0.55, "pause": 0.65}}}} if plug == "a" else None',
        ),
    )
    registry = plug_modules.registry
    settings = registry.settings("a", {})
    assert registry.dask_config("a", settings) == {
        "distributed.worker.memory.target": 0.5,
        "distributed.worker.memory.spill": 0.55,
        "distributed.worker.memory.pause": 0.65,
    }
    assert registry.dask_config("b", registry.settings("b", {})) == {"distributed.worker.memory.target": 0.5}
    # The user's own config wins: set at run time, or in the DASK_* environment.
    with dask.config.set({"distributed.worker.memory.target": 0.9}):
        assert "distributed.worker.memory.target" not in registry.dask_config("a", settings)
    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE", "0.99")
    assert "distributed.worker.memory.pause" not in registry.dask_config("a", settings)
