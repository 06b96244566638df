"""A Dask cluster of threads inside this process: no worker processes, for debugging."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdt_core import Settings, hookimpl, setting

if TYPE_CHECKING:
    from distributed import LocalCluster


class InProcessSettings(Settings):
    threads: int = Settings.override("threads", 1)
    dashboard_port: int = setting(0, "Port of the dashboard on 127.0.0.1 (0: any free one).", ge=0, le=65535)


@hookimpl
def plug_settings() -> type[InProcessSettings]:
    return InProcessSettings


@hookimpl
def make_cluster(settings: InProcessSettings) -> LocalCluster:
    from distributed import LocalCluster  # the backend is imported here, never at the top

    return LocalCluster(
        n_workers=settings.workers,
        threads_per_worker=settings.threads,
        memory_limit=int(settings.memory * 2**30),
        processes=False,
        dashboard_address=f"127.0.0.1:{settings.dashboard_port}",
    )
