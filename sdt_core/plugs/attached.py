"""Who owns the cluster: a plug starts one (sdt-core closes it) or attaches to one (left running).

`make_cluster` returns either a `distributed` cluster it started, which sdt-core then owns
and closes at the end, or `Attached(address)`: a scheduler someone else started (a
JupyterHub's, a Kubernetes deployment's, one started by hand). sdt-core connects a Client to
it and, at the end, closes that client only: it never closes, scales, restarts or shuts down
the scheduler or its workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Security


@dataclass(frozen=True, repr=False)
class Attached:
    """A running scheduler the plug did not start, for `make_cluster` to return.

    sdt-core connects a Client to `address` (`tcp://host:port`, `tls://host:port`) with
    `security` (a `distributed.Security`, for TLS) within `timeout` seconds (None: dask
    config `distributed.comm.timeouts.connect`). At the end it closes that client and leaves
    the scheduler and its workers as they were: it never closes, scales or restarts them,
    and a worker paused for memory is not restarted (its keys fail instead).
    """

    #: The scheduler's address, e.g. `tls://10.0.0.5:8786`.
    address: str
    #: TLS certificates and keys to connect with (`distributed.Security`), or None for tcp://.
    security: Security | None = None
    #: Seconds to wait for the connection; None: dask config `distributed.comm.timeouts.connect`.
    timeout: float | None = None

    def __repr__(self) -> str:
        tls = ", with TLS" if self.security is not None else ""
        return f"Attached({self.address!r}{tls})"
