"""OUT/logs/: the scheduler's and each worker's log, written before the cluster closes.

The runner writes them at the end of every run, also one that failed or was interrupted
(Ctrl-C, SIGTERM), for every plug: `scheduler.log`, `worker-NAME.log` and `nanny-NAME.log`
from what the scheduler, workers and nannies keep in memory (`Client.get_scheduler_logs`,
`Client.get_worker_logs`), overridden by what the plug supplies itself (the `cluster_logs`
hook, e.g. a cloud's log service). Files are appended to, under a line naming the time, so a
resume keeps the logs of the runs before it. Each error row gets `worker_log`, the file of
the worker that ran its key.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from distributed.diagnostics.plugin import WorkerPlugin

from sdt_core.output.files import open_append
from sdt_core.plugs.settings import mask_credentials

if TYPE_CHECKING:
    from sdt_core.plugs.clientplug import ClientPlug

LOGS = "logs"
#: How long collecting the logs may take in all, in seconds: a dead worker must not hang the end of a run.
TIMEOUT = 60.0
log = logging.getLogger(__name__)
T = TypeVar("T")


def log_name(kind: str, name: Any) -> str:
    """The name of a log under OUT/logs/ (without .log): `worker-0`, `nanny-0`, `scheduler`."""
    return f"{kind}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', str(name))}"


class OutliveCtrlC(WorkerPlugin):
    """On a worker process in the client's process group, which a terminal's Ctrl-C or hangup
    reaches too: ignore SIGINT and SIGHUP, so that it lives until its log is read; the client
    then closes it."""

    name = "sdt-outlive-ctrl-c"

    def __init__(self, client_pid: int, group: int) -> None:
        self.client_pid, self.group = client_pid, group
        self._before: dict[int, Any] = {}

    def setup(self, worker: Any) -> None:
        mine = os.getpid() != self.client_pid and os.getpgid(0) == self.group
        if mine and threading.current_thread() is threading.main_thread():
            self._before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGHUP)}

    def teardown(self, worker: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in self._before.items():
                signal.signal(sig, handler)


class ClusterLogs:
    """The logs of `plug`'s cluster, reached through `client`, for OUT/logs/ (`folder`)."""

    def __init__(self, plug: ClientPlug, client: Any, folder: Path) -> None:
        self.plug, self.client, self.folder = plug, client, folder
        self._names: dict[str, Any] = {}  # worker address -> name

    def outlive_ctrl_c(self) -> None:
        """Keep the workers in this process group alive through a Ctrl-C, until their logs are read."""
        try:
            self.client.register_plugin(OutliveCtrlC(os.getpid(), os.getpgid(0)), name=OutliveCtrlC.name)
        except Exception as exc:  # the logs of workers that Ctrl-C ends are lost
            log.warning("logs: workers may end on Ctrl-C before their logs are read: %s", exc)

    def point(self, rows: Iterable[MutableMapping[str, Any]]) -> None:
        """Give each error row `worker_log`: the log of the worker that ran its key."""
        for row in rows:
            address = row.get("worker")
            if row.get("status") == "error" and address:
                if address not in self._names:
                    self._names |= self._worker_names()
                name = self._names.get(address)
                if name is not None:
                    row["worker_log"] = f"{LOGS}/{log_name('worker', name)}.log"

    def save(self) -> list[Path]:
        """Write every log there is; never raises (what could not be read is said in run.log)."""
        deadline = time.monotonic() + TIMEOUT
        logs = self._from_scheduler(deadline)
        try:
            supplied = _within(deadline, self.plug.cluster_logs)
        except Exception as exc:
            log.warning("logs: the plug's own logs could not be read: %s: %s", type(exc).__name__, exc)
            supplied = None
        logs |= as_log_names(supplied or {})
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(sep=" ", timespec="seconds")
        written = []
        for name, text in sorted(logs.items()):
            path = self.folder / f"{name}.log"
            try:
                with open_append(path) as file:
                    file.write(mask_credentials(f"----- {name}, collected {stamp} -----\n{text.rstrip()}\n"))
            except OSError as exc:  # a full disk: the run's results, not its logs, decide how it ends
                log.warning("logs: could not write %s: %s", path, exc)
                continue
            written.append(path)
        return written

    def _worker_names(self) -> dict[str, Any]:
        try:
            workers = self.client.scheduler_info(n_workers=-1)["workers"]
        except Exception:  # the scheduler is gone: the row keeps its worker address
            return {}
        return {address: info.get("name", address) for address, info in workers.items()}

    def _from_scheduler(self, deadline: float) -> dict[str, str]:
        """What the scheduler, the live workers and their nannies keep in memory, by log name.

        A worker that died took its log with it; its nanny's log (the same name) tells of it."""
        client = self.client
        logs: dict[str, str] = {}
        try:
            logs["scheduler"] = _text(_within(deadline, client.get_scheduler_logs))
            live = _within(deadline, self._worker_names)
        except Exception as exc:
            log.warning("logs: the scheduler's log could not be read: %s: %s", type(exc).__name__, exc)
            return logs
        self._names |= live
        for kind, nanny in (("worker", False), ("nanny", True)):
            for address, name in live.items():  # a dead worker's address would only time out
                try:
                    entries = _within(deadline, client.get_worker_logs, workers=[address], nanny=nanny)[address]
                except Exception as exc:
                    if not nanny:  # a worker without a nanny has no nanny log
                        log.warning("logs: worker %s's log could not be read: %s: %s", name, type(exc).__name__, exc)
                    continue
                if isinstance(entries, (list, tuple)):
                    logs[log_name(kind, name)] = _text(entries)
        return logs


def _text(entries: Iterable[tuple[str, str]]) -> str:
    """Dask's log entries (newest first, (level, line)) as a text, oldest first."""
    return "\n".join(entry for _, entry in reversed(list(entries)))


def _within(deadline: float, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(...)` if it returns before `deadline` (time.monotonic()); else TimeoutError."""
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["value"] = function(*args, **kwargs)
        except BaseException as exc:  # handed to the caller
            result["error"] = exc

    thread = threading.Thread(target=call, name="sdt-cluster-logs", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        raise TimeoutError(f"no answer within {TIMEOUT:g} s")
    if "error" in result:
        raise result["error"]
    return result["value"]  # type: ignore[no-any-return]


def as_log_names(logs: Mapping[str, str]) -> dict[str, str]:
    """A plug's logs with their names made safe for file names."""
    return {re.sub(r"[^A-Za-z0-9_.-]+", "_", name): text for name, text in logs.items()}
