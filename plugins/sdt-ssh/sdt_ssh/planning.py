"""What a start would run where (`sdt plan ssh`): nothing is rented, the hosts are yours."""

from __future__ import annotations

from collections import Counter

from sdt_core import ClusterPlan, Machines, Prices
from sdt_ssh.settings import SSHSettings

PRICES = Prices(taken="2026-12-01", source="nothing is rented: the hosts are yours", where="your hosts")


def plan(settings: SSHSettings) -> ClusterPlan:
    scheduler = Machines("scheduler", 1, f"process on {settings.hosts[0]}", 1, 0, 0.0)
    per_host = settings.workers_per_host or 1
    workers = tuple(
        Machines("workers", per_host * times, f"worker process on {host}", settings.threads, settings.memory or 0, 0.0)
        for host, times in Counter(settings.worker_hosts).items()
    )
    user = settings.user or "your user"
    exposed = settings.exposed()
    network = (
        "loopback only (127.0.0.1)"
        if not exposed
        else " and ".join(exposed) + ", reachable from other machines (insecure=True)"
    )
    notes = [f"scheduler {settings.scheduler_host}:{settings.scheduler_port or 'any free port'}, no memory limit"]
    if settings.known_hosts is None:
        notes.append("host keys are not checked (known_hosts=none)")
    return ClusterPlan(
        plug="ssh",
        machines=(scheduler, *workers),
        image=f"{settings.remote_python} on each host, over SSH as {user} on port {settings.port}",
        where=", ".join(dict.fromkeys(settings.hosts)),
        network=network,
        tls=False,
        prices=PRICES,
        notes=tuple(notes),
    )
