"""Stopping a run on SIGINT (Ctrl-C), SIGTERM or SIGHUP (a closed terminal or SSH session): the
cluster closed, the fleet report and the cluster's logs written, one line, exit 128 + signal.

`stop_on_signals()` turns the first of them into `Stopped` in the main thread
(later ones are ignored: the first is being handled). Inside `shielded()` a signal waits
until the block ends, so a cluster's start or close is never cut in half (which leaves
processes and Dask's tracebacks behind). A plug whose workers are processes on this
machine makes them ignore SIGINT and SIGHUP (`GROUP_SIGNALS`; the local plug forks them from a
server that ignores them): a terminal's Ctrl-C or hangup, sent to the whole process group, is
sdt's to handle.

While a stopped or failed run closes its cluster, distributed's records below ERROR are dropped, in
this process and on the workers; `SHUTDOWN_HANDLER`, when set, receives them instead (the
seam for a run's own log file).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: What a terminal sends to the whole process group: worker processes there ignore them.
GROUP_SIGNALS = (signal.SIGINT, signal.SIGHUP)
#: The loggers that speak while a cluster closes.
SHUTDOWN_LOGGERS = ("distributed", "tornado", "asyncio", "bokeh")
#: Where those loggers' records go while a stopped or failed run shuts down; None: dropped below ERROR.
SHUTDOWN_HANDLER: logging.Handler | None = None


class Stopped(BaseException):
    """The run was stopped by signal `signum`; `exit_code` is 128 + signum, as shells report it.

    A BaseException, as KeyboardInterrupt is, but not one: click would turn that into Abort.
    """

    def __init__(self, signum: int, detail: str = "") -> None:
        super().__init__(signum)
        self.signum = signum
        self.detail = detail  # what was done, e.g. "37 of 500 keys done"

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.signum: int | None = None  # the first signal received
        self.deferred = False  # it arrived in a shielded block and has not been raised yet
        self.shields = 0


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state.signum is not None:
        return  # already stopping
    _state.signum = signum
    if _state.shields:
        _state.deferred = True
        return
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While active, the first SIGINT, SIGTERM or SIGHUP raises `Stopped` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state.reset()


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A signal received in this block raises `Stopped` when the block ends."""
    _state.shields += 1
    try:
        yield
    finally:
        _state.shields -= 1
        if not _state.shields and _state.deferred:
            _state.deferred = False
            raise Stopped(_state.signum or signal.SIGINT)


def stopping() -> bool:
    """Whether a stop signal has been received."""
    return _state.signum is not None


@contextlib.contextmanager
def running(plug: Any) -> Iterator[Any]:
    """`with plug as client`, its start and close shielded; a run stopped or failed closes quietly."""
    client = None
    try:
        with shielded():
            client = plug.__enter__()
        yield client
    except BaseException:
        with shielded(), _quiet(client if getattr(plug, "owns_cluster", True) else None):  # not a scheduler attached to
            plug.close()
        raise
    with shielded():
        plug.close()


@contextlib.contextmanager
def _quiet(client: Any) -> Iterator[None]:
    """distributed's records below ERROR dropped (or sent to SHUTDOWN_HANDLER), here and on `client`'s
    workers (None: here only)."""
    loggers = [logging.getLogger(name) for name in SHUTDOWN_LOGGERS]
    saved = [(lg.level, lg.propagate, list(lg.handlers)) for lg in loggers]  # before workers of threads drop them
    if client is not None:
        with contextlib.suppress(Exception):
            client.run(_drop_records, on_error="ignore")  # worker processes write to sdt's stderr
    for lg in loggers:
        if SHUTDOWN_HANDLER is None:
            lg.setLevel(logging.ERROR)
        else:
            lg.handlers, lg.propagate = [SHUTDOWN_HANDLER], False
    try:
        yield
    finally:
        for lg, (level, propagate, handlers) in zip(loggers, saved, strict=True):
            lg.setLevel(level)
            lg.propagate, lg.handlers = propagate, handlers


def _drop_records() -> None:
    """On a worker: distributed's records below ERROR are dropped from now on (its run is ending)."""
    for name in SHUTDOWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
