"""The plug author's path (issue 24): bool settings as flags, a dashboard link that is true.

The plug is the one a newcomer wrote from the guide: threads in this process
(`LocalCluster(processes=False)`) and a `dashboard: bool` setting, used by its import path
as the guide's first step does. `sdt` runs in this process, through `sdt_core.cli.main`.
"""

from __future__ import annotations

import re
import sys
import textwrap
import urllib.request

import dask.config
import pytest

from sdt_core import get_plug

from .test_cli_properties import sdt

PLUG = "author_threads_plug"
SOURCE = '''
"""Threads in this process, with Dask's dashboard or without."""

from sdt_core import Settings, hookimpl, setting


class ThreadSettings(Settings):
    threads: int = Settings.override("threads", 1)
    dashboard: bool = setting(True, "Serve Dask's dashboard on 127.0.0.1.")


@hookimpl
def plug_settings():
    return ThreadSettings


@hookimpl
def make_cluster(settings):
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=settings.workers,
        threads_per_worker=settings.threads,
        memory_limit=int(settings.memory * 2**30),
        processes=False,
        dashboard_address="127.0.0.1:0" if settings.dashboard else None,
    )
'''


@pytest.fixture(scope="module")
def plug(tmp_path_factory):
    """The plug's module in the current directory, where a plug runs by its import path before it is installed."""
    folder = tmp_path_factory.mktemp("plug")
    (folder / f"{PLUG}.py").write_text(textwrap.dedent(SOURCE))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield PLUG
    sys.modules.pop(PLUG, None)


#: One worker thread in this process: its memory limit is checked against the whole test process.
SMALL = ("--workers", "1", "--memory", "4")


def test_a_bool_setting_is_a_flag_before_another_option(plug):
    """`sdt up NAME --dashboard --check`: the issue's case, which took '--check' as the value."""
    code, out, err = sdt("up", plug, *SMALL, "--dashboard", "--check")
    assert code == 0, err
    assert "check: 100 tasks ran on 1 workers" in out
    assert "Dashboard: http://127.0.0.1:" in out


def test_a_bool_setting_is_a_flag_in_sdt_run_and_still_set_by_set_config_and_api(plug, monkeypatch):
    run = ("run", "--plug", plug, *SMALL, "--dry-run")
    code, out, err = sdt(*run, "--no-dashboard")
    assert code == 0, err
    assert "dashboard=False" in out
    code, out, err = sdt(*run, "--set", "dashboard=false")
    assert (code, "dashboard=False" in out) == (0, True), err
    code, _, err = sdt(*run, "--no-such-flag")
    assert (code, err) == (2, "sdt: error: No such option '--no-such-flag'. (see `sdt run --help`)\n")
    assert get_plug(plug, dashboard=False).settings.dashboard is False
    with dask.config.set({f"sdt.{plug}.dashboard": False}):
        assert get_plug(plug).settings.dashboard is False
    monkeypatch.setenv(f"DASK_SDT__{plug.upper()}__DASHBOARD", "false")  # typed as on the command line
    dask.config.refresh()
    try:
        assert get_plug(plug).settings.dashboard is False
    finally:
        monkeypatch.delenv(f"DASK_SDT__{plug.upper()}__DASHBOARD")
        dask.config.refresh()


def test_sdt_info_and_help_show_bool_settings_as_flags(plug):
    code, out, err = sdt("info", plug)
    assert code == 0, err
    assert "On the command line: --dashboard/--no-dashboard (or --set NAME=true/false);" in out
    code, out, _ = sdt("up", plug, "--help")
    assert "--dashboard / --no-dashboard" in " ".join(out.split())
    code, out, _ = sdt("run", "--plug", plug, "--help")
    assert "--dashboard / --no-dashboard" in " ".join(out.split())


def test_the_printed_dashboard_link_answers_and_names_where_the_server_listens(plug, capsys):
    """processes=False: the scheduler's address is inproc://OUTWARD-ADDRESS/..., the dashboard
    listens on 127.0.0.1; the link must name 127.0.0.1, and answer."""
    plug_object = get_plug(plug, workers=1, memory=4)
    with plug_object as client:
        assert client.scheduler.address.startswith("inproc://")
        link = plug_object.dashboard_link
        assert link.startswith("http://127.0.0.1:") and link.endswith("/status")
        with urllib.request.urlopen(link, timeout=10) as response:
            assert response.status == 200
    assert f"Dask dashboard: {link}" in capsys.readouterr().err
    assert plug_object.dashboard_link == ""  # closed


def test_a_cluster_without_a_dashboard_prints_no_link(plug, capsys):
    plug_object = get_plug(plug, workers=1, memory=4, dashboard=False)
    with plug_object as client:
        assert plug_object.dashboard_link == ""
        assert client.dashboard_link  # distributed's link: to an HTTP server without a dashboard
    assert "Dask dashboard" not in capsys.readouterr().err
    code, out, err = sdt("up", plug, *SMALL, "--no-dashboard", "--check")
    assert code == 0, err
    assert "Dashboard" not in out + err and "check: 100 tasks ran on 1 workers" in out


def test_the_readme_and_the_guides_local_links_resolve():
    """Every relative link of README.md and docs/*.md names a file that exists (and its #anchor a heading)."""
    from .conftest import REPO

    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    checked = 0
    for page in pages:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: link to {target}: no such file"
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
                slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
                assert anchor in slugs, f"{page.name}: link to {target}: no such heading"
            checked += 1
    assert checked >= 10


def test_the_guide_says_where_each_listed_field_comes_from():
    from .conftest import REPO

    guide = " ".join((REPO / "docs" / "cluster-plug.md").read_text().split())
    assert (
        "The docstring's first line of the module the entry point names is the plug's summary in `sdt plugs`" in guide
    )
    assert "its version and distribution are those of the installed distribution" in guide
    assert "uv pip install -e" in guide and "python -m pip install -e" in guide
