"""Imported first by the server that local worker processes are forked from (`METHOD` forkserver).

It ignores SIGINT and SIGHUP, and so do the workers it forks (they take the handlers it had
before it started serving): a terminal's Ctrl-C or hangup reaches the whole process group;
sdt handles it and closes the workers.

When it ends, which it does when its parent (sdt) ends, even killed with -9, it removes the
socket it served on and that socket's folder (`pymp-*` in the temporary directory): only its
parent's own clean exit removed them. What a worker leaves in Dask's `dask-scratch-space` is
removed by Dask itself at the next start of a cluster there, as for any Dask cluster.
"""

import atexit
import contextlib
import os
import signal
import socket
import stat

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _listener() -> str | None:
    """The path of the Unix socket this server listens on (`pymp-*/listener-*`), while it is open."""
    for fd in range(3, 256):
        with contextlib.suppress(OSError):
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            with socket.socket(fileno=os.dup(fd)) as sock:
                path = sock.getsockname() if sock.family == socket.AF_UNIX else ""
            folder, name = os.path.split(path) if isinstance(path, str) else ("", "")
            if name.startswith("listener-") and os.path.basename(folder).startswith("pymp-"):
                return str(path)
    return None


def _remove(path: str) -> None:
    """Remove the socket at `path` and its folder, if nothing else is in it."""
    with contextlib.suppress(OSError):
        os.unlink(path)
        os.rmdir(os.path.dirname(path))


_LISTENER = _listener()  # now: the server closes it before it exits
if _LISTENER:
    atexit.register(_remove, _LISTENER)
