"""Whether the run can read its data: checked before the cluster starts, then on one worker.

Before the start: DATA on this machine with a cluster plug whose workers do not see this
machine's files is refused, and the first key's head is read to refuse options that are
wrong for any key (a named column missing, several columns that could be power). Once
the workers are up, one of them reaches DATA (`DataPlug.probe`) before the first key: a
path it cannot see, or credentials it lacks, end the run in one line with nothing run.
"""

from __future__ import annotations

import logging
from typing import Any

from sdt_core.errors import SdtError

log = logging.getLogger(__name__)
#: Dask config: seconds the check on a worker may take (workers still starting included).
TIMEOUT_CONFIG = "sdt.data-check-timeout"
TIMEOUT_DEFAULT = 600.0
#: Seconds between looks at the workers while the check waits, and how long every worker may
#: stay paused for memory before the run ends (a worker paused that long takes no key).
CHECK_STEP = 2.0
PAUSED_GRACE = 30.0
WHERE_TO = "an object store (s3://BUCKET/PREFIX, az://CONTAINER/PREFIX) or a file system the workers share"


def check_before_start(data: Any, plug: Any, key: tuple[Any, ...]) -> None:
    """Refuse in one line (SdtError) what can be known wrong before the start: see the module."""
    path = getattr(data, "local_path", None)
    if path and getattr(plug, "workers_share_files", None) is False:
        who = f"plug '{plug.plug}'" if hasattr(plug, "plug") else type(plug).__name__
        raise SdtError(
            f"DATA {path} is on this machine, but the workers of {who} cannot see this machine's files; "
            f"put the data in {WHERE_TO}"
        )
    check_head(data, key)


def check_head(data: Any, key: tuple[Any, ...]) -> None:
    """Read the head of `key` and pick its columns as a worker would; refuse options wrong for it."""
    from sdt_core.dataplugs.frames import FRAME_OPTIONS, FrameError, power_frame

    head = getattr(data, "head", None)
    try:
        frame = head(key) if head is not None else None
        if frame is not None:
            power, timestamps, _ = (getattr(data, name, None) for name in FRAME_OPTIONS)
            power_frame(frame, power, timestamps)
    except FrameError as exc:
        if exc.usage:
            raise SdtError(f"key {_shown(key)}: {exc.for_plug(data)}") from None
        log.debug("the head of key %s: %s", key, exc)
    except SdtError:
        raise
    except Exception as exc:  # a broken file is that key's error row, never the run's
        log.debug("the head of key %s: %s", key, exc)


def reach_from_worker(key: tuple[Any, ...], packed: bytes) -> str | None:
    """On a worker: None if it reaches the data of `key`, else why not, in one line.

    Only the store's answer counts (a missing path, denied access, no endpoint, a library
    missing): data it reached but could not parse is the key's own error row.
    """
    from sdt_core.job.task import _unpack

    try:
        data = _unpack(packed)[0]
    except Exception:  # the key's row says it (stage setup)
        return None
    try:
        probe = getattr(data, "probe", None)
        if probe is not None:
            probe(key)
    except (OSError, SdtError) as exc:
        from sdt_core.dataplugs.folders import StoreError

        text = str(exc) if isinstance(exc, (StoreError, SdtError)) else f"{type(exc).__name__}: {exc}"
        return " ".join(text.split())[:500]
    except Exception:
        return None
    return None


def check_on_worker(client: Any, packed: bytes, key: tuple[Any, ...], where: str) -> None:
    """Ask one worker to reach the data of `key`; SdtError (one line, exit 2) if it cannot."""
    import dask.config
    from dask.utils import parse_timedelta

    from sdt_core.plugs.settings import mask_credentials

    timeout = parse_timedelta(dask.config.get(TIMEOUT_CONFIG, default=TIMEOUT_DEFAULT), default="s")
    future = client.submit(reach_from_worker, key, packed, pure=False)
    try:
        problem = _answer(client, future, timeout)
    except TimeoutError:
        raise SdtError(
            f"no worker reached {where} within {timeout:g} s; check that the workers started "
            f"(dask config {TIMEOUT_CONFIG} sets the wait)"
        ) from None
    finally:
        future.release()
    if problem:
        raise SdtError(
            f"the workers cannot read {where}: {mask_credentials(problem)}; nothing was run. "
            f"Give them data they can reach: {WHERE_TO}, with the credentials they need"
        )


def _answer(client: Any, future: Any, timeout: float) -> str | None:
    """The check's answer within `timeout`; SdtError once every worker stayed paused for
    memory `PAUSED_GRACE` seconds (none could take it: the wait would be in vain)."""
    import time

    from distributed import wait

    from sdt_core.job.watchdog import paused_workers

    deadline, paused_since = time.monotonic() + timeout, None
    while True:
        try:
            wait(future, timeout=min(CHECK_STEP, max(0.0, deadline - time.monotonic())))
            return future.result()  # type: ignore[no-any-return]
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise
        paused = paused_workers(client)
        if not paused or len(paused) < len(client.nthreads()):
            paused_since = None
            continue
        paused_since = paused_since or time.monotonic()
        if time.monotonic() - paused_since >= PAUSED_GRACE:
            used = max(w["memory"] for w in paused.values()) / 2**30
            limit = min(w["limit"] for w in paused.values()) / 2**30
            raise SdtError(
                f"every worker is paused for memory before the first key (using {used:.2f} GiB of a "
                f"{limit:.2f} GiB limit): give each worker more memory (--memory); nothing was run"
            )


def _shown(key: tuple[Any, ...]) -> str:
    return str(key[0]) if len(key) == 1 else str(list(key))
