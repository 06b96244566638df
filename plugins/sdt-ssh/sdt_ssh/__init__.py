"""Dask over SSH hosts, through distributed's SSHCluster: the first host runs the scheduler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdt_core import RegisteredPlug, hookimpl
from sdt_ssh.settings import SSHSettings

if TYPE_CHECKING:
    from distributed import SpecCluster

    from sdt_core import ClusterPlan

__all__ = ["SSHClient", "SSHSettings"]


@hookimpl
def plug_settings() -> type[SSHSettings]:
    return SSHSettings


@hookimpl
def preflight(settings: SSHSettings) -> None:
    """Key file, known hosts and host names, before anything starts; no SSH connection."""
    from sdt_ssh import checks

    checks.check(settings)


@hookimpl
def workers_share_files(settings: SSHSettings) -> bool | None:
    """True when every worker host is this machine (localhost, a loopback address); else unknown: `sdt run`
    asks a worker before the first key. No name is looked up."""
    import ipaddress

    def here(host: str) -> bool:
        try:
            return host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    return True if all(here(host) for host in settings.worker_hosts) else None


@hookimpl
def make_cluster(settings: SSHSettings) -> SpecCluster:
    from sdt_ssh import cluster

    return cluster.make(settings)


@hookimpl
def plan_cluster(settings: SSHSettings) -> ClusterPlan:
    from sdt_ssh import planning

    return planning.plan(settings)


class SSHClient(RegisteredPlug):
    """A ClientPlug on SSH hosts: `SSHClient(hosts=["a", "b"], key_file=..., workers=2, threads=1)`."""

    plug_name = "ssh"
