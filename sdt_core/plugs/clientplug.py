"""ClientPlugs: objects that turn workers, threads, memory and backend options into a Client.

`ClientPlug` keeps the interface of SDT's Dask tool README, so a user's own subclass that
overrides `init_client()` works wherever a plug is accepted. `RegisteredPlug` is a
ClientPlug backed by an installed plug (`get_plug("local", ...)`, `LocalClient(...)`).

A plug owns the cluster it started (`cluster`), and closing the plug closes it; a plug
that attached to a scheduler it did not start (`cluster` None) closes only its client.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from sdt_core.errors import ClusterStartError, PlugUnusableError, SdtError
from sdt_core.plugs.attached import Attached
from sdt_core.plugs.discovery import registry
from sdt_core.plugs.idle import IDLE_CONFIG, install, resolve_idle_timeout
from sdt_core.plugs.imports import import_object, importable
from sdt_core.plugs.scaling import parse_adapt
from sdt_core.plugs.warm import warm_workers

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from distributed import Client
    from distributed.deploy.cluster import Cluster

    from sdt_core.plugs.plan import ClusterPlan

log = logging.getLogger(__name__)


class _DaskConfigModule:
    """`plug.dask_config` is the `dask.config` module, imported on first use."""

    def __get__(self, obj: object, owner: type | None = None) -> ModuleType:
        import dask.config

        return dask.config


class ClientPlug:
    """Base of all ClientPlugs, as in the README: `init_client()` returns a ready Client.

    Also closes client and cluster with `close()`, and as a context manager:
    `with plug as client: ...` closes both even when the body raises. A plug whose
    `cluster` is None (it connected to a scheduler it did not start) closes only the client.
    """

    dask_config = _DaskConfigModule()
    client: Client | None = None
    cluster: Any = None
    #: Whether the workers see this machine's files at the same paths (they run here, or share
    #: its file system): True; False (cloud machines: `sdt run` refuses DATA on this machine
    #: before the start); None: unknown. Whatever it says, `sdt run` checks on a worker that it
    #: can reach DATA before the first key. Set it in a subclass; an installed plug's comes
    #: from its `workers_share_files` hook.
    workers_share_files: bool | None = None

    def __init__(self, workers: int = 2, threads: int = 2, memory: float = 6.0, **kwargs: Any):
        self.workers = workers
        self.threads = threads
        self.memory = memory
        self.kwargs = kwargs
        self.client = None
        self.cluster = None

    def init_client(self) -> Client:
        """Start the cluster and return a Client connected to it."""
        raise NotImplementedError(f"{type(self).__name__} must implement init_client()")

    @property
    def owns_cluster(self) -> bool:
        """Whether closing this plug closes its cluster: it started it (False: attached to a scheduler)."""
        return self.cluster is not None

    def cluster_line(self) -> str:
        """One line for a running plug: who started its cluster, and what closing the plug does to it."""
        if self.owns_cluster:
            return f"Cluster: started by {self._starter()}; closed at the end"
        address = getattr(getattr(self.client, "scheduler", None), "address", "?")
        return f"Cluster: attached to {address} (not started by sdt; left running)"

    def _starter(self) -> str:
        return type(self).__name__

    def close(self) -> None:
        """Close the client, then the cluster (if the plug started one); safe to call twice."""
        client, cluster = getattr(self, "client", None), getattr(self, "cluster", None)
        self.client = self.cluster = None
        try:
            if client is not None:
                client.close()
        finally:
            if cluster is not None:
                cluster.close()

    def cluster_logs(self) -> Mapping[str, str] | None:
        """Logs of the running cluster read this plug's own way, by name ("scheduler",
        "worker-NAME"), or None: `sdt run` then saves what the scheduler and workers keep."""
        return None

    def __enter__(self) -> Client:
        try:
            return self.client if self.client is not None else self.init_client()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RegisteredPlug(ClientPlug):
    """A ClientPlug backed by an installed plug; settings are validated on construction.

    `init_client()` runs the plug's preflight checks, makes the cluster (or learns the
    address of the scheduler to attach to: `sdt_core.Attached`), connects, and compares the
    versions of client, scheduler and workers (dask config `sdt.version-mismatch`).

    Arguments left as None take their value from dask config `sdt.<plug>.<name>`, else the
    plug's declared default (`sdt info NAME`). `config_overrides` is dask config that wins
    over the plug's `configure_dask` contributions and the user's own config.
    """

    plug_name: ClassVar[str] = ""

    def __init__(
        self,
        workers: int | None = None,
        threads: int | None = None,
        memory: float | None = None,
        *,
        plug: str | None = None,
        config_overrides: Mapping[str, Any] | None = None,
        adapt: str | tuple[int, int] | None = None,
        **kwargs: Any,
    ):
        self.plug = plug or self.plug_name
        given = {"workers": workers, "threads": threads, "memory": memory}
        values = {k: v for k, v in given.items() if v is not None} | kwargs
        self.settings = registry().settings(self.plug, values)
        super().__init__(self.settings.workers, self.settings.threads, self.settings.memory)
        self.kwargs = self.settings.extra
        self.config_overrides = dict(config_overrides or {})
        self._config: AbstractContextManager[Any] | None = None
        #: The scheduler this plug attached to, when `make_cluster` returned `Attached` (else None).
        self.attached: Attached | None = None
        #: Seconds the started cluster may sit idle before it closes itself (dask config
        #: `sdt.idle-timeout`), or None: set when the cluster starts.
        self.idle_timeout: float | None = None
        self.workers_share_files = registry().workers_share_files(self.plug, self.settings)
        self._dashboard = ""  # found when the cluster starts
        #: (MIN, MAX) workers the started cluster adapts between (`--adapt`), or None: fixed size.
        self.adapt: tuple[int, int] | None = None
        self.set_adapt(adapt)

    def set_adapt(self, adapt: str | tuple[int, int] | None) -> None:
        """Make the cluster adapt between MIN and MAX workers once started; `SdtError` if the plug's cannot."""
        bounds = parse_adapt(adapt)
        if bounds is not None and not registry().implements(self.plug, "adapt_cluster"):
            raise SdtError(
                f"plug '{self.plug}' cannot scale its clusters: it implements no adapt_cluster hook; leave out --adapt"
            )
        self.adapt = bounds

    def init_client(self) -> Client:
        if self.client is not None:
            return self.client
        import dask.config
        from distributed import Client

        from sdt_core.plugs.versions import check_cluster

        plugs = registry()
        config = plugs.dask_config(self.plug, self.settings) | self.config_overrides
        self.idle_timeout = resolve_idle_timeout(self.config_overrides, self._priced)
        config[IDLE_CONFIG] = self.idle_timeout  # what the plug passes to a scheduler it starts elsewhere
        self._config = dask.config.set(config)  # held while the cluster lives
        try:
            plugs.preflight(self.plug, self.settings)
            try:
                made = plugs.make_cluster(self.plug, self.settings)
                if isinstance(made, str):
                    raise PlugUnusableError(
                        f"plug '{self.plug}': make_cluster returned the string {made!r}: "
                        "return sdt_core.Attached(address) for a scheduler it did not start"
                    )
                if isinstance(made, Attached):
                    self.attached = made
                    self.client = Client(made.address, security=made.security, timeout=made.timeout)
                else:
                    self.cluster = made
                    self.client = Client(made)
            except SdtError:
                raise
            except Exception as exc:  # the backend's own error: one line, the traceback chained
                text = " ".join(str(exc).split())[:300]
                what = f"cannot connect to {self.attached.address}" if self.attached else "the cluster did not start"
                raise ClusterStartError(f"plug '{self.plug}': {what}: {type(exc).__name__}: {text}") from exc
            # Workers of a scheduler the plug attached to run none of its code: they need sdt-core, not the plug.
            own = [] if self.attached else [d for d in [plugs.plugs[self.plug].distribution] if d]
            check_cluster(self.client, own)
            self.watch_idle()
            self._prepare_workers()
            self._dashboard = self._find_dashboard()
        except BaseException:
            self.close()
            raise
        if self._dashboard:
            print(f"Dask dashboard: {self._dashboard}", file=sys.stderr)
        return self.client

    def _prepare_workers(self) -> None:
        """On a cluster the plug started: its worker plugins (`worker_plugins`), sdt-core's warm-up
        (`sdt_core.plugs.warm`: imports as dask config `sdt.warm-workers` says), and `--adapt`.

        A scheduler the plug attached to gets none of them: a plugin registered there stays on
        it, and on every worker that joins it, after this client is gone."""
        plugs = registry()
        if self.cluster is None:
            if self.adapt is not None:
                raise SdtError(
                    f"plug '{self.plug}' attached to a scheduler it did not start, which sdt-core never scales; "
                    "leave out --adapt"
                )
            return
        for plugin in plugs.worker_plugins(self.plug, self.settings):
            self.client.register_plugin(plugin)  # type: ignore[union-attr]
        from sdt_core.plugs.warmup import WarmUp

        # waits until each worker has imported what keys need, if warm, and looked at its memory
        self.client.register_plugin(WarmUp(imports=warm_workers()))  # type: ignore[union-attr]
        if self.adapt is not None:
            plugs.adapt_cluster(self.plug, self.settings, self.cluster, *self.adapt)

    def _find_dashboard(self) -> str:
        """The link to the dashboard the scheduler serves, or ""; distributed's own if the scheduler cannot tell."""
        from sdt_core.plugs.dashboard import dashboard_link

        assert self.client is not None
        try:
            return dashboard_link(self.client, self.cluster)
        except Exception as exc:  # e.g. an attached scheduler that runs no code sent to it
            log.debug("plug '%s': the scheduler did not tell its dashboard (%s)", self.plug, exc)
            return str(getattr(self.client, "dashboard_link", "") or "")

    def _priced(self) -> bool:
        """Whether the plug's plan for these settings has prices (its clusters cost money by the hour)."""
        try:
            plan = self.plan()
        except Exception as exc:  # a broken plan must not stop a start
            log.warning("plug '%s': plan_cluster raised %s; idle shutdown is off unless set", self.plug, exc)
            return False
        return plan is not None and plan.prices is not None

    def watch_idle(self, keeper: bool = False) -> bool:
        """Make the started cluster close itself after `idle_timeout` seconds with no task and no
        client (with `keeper`, but this plug's own); whether it does. Nothing for an attached one."""
        if self.client is None or self.cluster is None or self.idle_timeout is None:
            return False
        try:
            install(self.client, self.idle_timeout, keeper)
        except Exception as exc:  # e.g. a scheduler that cannot import sdt_core
            text = " ".join(str(exc).split())[:200]
            log.warning("plug '%s': idle shutdown is off, the scheduler could not watch: %s", self.plug, text)
            return False
        return True

    def preflight(self) -> None:
        """Run the plug's read-only checks for these settings (the `preflight` hook)."""
        registry().preflight(self.plug, self.settings)

    def make_cluster(self) -> Cluster:
        """The plug's cluster for these settings, without preflight, client or Dask config (for tests)."""
        return registry().make_cluster(self.plug, self.settings)

    def cluster_logs(self) -> Mapping[str, str] | None:
        """The logs the plug reads itself from the running cluster (the `cluster_logs` hook), or None."""
        if self.cluster is None:
            return None
        return registry().cluster_logs(self.plug, self.settings, self.cluster)

    def plan(self) -> ClusterPlan | None:
        """What a start would create (the `plan_cluster` hook), or None if the plug cannot tell."""
        return registry().plan(self.plug, self.settings)

    def contributed_config(self) -> dict[str, Any]:
        """The Dask config the plugs contribute to this start (`configure_dask`), less what the user set."""
        return registry().dask_config(self.plug, self.settings)

    @property
    def dashboard_link(self) -> str:
        """The running cluster's dashboard address, or "" when it has none or is not running.

        The address the dashboard listens on, as its scheduler tells it; "" when the scheduler
        serves no dashboard (e.g. `LocalCluster(dashboard_address=None)`).
        """
        return self._dashboard if self.client is not None else ""

    def _starter(self) -> str:
        return f"plug '{self.plug}'"

    def close(self) -> None:
        try:
            super().close()
        finally:
            config, self._config = self._config, None
            if config is not None:
                config.__exit__(None, None, None)

    def __repr__(self) -> str:
        state = f", dashboard={self.dashboard_link!r}" if self.client is not None else ""
        return f"{type(self).__name__}(plug={self.plug!r}, settings={self.settings!r}{state})"


def get_plug(
    name: str,
    /,
    workers: int | None = None,
    threads: int | None = None,
    memory: float | None = None,
    **kwargs: Any,
) -> ClientPlug:
    """The plug `name`, with validated settings; nothing is started yet.

    `name` is an installed plug, or the import path of a plug that is not installed: a
    module of hooks (`package.module`), a class of hooks (`package.module:Name`), or a
    `ClientPlug` subclass (`package.module:MyClient`, made with these arguments). The
    current directory is importable.
    """
    cls = client_plug_class(name)
    if cls is None:
        return RegisteredPlug(workers, threads, memory, plug=name, **kwargs)
    given: dict[str, Any] = {"workers": workers, "threads": threads, "memory": memory}
    return cls(**{k: v for k, v in given.items() if v is not None}, **kwargs)


def client_plug_class(name: str) -> type[ClientPlug] | None:
    """The ClientPlug subclass import path `name` names, or None (an installed plug, or hooks)."""
    if name in registry().plugs or not importable(name):
        return None
    try:
        obj = import_object(name)
    except Exception:  # not a ClientPlug: the registry tells what is wrong with it, in one line
        return None
    return obj if isinstance(obj, type) and issubclass(obj, ClientPlug) else None
