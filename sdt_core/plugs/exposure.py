"""One rule for every plug: a cluster that other machines can reach without TLS or authentication.

A plug lists, in words, what of its cluster would listen beyond loopback with no TLS or
authentication (`host 0.0.0.0`, `the workers on every interface`), and `check_exposure`
refuses it in one line unless the user set `insecure`, in which case it warns once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sdt_core.errors import SettingsError


def check_exposure(plug: str, exposed: Sequence[str], *, insecure: bool, fix: str) -> None:
    """Refuse `exposed` (what others can reach, in words) unless `insecure`; warn when it is allowed.

    `fix` ends the refusal: what the user can do instead (a loopback address, TLS), and the
    `--set insecure=true` that accepts it. Nothing exposed: nothing to say.
    """
    if not exposed:
        return
    what = " and ".join(exposed)
    if not insecure:
        raise SettingsError(
            f"plug '{plug}': {what} can be reached from other machines, with no authentication or TLS; {fix}"
        )
    logging.getLogger(f"sdt_{plug}").warning(
        "%s: %s can be reached from other machines (insecure=True): no authentication, no TLS", plug, what
    )
