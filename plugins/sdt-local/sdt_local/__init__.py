"""Dask LocalCluster on this machine."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sdt_core import (
    Address,
    ClusterPlan,
    Host,
    Machines,
    RegisteredPlug,
    Settings,
    SettingsError,
    check_exposure,
    hookimpl,
    setting,
    warm_workers,
    worker_memory_gib,
)

if TYPE_CHECKING:
    from distributed import LocalCluster

log = logging.getLogger(__name__)
#: Dask config: how a nanny starts its worker process.
METHOD = "distributed.worker.multiprocessing-method"


class LocalSettings(Settings):
    passthrough = ("distributed:LocalCluster", "distributed:Nanny")
    reserved = {"n_workers": "workers", "threads_per_worker": "threads", "memory_limit": "memory"}

    memory: float | None = setting(  # type: ignore[assignment]
        None,
        "Memory per worker in GiB; default: what SDT was measured to need, 1.5 GiB for a 1-thread "
        "worker on the fast path, 9 GiB with --exact-sdt (sdt_core.worker_memory_gib).",
        ge=0.5,
    )
    processes: bool = setting(True, "Run each worker in its own process (False: threads here).")
    host: Host = setting("127.0.0.1", "Address the scheduler listens on (with worker processes).")
    dashboard_address: Address = setting(
        "127.0.0.1:8787", "Address of the dashboard and the scheduler's HTTP endpoints; port 0: any free one."
    )
    insecure: bool = setting(
        False, "Allow a scheduler or dashboard that other machines can reach (no authentication, no TLS)."
    )
    env: dict[str, str] = setting({}, "Environment variables of the worker processes (never shown).", secret=True)

    def check(self) -> None:
        """Fit workers x threads into the cores: adjust a default, refuse an explicit request.
        Size the memory of each worker from SDT's measured need, unless given, within the
        machine's. Refuse addresses other machines can reach, unless `insecure`."""
        self._fit_cores()
        if self.memory is None:
            self.memory = worker_memory_gib(self.threads)
        self._fit_memory()
        self._check_exposure()
        if self.env and not self.processes:
            raise SettingsError("plug 'local': env applies to worker processes; leave processes=True to give it")

    def _fit_memory(self) -> None:
        import psutil

        total = psutil.virtual_memory().total / 2**30
        if self.memory is not None and self.memory > total:
            raise SettingsError(
                f"plug 'local': memory {self.memory:g} GiB per worker is more than this machine's "
                f"{total:.1f} GiB; give at most {total:.1f}"
            )

    def _check_exposure(self) -> None:
        exposed = [
            f"{name} {value or '(every interface)'}"
            for name, value, host in (
                ("host", self.host, Host(self.host) if self.processes else None),
                ("dashboard_address", self.dashboard_address, Address(self.dashboard_address).host),
            )
            if (host is None and name == "dashboard_address") or (host is not None and not host.is_loopback)
        ]
        fix = "give a loopback address such as 127.0.0.1, or --set insecure=true"
        check_exposure("local", exposed, insecure=self.insecure, fix=fix)

    def _fit_cores(self) -> None:
        from dask.system import CPU_COUNT

        if self.workers * self.threads <= CPU_COUNT:
            return
        for name, other in (("threads", "workers"), ("workers", "threads")):
            if name not in self.given:
                fitted = max(1, CPU_COUNT // getattr(self, other))
                if fitted * getattr(self, other) <= CPU_COUNT:
                    log.debug("local: %s=%d so that workers x threads fit %d cores", name, fitted, CPU_COUNT)
                    setattr(self, name, fitted)
                    return
        raise SettingsError(
            f"plug 'local': workers x threads = {self.workers} x {self.threads} exceeds the "
            f"{CPU_COUNT} cores of this machine; lower workers or threads"
        )


@hookimpl
def plug_settings() -> type[LocalSettings]:
    return LocalSettings


@hookimpl
def configure_dask(plug: str, settings: Settings) -> dict[str, Any] | None:
    """Keep a worker over its limit alive; spill sooner when the limits exceed the machine;
    fork worker processes from a server that ignores Ctrl-C (`_ignoring_interrupts`); never
    give up a worker its nanny is restarting.

    SDT's solvers peak briefly above a few GiB: like SDT's own LocalClient, a worker is not
    restarted for it (which would only rerun the same peak). Dask's thresholds are fractions
    of each worker's limit; when the limits add up to more than this machine has, they are
    scaled by the share the machine can really give, so spilling starts before it runs out.

    Dask closes a worker's nanny for good when no worker of its name is registered 15 s after
    one was lost (`distributed.deploy.lost-worker-timeout`, meant for lost batch jobs). Keys
    that keep killing their worker, or workers restarted for memory, leave a name unregistered
    for a few seconds at a time, and one unlucky look took the workers one by one until none
    was left and the run waited forever. A local nanny restarts its worker itself; only when
    none of its name registers for an hour is it given up.

    Each worker holds only the keys it runs (`distributed.scheduler.worker-saturation` 1.0, not
    1.1, which queues one more on a 1-thread worker): when a key kills its worker, Dask blames
    every key the worker held, and four such deaths fail a key as KilledWorker. A key that
    merely waited behind keys that kill their workers was failed so.
    """
    if not isinstance(settings, LocalSettings):
        return None
    from distributed.system import MEMORY_LIMIT

    config: dict[str, Any] = {
        "distributed.worker.memory.terminate": False,
        METHOD: "forkserver",
        "distributed.deploy.lost-worker-timeout": "1h",
        "distributed.scheduler.worker-saturation": 1.0,
    }
    total = settings.workers * (settings.memory or 0) * 2**30
    if total <= MEMORY_LIMIT:
        return config
    share = MEMORY_LIMIT / total
    log.warning(
        "local: %d workers x %.2f GiB exceeds this machine's %.1f GiB; "
        "workers spill to disk from %.0f%% of their limit",
        settings.workers,
        settings.memory,
        MEMORY_LIMIT / 2**30,
        70 * share,
    )
    return config | {
        "distributed.worker.memory.target": round(0.6 * share, 3),
        "distributed.worker.memory.spill": round(0.7 * share, 3),
        "distributed.worker.memory.pause": round(0.8 * share, 3),
    }


@hookimpl
def plan_cluster(settings: LocalSettings) -> ClusterPlan:
    """This machine's workers, threads and memory against its cores; no price (nothing is rented)."""
    import psutil
    from dask.system import CPU_COUNT

    kind = "process on this machine" if settings.processes else "thread pool in this process"
    reach = "any machine that reaches it (insecure=True)" if settings.insecure else "this machine only"
    where = settings.host if settings.processes else "inproc://"
    cores = f"{settings.workers} x {settings.threads} threads on {CPU_COUNT} cores"
    memory = f"{settings.workers} x {settings.memory:g} GiB of {psutil.virtual_memory().total / 2**30:.1f} GiB"
    return ClusterPlan(
        plug="local",
        machines=(Machines("workers", settings.workers, kind, settings.threads, settings.memory or 0, None),),
        image=None,
        where="this machine",
        network=f"scheduler on {where}, reachable by {reach}",
        tls=False,
        notes=(f"{cores}; {memory}", "the scheduler runs in this process"),
    )


@hookimpl
def workers_share_files(settings: LocalSettings) -> bool:
    """Workers on this machine: they see its files."""
    return True


@hookimpl
def adapt_cluster(settings: LocalSettings, cluster: LocalCluster, minimum: int, maximum: int) -> bool:
    """Dask's adaptive scaling, counting the keys the run holds back: workers of the same size
    start while keys wait, idle ones retire."""
    from sdt_core import adapt_to_run

    adapt_to_run(cluster, minimum, maximum)
    return True


@hookimpl
def worker_plugins(settings: LocalSettings) -> list[Any]:
    """A worker process told to stop (SIGTERM) retires gracefully, and its nanny starts it again."""
    from sdt_core import GracefulStop

    return [GracefulStop(restart=True)] if settings.processes else []


@hookimpl
def make_cluster(settings: LocalSettings) -> LocalCluster:
    from distributed import LocalCluster

    forked = _ignoring_interrupts(settings.env if settings.processes else {})
    kwargs = settings.backend_kwargs()
    del kwargs["insecure"]  # sdt-core's check, not a LocalCluster parameter
    if not settings.processes:
        del kwargs["env"]  # workers in this process share its environment (check() refuses one given)
    elif forked:  # the server's environment is the one it started with: give the workers today's
        kwargs["env"] = {**os.environ, **kwargs["env"]}
    if not settings.processes and "protocol" not in kwargs:
        kwargs["host"] = None  # in-process workers talk over inproc://, which has no host
    return LocalCluster(
        n_workers=settings.workers,
        threads_per_worker=settings.threads,
        memory_limit=int((settings.memory or 0) * 2**30),
        **kwargs,
    )


SERVER_SETUP = "sdt_local.forkserver"
SERVER_WARM = "sdt_local.warm"
SAFE_PATH = "PYTHONSAFEPATH"


def _ignoring_interrupts(env: dict[str, str]) -> bool:
    """Start the server worker processes are forked from (`METHOD` forkserver) with SIGINT and
    SIGHUP ignored; it removes its socket when it ends (`SERVER_SETUP`); unless dask config
    `sdt.warm-workers` is false, it imports what keys need before it forks any (`SERVER_WARM`).

    The workers inherit it: a Ctrl-C in a terminal goes to the whole process group, and the
    workers would each print a traceback; sdt closes them instead. Nothing if another method
    is set; a server that runs already keeps how it started (warm or not).
    Whether workers are forked from that server: they then get this process's environment as
    it is now (the server keeps the one it started with: this process's, with `env` and what
    Dask gives a worker at its start, `_server_environment`).
    """
    import dask.config

    if dask.config.get(METHOD) != "forkserver":
        return False
    import multiprocessing.forkserver

    # The server imports this module before it starts serving. Setting SIGINT to SIG_IGN here
    # instead, around its start, lost a Ctrl-C that came in that moment: the run went on.
    preload = list(getattr(multiprocessing.forkserver._forkserver, "_preload_modules", None) or ["__main__"])
    wanted = [name for name in preload if name not in (SERVER_SETUP, SERVER_WARM)] + [SERVER_SETUP]
    if warm_workers():  # after SERVER_SETUP: a Ctrl-C during its seconds of imports is ignored too
        wanted.append(SERVER_WARM)
    if wanted != preload:
        multiprocessing.set_forkserver_preload(wanted)
    with _server_environment(_worker_start_environment(env)):
        multiprocessing.forkserver.ensure_running()
    return True


def _worker_start_environment(env: dict[str, str]) -> dict[str, str]:
    """What a worker process has in its environment from its start: Dask's
    `distributed.nanny.pre-spawn-environ` (one BLAS and OpenMP thread, ...), then `env`."""
    import dask.config

    pre_spawn = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return {str(k): str(v) for k, v in pre_spawn.items()} | env


@contextlib.contextmanager
def _server_environment(env: dict[str, str]) -> Iterator[None]:
    """Python started meanwhile has `env`, and puts no current directory on `sys.path`
    (PYTHONSAFEPATH, 3.11+); this process's environment is as before afterwards.

    The forkserver runs `python -c ...`, which puts the current directory first on its path:
    a module there named like one it imports (pluggy.py beside the user's CSV files) was
    imported and run by it, and by every worker forked from it.

    A native library reads its thread count from the environment once, when it is loaded:
    Dask's nanny sets OMP_NUM_THREADS=1 and the like for a worker's start, but a forked
    worker gets them only after its fork. The numpy, scipy and cvxpy a warm server loaded
    had run two BLAS and OpenMP threads in each worker (one in a worker that loaded them
    itself), so the server starts with the workers' environment.
    """
    given = {SAFE_PATH: "1"} | env
    before = {name: os.environ.get(name) for name in given}
    os.environ.update(given)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class LocalClient(RegisteredPlug):
    """The README's LocalClient: `LocalClient(workers=2, threads=2, memory=6.0, **kwargs)`.

    Other keyword arguments are settings of this plug or pass to `distributed.LocalCluster`.
    """

    plug_name = "local"
