"""One run at a time per output folder: an exclusive lock, held while a run writes there.

The lock is the operating system's (`filelock`, flock on Linux): it goes with the process
that holds it, so a run killed with -9 leaves nothing to clean up. Who holds it is written
beside it, for the message a second run gets.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from pathlib import Path

from sdt_core.errors import SdtError
from sdt_core.output.files import write_whole

LOCK = ".sdt-lock"
HOLDER = ".sdt-holder.json"


class FolderLock:
    """`acquire()` or a one-line SdtError naming the run that holds `folder`; `release()`."""

    def __init__(self, folder: Path) -> None:
        from filelock import FileLock

        self.folder = folder
        self._lock = FileLock(folder / LOCK, timeout=0)

    def acquire(self) -> None:
        from filelock import Timeout

        if (self.folder / LOCK).is_symlink():  # filelock before 4 opened it following the link, truncating its target
            raise SdtError(
                f"{self.folder / LOCK} is a symbolic link, not sdt's lock; remove it or choose another --out"
            )
        try:
            self._lock.acquire()
        except Timeout:
            raise SdtError(
                f"{self.folder} is in use by another run ({self._holder()}); "
                "wait for it to end, or choose another --out"
            ) from None
        holder = {  # never the command line: it may hold secrets
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        write_whole(self.folder / HOLDER, json.dumps(holder))  # a link planted there is replaced

    def release(self) -> None:
        self._lock.release()

    def _holder(self) -> str:
        try:
            holder = json.loads((self.folder / HOLDER).read_text())
            return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
        except (OSError, ValueError, KeyError):
            return "its holder did not say who it is"
