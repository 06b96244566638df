"""The settings of the ssh plug, and the checks across them that need no network."""

from __future__ import annotations

import logging
import sys
from typing import Any

from sdt_core import Host, Settings, SettingsError, check_exposure, setting, worker_memory_gib

log = logging.getLogger("sdt_ssh")

#: Keys of worker_options / scheduler_options / connect_options that a setting sets.
SET_BY = {
    "worker_options": {"nthreads": "threads", "memory_limit": "memory", "n_workers": "workers_per_host"},
    "scheduler_options": {"port": "scheduler_port", "dashboard_address": "dashboard_port"},
    "connect_options": {
        "port": "port",
        "username": "user",
        "client_keys": "key_file",
        "passphrase": "passphrase",
        "password": "password",
        "known_hosts": "known_hosts",
        "connect_timeout": "connect_timeout",
    },
}
LOOPBACK = "127.0.0.1"


class SSHSettings(Settings):
    passthrough = ("distributed:SSHCluster",)

    hosts: list[str] = setting(
        [], "SSH hosts: the first runs the scheduler, each other one workers (repeat a host to run both there)."
    )
    user: str | None = setting(None, "User name on the hosts; default: ~/.ssh/config's, else this user's.")
    port: int = setting(22, "SSH port of the hosts.", ge=1, le=65535)
    key_file: str | None = setting(
        None, "Private key to log in with (only that key); default: the SSH agent's and ~/.ssh's keys."
    )
    passphrase: str | None = setting(None, "Passphrase of key_file (never shown).", secret=True)
    password: str | None = setting(
        None, "Password to log in with, when the hosts accept one (never shown).", secret=True
    )
    known_hosts: str | None = setting(
        "~/.ssh/known_hosts",
        "File of trusted host keys, as ssh writes it; none: trust any host key (with a warning).",
    )
    connect_timeout: float = setting(30.0, "Seconds to wait for each SSH connection.", gt=0)
    connect_options: dict[str, Any] = setting(
        {}, "More keywords of asyncssh.connect (values never shown).", secret=True
    )
    workers: int | None = setting(  # type: ignore[assignment]
        None, "Workers in all; default workers_per_host on each worker host.", ge=1
    )
    workers_per_host: int | None = setting(
        None, "Worker processes on each worker host; default 1, or workers / worker hosts.", ge=1
    )
    memory: float | None = setting(  # type: ignore[assignment]
        None,
        "Memory per worker in GiB; default: what SDT was measured to need (sdt_core.worker_memory_gib).",
        ge=0.5,
    )
    remote_python: str | None = setting(None, "Python on the hosts; default: this one's (sys.executable).")
    scheduler_host: str | None = setting(
        None, "Address the scheduler listens on; default 127.0.0.1 when every host is loopback, else the first host."
    )
    scheduler_port: int = setting(0, "Port of the scheduler (0: any free one).", ge=0, le=65535)
    dashboard_port: int = setting(
        8787, "Port of the dashboard, on the scheduler's address (0: any free one).", ge=0, le=65535
    )
    worker_host: str | None = setting(
        None, "Address the workers listen on; default 127.0.0.1 when every host is loopback, else every interface."
    )
    insecure: bool = setting(
        False, "Allow a scheduler or workers that other machines can reach (no authentication, no TLS)."
    )
    worker_options: dict[str, Any] = setting({}, "More keywords of the workers (distributed.Nanny).")
    scheduler_options: dict[str, Any] = setting({}, "More keywords of the scheduler (distributed.Scheduler).")

    def check(self) -> None:
        """Hosts, the spread of workers over them, memory, and who can reach the cluster."""
        self._check_hosts()
        self._spread_workers()
        if self.memory is None:
            self.memory = worker_memory_gib(self.threads)
        if self.remote_python is None:
            self.remote_python = sys.executable
        for name, keys in SET_BY.items():
            for key in getattr(self, name):
                if key in keys:
                    raise SettingsError(f"plug 'ssh': {name} {key} is set from the setting '{keys[key]}'; give that")
        self._check_exposure()

    @property
    def worker_hosts(self) -> list[str]:
        return self.hosts[1:]

    def _check_hosts(self) -> None:
        if len(self.hosts) < 2:
            raise SettingsError(
                f"plug 'ssh': hosts needs at least two, got {len(self.hosts)}: the scheduler's host first, then one "
                "per worker host (repeat a host to run both there), e.g. --set hosts=a,b,c"
            )
        for host in self.hosts:
            try:
                Host.sdt_check(host)
            except ValueError:
                raise SettingsError(f"plug 'ssh': hosts: {host!r} is not a host name or an IP address") from None
        loopback = [Host(h).is_loopback for h in self.hosts]
        if loopback[0] and not all(loopback) and self.scheduler_host is None:
            raise SettingsError(
                f"plug 'ssh': the scheduler's host {self.hosts[0]} is loopback, which the workers on other hosts "
                "cannot reach; give its network address first in hosts, or scheduler_host"
            )
        local = all(loopback)
        if self.scheduler_host is None:
            self.scheduler_host = LOOPBACK if local else self.hosts[0]
        if self.worker_host is None and local:
            self.worker_host = LOOPBACK
        for name in ("scheduler_host", "worker_host"):
            value = getattr(self, name)
            if value is not None:
                try:
                    Host.sdt_check(value)
                except ValueError:
                    raise SettingsError(f"plug 'ssh': {name} {value!r} is not a host name or an IP address") from None

    def _spread_workers(self) -> None:
        count = len(self.worker_hosts)
        if self.workers_per_host is None:
            workers = self.workers or count
            if workers % count:
                raise SettingsError(
                    f"plug 'ssh': workers={workers} cannot be spread evenly over {count} worker hosts; "
                    f"give a multiple of {count}, or workers_per_host"
                )
            self.workers_per_host = workers // count
        elif self.workers is not None and self.workers != self.workers_per_host * count:
            raise SettingsError(
                f"plug 'ssh': workers={self.workers} does not match workers_per_host={self.workers_per_host} on "
                f"{count} worker hosts; give one of the two"
            )
        self.workers = self.workers_per_host * count

    def exposed(self) -> list[str]:
        """What other machines can reach, in words; empty when everything listens on loopback."""
        found = []
        if not Host(self.scheduler_host or "").is_loopback:
            found.append(f"the scheduler and its dashboard on {self.scheduler_host}")
        if self.worker_host is None or not Host(self.worker_host).is_loopback:
            found.append(f"the workers on {self.worker_host or 'every interface of their hosts'}")
        return found

    def _check_exposure(self) -> None:
        fix = "on a network you trust, give --set insecure=true"
        check_exposure("ssh", self.exposed(), insecure=self.insecure, fix=fix)
