"""The hooks a plug implements.

A plug is a module (or any object) named by an entry point in the group `sdt_core.plugs`;
the entry point's name is the plug's name. Its hooks are plain functions marked with
`sdt_core.hookimpl`:

    from sdt_core import Settings, hookimpl

    @hookimpl
    def plug_settings():
        return Settings

    @hookimpl
    def make_cluster(settings):
        from distributed import LocalCluster   # the backend is imported only here
        return LocalCluster(n_workers=settings.workers, **settings.extra)

Import the backend inside the hooks, never at the top of the module: `list_plugs()` loads
every plug module, and must stay as cheap as importing pluggy.

Who owns the cluster is what `make_cluster` returns. A cluster the plug started is
sdt-core's from then on: closed at the end, on failure and on Ctrl-C. `sdt_core.Attached`
names a scheduler the plug did not start; sdt-core connects to it and leaves it running:

    @hookimpl
    def make_cluster(settings):
        return Attached("tls://scheduler.example.org:8786", security=...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from distributed.deploy.cluster import Cluster

    from sdt_core.plugs.attached import Attached
    from sdt_core.plugs.leftovers import Leftover
    from sdt_core.plugs.plan import ClusterPlan
    from sdt_core.plugs.settings import Settings

PROJECT = "sdt_core"
hookspec = pluggy.HookspecMarker(PROJECT)
#: Marks a plug's function as the implementation of the sdt-core hook of the same name:
#: `@hookimpl` (pluggy's `HookimplMarker` for the project "sdt_core").
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def plug_settings() -> type[Settings]:
    """The plug's settings class: `sdt_core.Settings` or a subclass declaring more settings.

    Required. Called only on the plug itself, when plugs are listed and before every start;
    sdt-core derives validation, CLI options and documentation from it.
    """


@hookspec(firstresult=True)
def preflight(settings: Settings) -> None:
    """Check, with calls that create nothing, that a start with `settings` can succeed.

    Optional. Called on the plug being started, right before `make_cluster`: credentials,
    region or location, the given network resources. Raise `sdt_core.SettingsError` with
    one line naming what to set.
    """


@hookspec(firstresult=True)
def make_cluster(settings: Settings) -> Cluster | Attached:
    """Build and return the Dask cluster from validated settings, or the scheduler to attach to.

    Required. Called only on the plug being started, so exactly one plugin answers.
    `settings.extra` holds the pass-through keyword arguments for the backend.

    - A cluster the plug started (a `distributed` `Cluster`): sdt-core connects a client and
      owns the cluster from then on. It closes client and cluster when the work is done,
      when it fails and on Ctrl-C or SIGTERM. If the start fails midway, the plug removes
      what it created before raising; closing the cluster removes the rest.
    - `sdt_core.Attached(address, security=None)`: a running scheduler the plug did not
      start. sdt-core connects a client to it and at the end closes only that client; it
      never closes, scales, restarts or shuts down the scheduler or its workers.

    `sdt up` and `sdt run` print which of the two it is.
    """


@hookspec(firstresult=True)
def plan_cluster(settings: Settings) -> ClusterPlan:
    """What a start with `settings` would create, and its estimated cost per hour.

    Optional; shown by `sdt plan NAME`. Must create nothing and need no credentials.
    """


@hookspec(firstresult=True)
def clean_up(settings: Settings, older_than: float | None, dry_run: bool) -> Sequence[Leftover] | None:
    """Find what earlier starts of this plug left behind, and delete it unless `dry_run`.

    Optional; run by `sdt clean NAME` (without it, `sdt clean NAME` says the plug cannot).
    A start killed before it closed (SIGKILL, a lost laptop) leaves what it created; find it by
    the tag each start of the plug puts on everything it creates, with `settings` for where to
    look (a region, a resource group). Never touch anything untagged or what the user passed
    in. Only starts more than `older_than` seconds ago (None: any, also those of unknown age;
    `Leftover.older_than` tells). Return one `Leftover` per resource found, with `error` set for
    one that could not be deleted. Raise `sdt_core.SettingsError` for a setting it needs.
    """


@hookspec(firstresult=True)
def workers_share_files(settings: Settings) -> bool | None:
    """Whether the workers of a start with `settings` see this machine's files at the same paths.

    Optional. True: they run here, or on a file system shared with this machine; False: they
    never do (cloud machines), and `sdt run` refuses DATA on this machine before anything
    starts; None (also when not implemented): unknown. Whatever the answer, `sdt run` checks
    on one worker that it can reach DATA before the first key runs.
    """


@hookspec(firstresult=True)
def cluster_logs(settings: Settings, cluster: Cluster) -> Mapping[str, str] | None:
    """The logs of `cluster`'s scheduler and workers, read the plug's own way, or None.

    Optional. Called on the plug that made `cluster` at the end of every `sdt run`, also a
    failed or interrupted one, before the cluster closes. Without it, sdt-core writes what
    the scheduler, workers and nannies keep in memory to OUT/logs/ (`scheduler.log`,
    `worker-NAME.log`, `nanny-NAME.log`); a log returned here replaces the one of the same
    name (`"scheduler"`, `"worker-NAME"`, NAME the Dask worker's name) or is added beside
    them. For a backend whose processes write to a log service (a cloud's), read it there.
    """


@hookspec
def configure_dask(plug: str, settings: Settings) -> dict[str, Any] | None:
    """Dask config to apply while the cluster of `plug` is made and used, or None.

    Optional. Called on every loaded plug, so one plug may also tune another's clusters.
    Keys are dotted dask config keys, e.g. `{"distributed.worker.memory.spill": 0.7}`.
    The contributions are merged; the user's own dask config (YAML files, `DASK_*`
    environment variables, `dask.config.set`) and per-call overrides win over them.
    """


@hookspec(firstresult=True)
def adapt_cluster(settings: Settings, cluster: Cluster, minimum: int, maximum: int) -> bool | None:
    """Make `cluster` grow to `maximum` workers while keys wait and shrink to `minimum` when idle.

    Optional; used by `--adapt MIN:MAX` (without it, `--adapt` says the plug's clusters cannot
    scale, before anything starts). Called on the plug that made `cluster`, right after the
    start; for a `distributed` cluster, `sdt_core.adapt_to_run(cluster, minimum, maximum)`
    (its `adapt`, counting also the keys the run still holds back).
    Return True. Never called for a scheduler the plug attached to.
    """


@hookspec(firstresult=True)
def worker_plugins(settings: Settings) -> Sequence[Any] | None:
    """Dask worker plugins (`distributed.WorkerPlugin`) for the workers of a start with `settings`.

    Optional. Registered on the plug's own clusters right after the start, so each worker,
    also one that joins later, runs them: e.g. `sdt_core.GracefulStop`, which retires a worker
    told to stop (SIGTERM) without losing its keys, or a cloud's own interruption notice.
    sdt-core adds its own beside them: the warm-up that imports what keys need before a
    worker's first key (`sdt_core.warm_workers`).
    """
