"""OUT/run.log: the warnings and log records of a run, from the client, scheduler and workers.

While the run lasts, this process's records and Python warnings go to run.log instead of
the terminal: handlers writing to stdout or stderr are taken off every logger, and put
back afterwards. Plugins installed on the scheduler and each worker capture their records
and warnings there and send each to the client as a Dask event (`log_event`); the client
writes them as they arrive (`subscribe_topic`), and at the end those still on the way
(`get_events`). A scheduler or worker living in this very process (a cluster of threads)
needs no plugin: its records are this process's. Each line names its source: the client's
process id, or the scheduler's or worker's name and address.

Kept: sdt-core's and the plugs' records from INFO, everyone's warnings and errors.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin

from sdt_core.output.files import open_append
from sdt_core.plugs.settings import mask_credentials

RUN_LOG = "run.log"
TOPIC = "sdt-run-log"
PLUGIN = "sdt-run-log"


def kept(record: logging.LogRecord) -> bool:
    """sdt-core's and plugs' records from INFO; everyone's warnings and errors."""
    return record.levelno >= logging.WARNING or record.name.startswith("sdt")


def message(record: logging.LogRecord) -> str:
    """A record's message, with its traceback if it has one."""
    text = record.getMessage()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    return f"{text}\n{record.exc_text}" if record.exc_text else text


def line(event: Mapping[str, Any]) -> str:
    """One run.log entry: time, level, logger, [source], message."""
    stamp = datetime.datetime.fromtimestamp(event["created"]).isoformat(sep=" ", timespec="milliseconds")
    text = f"{stamp} {event['level']} {event['name']} [{event['source']}] {event['message'].rstrip()}"
    return mask_credentials(text)


def _event(record: logging.LogRecord, source: str, ident: str) -> dict[str, Any]:
    return {
        "id": ident,
        "created": record.created,
        "level": record.levelname,
        "name": record.name,
        "source": source,
        "message": message(record),
    }


class _Sender(logging.Handler):
    """In a scheduler or worker process: each kept record, as an event for the client."""

    def __init__(self, log_event: Callable[[str, Any], None], source: str) -> None:
        super().__init__(logging.INFO)
        self.addFilter(kept)
        self.log_event, self.source = log_event, source
        self._ids = itertools.count()
        self._sending = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._sending, "on", False):  # a record logged while one is sent
            return
        self._sending.on = True
        try:
            self.log_event(TOPIC, _event(record, self.source, f"{self.source} {next(self._ids)}"))
        except Exception:  # a closing server: the record stays in the process's own log
            pass
        finally:
            self._sending.on = False


def _install(server: Any, source: str) -> _Sender | None:
    """Send `server`'s records and Python warnings to the client; also keep them in its own log."""
    sender = _Sender(server.log_event, source)
    root = logging.getLogger()
    logging.captureWarnings(True)
    own = getattr(server, "_deque_handler", None)  # what get_worker_logs / get_scheduler_logs return
    if not root.handlers:  # the process's stderr (a container's log) shows them too
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
        root.addHandler(stream)
    for handler in (sender, own):
        if handler is not None and handler not in root.handlers:
            root.addHandler(handler)
    for name in ("distributed", "dask"):  # loggers that do not pass their records to the root
        if not logging.getLogger(name).propagate:
            logging.getLogger(name).addHandler(sender)
    return sender


def _uninstall(sender: _Sender | None) -> None:
    for name in (None, "distributed", "dask"):
        logging.getLogger(name).removeHandler(sender)  # type: ignore[arg-type]


class RecordsFromWorkers(WorkerPlugin):
    """On each worker outside the client's process: its records and warnings to the client."""

    name = PLUGIN

    def __init__(self, client_pid: int) -> None:
        self.client_pid = client_pid
        self._sender: _Sender | None = None

    def setup(self, worker: Any) -> None:
        if os.getpid() != self.client_pid:
            self._sender = _install(worker, f"worker {worker.name} {worker.address}")

    def teardown(self, worker: Any) -> None:
        _uninstall(self._sender)


class RecordsFromScheduler(SchedulerPlugin):
    """On a scheduler outside the client's process: its records and warnings to the client."""

    name = PLUGIN

    def __init__(self, client_pid: int) -> None:
        self.client_pid = client_pid
        self._sender: _Sender | None = None

    async def start(self, scheduler: Any) -> None:
        if os.getpid() != self.client_pid:
            self._sender = _install(scheduler, f"scheduler {scheduler.address}")

    async def close(self) -> None:
        _uninstall(self._sender)


class _Writer(logging.Handler):
    """In the client: each kept record into run.log."""

    def __init__(self, run_log: RunLog) -> None:
        super().__init__(logging.INFO)
        self.addFilter(kept)
        self.run_log = run_log

    def emit(self, record: logging.LogRecord) -> None:
        self.run_log.write(_event(record, f"client pid {os.getpid()}", ""))


def _to_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    if isinstance(handler, logging.FileHandler) or stream is None:
        return False
    if stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        return True
    try:
        return int(stream.fileno()) in (1, 2)
    except (AttributeError, ValueError, OSError):
        return False


class RunLog:
    """OUT/run.log for the block: this process's records, and the cluster's once `attach`ed.

    `echo` also gets each entry (sdt run -v shows them live); `count` is how many were written.
    """

    def __init__(self, path: Path, echo: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.echo = echo
        self.count = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._removed: list[tuple[logging.Logger, logging.Handler]] = []
        self._added: list[logging.Logger] = []
        self._writer = _Writer(self)
        self._captured_warnings = False
        self._client: Any = None

    def __enter__(self) -> RunLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open_append(self.path)
        loggers = [logging.getLogger()] + [
            logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
        ]
        for logger in loggers:
            for handler in list(logger.handlers):
                if _to_terminal(handler):
                    logger.removeHandler(handler)
                    self._removed.append((logger, handler))
            if logger is logging.root or not logger.propagate:
                logger.addHandler(self._writer)
                self._added.append(logger)
        self._captured_warnings = getattr(logging, "_warnings_showwarning", None) is None
        logging.captureWarnings(True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._captured_warnings:
            logging.captureWarnings(False)
        for logger in self._added:
            logger.removeHandler(self._writer)
        for logger, handler in self._removed:
            logger.addHandler(handler)
        self._removed.clear()
        self._added.clear()
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):  # a full disk: the results' own error says so
                    self._file.close()
                self._file = None

    def write(self, event: Mapping[str, Any]) -> None:
        """Write one entry (an event from the cluster is written once, however often it comes)."""
        text = line(event)
        with self._lock:
            if self._file is None or (event["id"] and event["id"] in self._seen):
                return
            if event["id"]:
                self._seen.add(event["id"])
            try:
                self._file.write(text + "\n")
                self._file.flush()
            except OSError:  # a full disk must not fail the run: its results.jsonl says so, once
                return
            self.count += 1
        if self.echo is not None:
            self.echo(text)

    def attach(self, client: Any) -> None:
        """Receive the records of `client`'s scheduler and workers from now on."""
        client.subscribe_topic(TOPIC, self._received)
        self._client = client
        for plugin in (RecordsFromScheduler(os.getpid()), RecordsFromWorkers(os.getpid())):
            try:
                client.register_plugin(plugin, name=PLUGIN)
            except Exception as exc:  # a scheduler that refuses plugins: its records stay in its log
                logging.getLogger(__name__).warning("run.log: the cluster's records stay in its own logs: %s", exc)

    def drain(self) -> None:
        """Write the records still on the way, then stop receiving them."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            for _, event in client.get_events(TOPIC):
                self.write(event)
            client.unsubscribe_topic(TOPIC)
        except Exception as exc:  # the cluster is gone: what arrived is written
            logging.getLogger(__name__).debug("run.log: %s", exc)

    def _received(self, event: tuple[float, Mapping[str, Any]]) -> None:
        self.write(event[1])
