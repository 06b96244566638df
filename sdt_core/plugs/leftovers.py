"""What earlier starts of a plug left behind: the answer of a plug's `clean_up` hook (`sdt clean`)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class Leftover:
    """One resource an earlier start created and did not delete, found by the tag it carries."""

    kind: str  # what it is, e.g. "ECS cluster", "IAM role", "VM"
    name: str  # its id, ARN or name
    start: str  # the id of the start that created it (its tag)
    started: str | None = None  # when that start was, ISO 8601 in UTC ("2026-12-02T10:01:05Z"), if tagged
    error: str = ""  # why it could not be deleted; "" when it was (or, on a dry run, would be)

    def older_than(self, seconds: float | None) -> bool:
        """Whether its start was more than `seconds` ago (None: any start, of unknown age too)."""
        if seconds is None:
            return True
        if not self.started:
            return False
        started = datetime.datetime.fromisoformat(self.started.replace("Z", "+00:00"))
        return (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds() > seconds
