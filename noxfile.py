"""Test sessions. `nox` runs them all: lint, the core suite, each plug alone, the report in a browser."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "tests", "plug", "report", "bench_miniature"]

PLUGS = ["local", "fargate", "azure", "address", "ssh", "slurm", "gateway"]
TEST_TOOLS = ["pytest>=8.0", "pytest-timeout>=2.2", "psutil>=5.9"]
#: What a plug's own tests need beyond TEST_TOOLS: fargate's run against moto's AWS API, address's
#: make TLS certificates, gateway's start a real Dask Gateway server.
PLUG_TEST_TOOLS = {
    "fargate": ["moto[server]>=5.0", "boto3>=1.28"],
    "address": ["cryptography>=42"],
    "gateway": ["dask-gateway-server[local]>=2024.1.0"],
}
#: Debian packages of the real services a plug's tests start (their fixtures start and stop them).
PLUG_DEBIAN_PACKAGES: dict[str, list[str]] = {
    "ssh": ["openssh-server", "openssh-client"],  # sshd (tests/conftest.py)
    "slurm": ["slurm-wlm", "munge"],  # slurmctld, slurmd, the client commands and munged (tests/conftest.py)
}


def install_debian(session: nox.Session, packages: list[str]) -> None:
    """Install the Debian packages that are missing (this machine's own services for the tests)."""
    missing = [
        name
        for name in packages
        if "install ok installed"
        not in session.run("dpkg-query", "-W", "-f=${Status}", name, external=True, silent=True, success_codes=[0, 1])
    ]
    if not missing:
        return
    if os.geteuid() != 0:
        session.error(
            f"the tests need the Debian packages {', '.join(missing)}: install them as root (apt-get install)"
        )
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    session.run(*apt, "update", "-qq", external=True)
    session.run(
        *apt,
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        *missing,
        external=True,
        env={"DEBIAN_FRONTEND": "noninteractive"},
    )


def install_npm(session: nox.Session, package: str, command: str) -> None:
    """Install an npm package globally unless its `command` is on PATH (a service the tests start)."""
    if shutil.which(command):
        return
    if not shutil.which("npm"):
        install_debian(session, ["nodejs", "npm"])
    session.run("npm", "install", "-g", "--no-fund", "--no-audit", "--loglevel=error", package, external=True)


def sync_workspace(session: nox.Session) -> None:
    """The uv workspace, all extras and the test tools, into the session's environment, compiled.

    Compiled once here because a machine may forbid writing bytecode at import
    (PYTHONDONTWRITEBYTECODE): each `sdt` run and each Dask worker would then compile
    SDT's stack again (measured: 14.5 s against 5.4 s to import it).
    """
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--all-extras",
        "--group",
        "test",
        "--compile-bytecode",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )
    session.run_install("python", "-m", "compileall", "-q", "sdt_core", "plugins", silent=True)


@nox.session
def tests(session: nox.Session) -> None:
    """sdt-core's suite (tests/), from the uv workspace with every plug and extra installed.

    Each plug's own tests run once, in its `plug` session (installed alone, not editable);
    `nox -s tests -- tests plugins` runs both here.
    """
    install_npm(session, "azurite", "azurite-blob")  # Azure Blob Storage on loopback (sdt_core.testing.azurite)
    sync_workspace(session)
    session.run("pytest", *(session.posargs or ["tests"]))


@nox.session
@nox.parametrize("plug", PLUGS)
def plug(session: nox.Session, plug: str) -> None:
    """One plug alone: sdt-core and that plug installed (not editable) into a fresh env."""
    install_debian(session, PLUG_DEBIAN_PACKAGES.get(plug, []))
    packages = [".", f"./plugins/sdt-{plug}", *TEST_TOOLS, *PLUG_TEST_TOOLS.get(plug, [])]
    session.install("--compile-bytecode", "--no-sources", *packages)  # see sync_workspace
    session.run("pytest", f"plugins/sdt-{plug}/tests", *session.posargs)


@nox.session
def report(session: nox.Session) -> None:
    """The fleet report of a real run in Debian's chromium, offline (tests/browser, marker `browser`).

    Its screenshot and the page are kept in the session's folder, `.nox/report/artifacts/`.
    """
    install_debian(session, ["chromium"])
    sync_workspace(session)
    session.install("playwright>=1.48")  # its own browser download is not used: the test runs Debian's chromium
    artifacts = Path(session.virtualenv.location) / "artifacts"
    session.run("pytest", "tests/browser", "-m", "browser", *session.posargs, env={"SDT_ARTIFACTS": str(artifacts)})
    session.log(f"screenshot: {artifacts / 'report.png'}")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and formatting) on everything; mypy on the public packages."""
    session.install("ruff>=0.6", "mypy>=1.10")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def bench_miniature(session: nox.Session) -> None:
    """Every figure of the benchmark suite in miniature (tests/test_bench.py, marker `bench`): none breaks unseen."""
    sync_workspace(session)
    session.run("pytest", "tests/test_bench.py", "-m", "bench", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite (not part of `nox`): writes bench/results/latest.json and .md."""
    sync_workspace(session)
    session.run("python", "bench/run.py", *session.posargs)
