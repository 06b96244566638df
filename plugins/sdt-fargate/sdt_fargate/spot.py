"""Workers on Fargate Spot; a worker Spot has no capacity for starts on on-demand Fargate.

ECS answers a `run_task` that Fargate Spot cannot place with no task and a failure whose
reason says the capacity is unavailable (not with an error); dask-cloudprovider would retry
that for a minute and fail the start. Here each worker's ECS client runs such a task again on
the `FARGATE` capacity provider, and says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from sdt_fargate.aws import ClientFactory

log = logging.getLogger("sdt_fargate")

SPOT, ON_DEMAND = "FARGATE_SPOT", "FARGATE"


def short_of_spot(response: dict[str, Any]) -> str | None:
    """The reason ECS gave when a `run_task` got no task for lack of capacity, else None."""
    if response.get("tasks"):
        return None
    reasons = [str(f.get("reason", "")) for f in response.get("failures", ())]
    return next((r for r in reasons if "capacity" in r.lower()), None)


class SpotFallback:
    """An ECS client whose `run_task` on Fargate Spot falls back to on-demand Fargate."""

    def __init__(self, ecs: Any, worker: str) -> None:
        self._ecs = ecs
        self._worker = worker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ecs, name)

    async def run_task(self, **kwargs: Any) -> dict[str, Any]:
        response: dict[str, Any] = await self._ecs.run_task(**kwargs)
        strategy = kwargs.get("capacityProviderStrategy") or []
        reason = short_of_spot(response)
        if reason is None or [s.get("capacityProvider") for s in strategy] != [SPOT]:
            return response
        log.warning("fargate: Fargate Spot has no capacity for worker %s (%s); it runs on-demand", self._worker, reason)
        on_demand: dict[str, Any] = await self._ecs.run_task(
            **kwargs | {"capacityProviderStrategy": [{"capacityProvider": ON_DEMAND}]}
        )
        return on_demand


def with_spot_fallback(client: ClientFactory, worker: str) -> ClientFactory:
    """`client` (service -> client context manager), its ECS clients wrapped in `SpotFallback`."""

    @contextlib.asynccontextmanager
    async def ecs() -> AsyncIterator[SpotFallback]:
        async with client("ecs") as inner:
            yield SpotFallback(inner, worker)

    return lambda service: ecs() if service == "ecs" else client(service)
