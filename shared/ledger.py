"""Idempotency claims, idle marks, write times and the audit trail, in one Azure Table.

Table storage gives the one primitive idempotency needs: inserting a row that already exists
fails atomically. So every action is *claimed* (insert) before it runs; a duplicate or concurrent
delivery of the same trigger finds the claim and does nothing. A claim left by a crash (still
"claimed" after the lease) or released after a transient error ("retry") may be taken over, with
an ETag-conditional update so that only one taker wins.

Partitions (row keys are hashes: Table keys forbid '/', '#', '?'):
  claim         one row per (trigger, action kind, target)
  mark          one row per compute instance found idle and warned
  write         last Azure write per resource (cooldown)
  restore       cluster max nodes to restore after a recycle
  out-YYYYMMDD  outcomes, newest first within a day
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

from shared.model import ActionKind, Mark, Outcome, Status

WRITE_KINDS = tuple(k.value for k in ActionKind if k.writes_to_azure)
LEASE = timedelta(minutes=10)  # a claim untouched this long belongs to a run that died


def _rk(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    key: str
    row: str
    etag: str


class Ledger:
    """The autopilot's memory. Safe under concurrent callers; every method is one or two table calls."""

    _created: ClassVar[set[str]] = set()
    _lock = threading.Lock()

    def __init__(self, connection_string: str, table: str) -> None:
        service = TableServiceClient.from_connection_string(connection_string)
        self.table = service.get_table_client(table)
        self._ensure(service, table)

    def _ensure(self, service: TableServiceClient, table: str) -> None:
        key = f"{service.url}|{table}"
        with self._lock:
            if key not in self._created:
                service.create_table_if_not_exists(table)
                self._created.add(key)

    # --- claims ------------------------------------------------------------------------------

    def claim(self, key: str, now: datetime, **fields: Any) -> Claim | str:
        """Take the claim for `key`; return it, or the reason it is held by someone else."""
        row = _rk(key)
        entity = {"PartitionKey": "claim", "RowKey": row, "Key": key, "Status": "claimed", "ClaimedAt": now, **fields}
        try:
            meta = self.table.create_entity(entity)
            return Claim(key, row, meta["etag"])
        except ResourceExistsError:
            pass
        try:
            existing = self.table.get_entity("claim", row)
        except ResourceNotFoundError:
            return "claim vanished while being read; not retrying now"
        status = existing.get("Status")
        claimed_at = existing.get("ClaimedAt")
        stale = status == "claimed" and claimed_at is not None and now - claimed_at > LEASE
        if status != "retry" and not stale:
            return f"already {status} by an earlier delivery ({existing.get('Detail') or 'in progress'})"
        entity["Attempts"] = int(existing.get("Attempts") or 1) + 1
        try:
            meta = self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=existing.metadata["etag"],
                                            match_condition=MatchConditions.IfNotModified)
        except HttpResponseError:
            return "taken over concurrently by another delivery"
        return Claim(key, row, meta["etag"])

    def settle(self, claim: Claim, status: Status | str, detail: str, *, retry: bool = False) -> None:
        """Record how the claimed action ended; `retry=True` lets a later delivery take it again."""
        value = "retry" if retry else (status.value if isinstance(status, Status) else status)
        self.table.update_entity({"PartitionKey": "claim", "RowKey": claim.row, "Status": value, "Detail": detail[:1000]},
                                 mode=UpdateMode.MERGE)

    # --- marks ---------------------------------------------------------------------------------

    def marks(self) -> dict[str, Mark]:
        return {
            e["ComputeKey"]: Mark(e["ComputeKey"], e["MarkedAt"], e.get("Reason", ""))
            for e in self.table.query_entities("PartitionKey eq 'mark'")
        }

    def put_mark(self, mark: Mark) -> None:
        self.table.upsert_entity({"PartitionKey": "mark", "RowKey": _rk(mark.compute_key), "ComputeKey": mark.compute_key,
                                  "MarkedAt": mark.marked_at, "Reason": mark.reason[:1000]})

    def clear_mark(self, compute_key: str) -> None:
        self.table.delete_entity("mark", _rk(compute_key))

    # --- caps ----------------------------------------------------------------------------------

    def last_write(self, resource_key: str) -> datetime | None:
        try:
            return self.table.get_entity("write", _rk(resource_key)).get("At")
        except ResourceNotFoundError:
            return None

    def note_write(self, resource_key: str, at: datetime) -> None:
        self.table.upsert_entity({"PartitionKey": "write", "RowKey": _rk(resource_key), "Resource": resource_key, "At": at})

    def writes_since(self, since: datetime) -> int:
        """Azure writes done since a time, all triggers together (the hourly blast-radius cap)."""
        kinds = " or ".join(f"Action eq '{k}'" for k in WRITE_KINDS)
        query = f"PartitionKey ge @lo and PartitionKey lt 'out-a' and At ge @since and Status eq 'done' and ({kinds})"
        rows = self.table.query_entities(query, parameters={"lo": f"out-{since:%Y%m%d}", "since": since}, select=["RowKey"])
        return sum(1 for _ in rows)

    # --- cluster recycles ------------------------------------------------------------------------

    def restores(self) -> dict[str, tuple[int, datetime]]:
        """Cluster key → (max nodes to give back, when the recycle was recorded)."""
        return {e["Resource"]: (int(e["MaxNodes"]), e["At"]) for e in self.table.query_entities("PartitionKey eq 'restore'")}

    def put_restore(self, cluster_key: str, max_nodes: int, at: datetime) -> None:
        self.table.upsert_entity({"PartitionKey": "restore", "RowKey": _rk(cluster_key), "Resource": cluster_key,
                                  "MaxNodes": max_nodes, "At": at})

    def clear_restore(self, cluster_key: str) -> None:
        self.table.delete_entity("restore", _rk(cluster_key))

    # --- audit trail -----------------------------------------------------------------------------

    def record(self, outcome: Outcome) -> None:
        """One row per outcome; row keys sort newest first within the day's partition."""
        at = outcome.at
        inverted = f"{(10**13 - int(at.timestamp() * 1000)):013d}"
        fields = {k.capitalize(): (v if v is not None else "") for k, v in outcome.as_log().items() if k != "at"}
        self.table.create_entity({"PartitionKey": f"out-{at:%Y%m%d}", "RowKey": f"{inverted}-{uuid.uuid4().hex[:8]}", "At": at, **fields})

    def history(self, since: datetime, limit: int = 50) -> Iterator[dict[str, Any]]:
        """Outcomes since a time, newest first."""
        query = "PartitionKey ge @lo and PartitionKey lt 'out-a' and At ge @since"
        rows = list(self.table.query_entities(query, parameters={"lo": f"out-{since:%Y%m%d}", "since": since}))
        rows.sort(key=lambda e: e["At"], reverse=True)
        for row in rows[:limit]:
            yield {k: v for k, v in row.items() if k not in ("PartitionKey", "RowKey")}
