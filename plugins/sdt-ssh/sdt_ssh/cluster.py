"""From settings to distributed's SSHCluster: connect, scheduler and worker options; start errors in one line."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sdt_core import ClusterStartError, list_plugs
from sdt_ssh.settings import SSHSettings

if TYPE_CHECKING:
    from distributed import SpecCluster

log = logging.getLogger("sdt_ssh")


def known_hosts_file(settings: SSHSettings) -> str | None:
    return os.path.expanduser(settings.known_hosts) if settings.known_hosts is not None else None


def connect_options(settings: SSHSettings) -> dict[str, Any]:
    """The keywords of asyncssh.connect for every host."""
    options: dict[str, Any] = dict(settings.connect_options)
    options |= {"port": settings.port, "known_hosts": known_hosts_file(settings)}
    options["connect_timeout"] = settings.connect_timeout
    if settings.user is not None:
        options["username"] = settings.user
    if settings.key_file is not None:
        options |= {"client_keys": [os.path.expanduser(settings.key_file)], "agent_path": None}
    for name in ("passphrase", "password"):
        if getattr(settings, name) is not None:
            options[name] = getattr(settings, name)
    return options


def scheduler_options(settings: SSHSettings) -> dict[str, Any]:
    return settings.scheduler_options | {
        "host": settings.scheduler_host,
        "port": settings.scheduler_port,
        "dashboard_address": f"{settings.scheduler_host}:{settings.dashboard_port}",
    }


def worker_options(settings: SSHSettings) -> dict[str, Any]:
    options = settings.worker_options | {
        "n_workers": settings.workers_per_host,
        "nthreads": settings.threads,
        "memory_limit": int((settings.memory or 0) * 2**30),
    }
    if settings.worker_host is not None:
        options["host"] = settings.worker_host
    return options


@contextlib.contextmanager
def plug_config_withheld() -> Iterator[None]:
    """Keep every plug's settings (`sdt.<plug>` in dask config: passphrases among them) out of the
    dask config SSHCluster hands the remote processes on their command line."""
    import dask.config

    sections = dask.config.get("sdt", default=None) or {}
    withheld: dict[str, Any] = {f"sdt.{p.name}": {} for p in list_plugs() if p.name in sections}
    with dask.config.set(withheld):
        yield


def make(settings: SSHSettings) -> SpecCluster:
    """Start the SSHCluster; a failed start has closed what it started, and raises one line."""
    from distributed import SSHCluster

    if settings.known_hosts is None:
        log.warning("ssh: host keys are not checked (known_hosts=none): a machine posing as a host gets the session")
    remote_log = logging.getLogger("distributed.deploy.ssh")  # every line the remote processes log at start
    if remote_log.level == logging.NOTSET:
        remote_log.setLevel(logging.WARNING)
    try:
        with plug_config_withheld():
            return SSHCluster(
                hosts=list(settings.hosts),
                connect_options=connect_options(settings),
                worker_options=worker_options(settings),
                scheduler_options=scheduler_options(settings),
                remote_python=settings.remote_python,
                **settings.extra,
            )
    except Exception as exc:
        raise ClusterStartError(f"plug 'ssh': the cluster did not start: {explain(exc, settings)}") from exc


def explain(exc: BaseException, settings: SSHSettings) -> str:
    """The cause of a failed start in one line, with what to check."""
    import asyncssh

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, (asyncssh.Error, OSError)):
        cause = cause.__cause__ or cause.__context__
    found = cause or exc
    text = " ".join(str(found).split())[:300] or type(found).__name__
    who = f"user {settings.user}" if settings.user else "your user"
    if isinstance(found, asyncssh.PermissionDenied):
        keys = f"the key {settings.key_file}" if settings.key_file else "your SSH keys"
        hint = f"check that the hosts accept {keys} for {who} (their authorized_keys), or give key_file and user"
    elif isinstance(found, asyncssh.HostKeyNotVerifiable):
        hint = f"the host's key is not the one in {settings.known_hosts}: check it with the host's owner"
    elif isinstance(found, (asyncssh.Error, OSError)):
        hint = f"check that every host runs sshd on port {settings.port} and that this machine reaches it"
    else:
        hint = f"check that {settings.remote_python} exists on every host, with this environment's packages"
    return f"{text}; {hint}"
