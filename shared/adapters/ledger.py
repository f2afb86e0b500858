"""Idempotency claims, idle marks, write counts and the audit trail, in one Azure Table.

Table storage gives the one primitive idempotency needs: inserting a row that already exists
fails atomically. So every action is *claimed* (insert) before it runs; a duplicate or concurrent
delivery of the same trigger finds the claim and does nothing. A claim left by a crash (still
"claimed" after the lease) or released for a retry ("retry") may be taken over with an
ETag-conditional update, so only one taker wins; and a claim is settled only by its holder (the
settlement is conditional on the ETag the claim was taken with).

Partitions (row keys are hashes: Table keys forbid '/', '#', '?'):
  claim          one row per (trigger, action kind, target), with the action as claimed
  mark           one row per compute instance found idle and warned
  write          last Azure write per resource and kind (cooldown)
  wlog-YYYYMMDD  one row per Azure write attempted (the hourly cap)
  restore        cluster max nodes to restore after a recycle
  out-YYYYMMDD   outcomes, newest first within a day (a done write that freed VMs adds Size, Vms, Cores,
                 RunningSince and its Params, from which the report rebuilds the action kind)
  price          hourly VM prices read from the Azure Retail Prices API, one row per region and size
  jobs           one row per workspace: its job digest between runs (``shared.job_cache``), in parts

Every storage error leaves this module as ``shared.errors.AzureError`` (transient or not).
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar, ParamSpec, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

from shared.adapters.azure import credential, managed_identity, translate
from shared.job_cache import MAX_PARTS, PART_CHARS
from shared.model import Mark, Mode, Outcome, Status, fold
from shared.payload import PayloadError, load_json
from shared.ports import LEASE, Claim, Orphan

P = ParamSpec("P")
R = TypeVar("R")


def _rk(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _translated(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Storage errors become AzureError naming the ledger operation (the engine never sees an SDK error)."""

    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except HttpResponseError as exc:
                raise translate(exc, f"ledger: {what}") from exc
            except Exception as exc:
                if type(exc).__module__.startswith(("azure.", "requests.", "urllib3.")):
                    raise translate(exc, f"ledger: {what}") from exc
                raise
        return call
    return wrap


def open_ledger(settings: Any, *, create: bool = True) -> Ledger:
    """The ledger in the app's storage, reached the way the Functions host reaches it.

    ``AzureWebJobsStorage`` set: that connection string (Azurite locally). Otherwise the table
    endpoint of ``AzureWebJobsStorage__accountName`` (or ``__tableServiceUri``) with the managed
    identity of ``AzureWebJobsStorage__clientId`` (``__credential=managedidentity``, in Azure, where
    the account takes no key at all) or with the process's credential (an operator's `az login`).
    ``create=False`` for a reader (the operator's commands): no Create Table request, which Storage
    Table Data Reader is not allowed to send even for a table that exists.
    """
    if settings.storage_connection:
        return Ledger(settings.storage_connection, settings.ledger_table, create=create)
    token = credential() if settings.storage_client_id is None else managed_identity(settings.storage_client_id)
    return Ledger("", settings.ledger_table, endpoint=settings.storage_table_endpoint, credential=token, create=create)


class Ledger:
    """The autopilot's memory. Safe under concurrent callers; every method is one or two table calls."""

    _created: ClassVar[set[str]] = set()
    _lock = threading.Lock()

    def __init__(self, connection_string: str, table: str, *, endpoint: str = "", credential: Any = None,
                 create: bool = True) -> None:
        """The ledger in `table`: with a connection string, or at a table `endpoint` with a token `credential`.

        `create`: make sure the table exists (the app); a reader passes False and never asks.
        """
        if connection_string:
            service = TableServiceClient.from_connection_string(connection_string)
        else:
            service = TableServiceClient(endpoint, credential=credential)
        self.table = service.get_table_client(table)
        if create:
            self._ensure(service, table)

    @_translated("create the table")
    def _ensure(self, service: TableServiceClient, table: str) -> None:
        key = f"{service.url}|{table}"
        with self._lock:
            if key not in self._created:
                service.create_table_if_not_exists(table)
                self._created.add(key)

    # --- discovered workspaces ----------------------------------------------------------------

    # A table string property holds at most 64 KiB (32,768 UTF-16 characters): a fleet's ids are
    # kept in as many properties as they need (an entity holds up to 1 MiB, some 7,000 workspace ids).
    _IDS_PER_PROPERTY = 30_000
    _MAX_ID_PARTS = 35  # 1 MiB of UTF-16 in parts of 30,000 characters

    @_translated("read the discovered workspaces")
    def discovered(self, key: str) -> tuple[datetime, list[str]] | None:
        """When the workspaces of a discovery were found, and their ids; None when never stored.

        A row is read as hostile: one that is not what ``put_discovered`` writes (a part count that is no
        small number, a part that is no string, a time that is no time) reads as none stored.
        """
        try:
            row = self.table.get_entity("discovery", _rk(key))
        except ResourceNotFoundError:
            return None
        count, at = row.get("Parts"), row.get("At")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= self._MAX_ID_PARTS or not isinstance(at, datetime):
            return None
        parts = [row.get(f"Ids{i}") for i in range(count)]
        if not all(isinstance(part, str) for part in parts):
            return None
        return at, [part for part in "".join(parts).split(",") if part]  # type: ignore[arg-type]

    @_translated("keep the discovered workspaces")
    def put_discovered(self, key: str, at: datetime, ids: list[str]) -> None:
        text = ",".join(ids)
        parts = [text[i:i + self._IDS_PER_PROPERTY] for i in range(0, len(text), self._IDS_PER_PROPERTY)]
        entity = {"PartitionKey": "discovery", "RowKey": _rk(key), "Key": key, "At": at, "Count": len(ids), "Parts": len(parts),
                  **{f"Ids{i}": part for i, part in enumerate(parts)}}
        self.table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    # --- claims ------------------------------------------------------------------------------

    @_translated("claim")
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
        return Claim(key, row, meta["etag"], taken_over=True)

    @_translated("settle a claim")
    def settle(self, claim: Claim, status: Status | str, detail: str, *, retry: bool = False) -> bool:
        """Record how the claimed action ended, only if this run still holds the claim (its ETag).

        `retry=True` lets a later delivery take it again. False when another run took the claim over
        meanwhile (this run outlived its lease): that run's record stands.
        """
        value = "retry" if retry else (status.value if isinstance(status, Status) else status)
        try:
            self.table.update_entity({"PartitionKey": "claim", "RowKey": claim.row, "Status": value, "Detail": detail[:1000]},
                                     mode=UpdateMode.MERGE, etag=claim.etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceNotFoundError, HttpResponseError) as exc:
            if isinstance(exc, ResourceNotFoundError) or exc.status_code == 412:
                return False
            raise
        return True

    @_translated("list interrupted claims")
    def orphans(self, workspace_key: str, now: datetime) -> list[Orphan]:
        """Claims of this workspace still 'claimed' past the lease: their run died before settling them."""
        query = ("PartitionKey eq 'claim' and Status eq 'claimed' and Mode eq 'enforce' and Workspace eq @ws"
                 " and ClaimedAt lt @cutoff")
        out = []
        for row in self.table.query_entities(query, parameters={"ws": workspace_key, "cutoff": now - LEASE}):
            try:
                record = load_json(str(row.get("Record") or ""), 64 * 1024, "claim record")
            except PayloadError:
                continue
            if isinstance(record, dict):
                out.append(Orphan(str(row["Key"]), record, str(row.get("Trigger") or ""), row["ClaimedAt"]))
        return out

    # --- marks ---------------------------------------------------------------------------------

    # Compute keys are ARM ids, which are case-insensitive: stored and read back in their one normal form
    # (``shared.model.fold``, the form every key of the app is made in).

    @_translated("read idle marks")
    def marks(self) -> dict[str, Mark]:
        return {
            fold(e["ComputeKey"]): Mark(fold(e["ComputeKey"]), e["MarkedAt"], e.get("Reason", ""),
                                          Mode.OBSERVE if e.get("Mode") == Mode.OBSERVE.value else Mode.ENFORCE)
            for e in self.table.query_entities("PartitionKey eq 'mark'")
        }

    @_translated("mark idle")
    def put_mark(self, mark: Mark) -> None:
        key = fold(mark.compute_key)
        self.table.upsert_entity({"PartitionKey": "mark", "RowKey": _rk(key), "ComputeKey": key,
                                  "MarkedAt": mark.marked_at, "Reason": mark.reason[:1000], "Mode": mark.mode.value})

    @_translated("clear an idle mark")
    def clear_mark(self, compute_key: str) -> None:
        self.table.delete_entity("mark", _rk(fold(compute_key)))

    # --- caps ----------------------------------------------------------------------------------

    @_translated("read the last write")
    def last_write(self, resource_key: str) -> tuple[datetime, str] | None:
        try:
            row = self.table.get_entity("write", _rk(resource_key))
        except ResourceNotFoundError:
            return None
        return (row["At"], str(row.get("Trigger") or "")) if row.get("At") else None

    @_translated("take a write slot")
    def take_write(self, resource_key: str, now: datetime, cooldown: timedelta, trigger: str, *,
                   force: bool = False) -> datetime | None:
        """Take the resource's write slot before writing: insert-if-absent, or an ETag-conditional update of a
        slot whose last write is older than the cooldown (`force`: whatever its age). Runs racing for one
        resource cannot both take it. None when taken; else the last write that holds it back."""
        row = _rk(resource_key)
        entity = {"PartitionKey": "write", "RowKey": row, "Resource": resource_key, "At": now, "Trigger": trigger[:512]}
        try:
            self.table.create_entity(entity)
            return None
        except ResourceExistsError:
            pass
        try:
            existing = self.table.get_entity("write", row)
        except ResourceNotFoundError:
            return now  # released while being read: let the next sweep try
        last = existing.get("At")
        if last is not None and not force and now - last < cooldown:
            return last
        try:
            taken = {**entity, "Previous": last, "PreviousTrigger": existing.get("Trigger") or ""} if last is not None else entity
            self.table.update_entity(taken, mode=UpdateMode.REPLACE, etag=existing.metadata["etag"],
                                     match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as exc:
            if exc.status_code in (404, 412):
                return now  # another run took (or gave back) the slot this instant
            raise  # a storage error is not a cooldown: translated, it fails the attempt transiently
        return None

    @_translated("give a write slot back")
    def release_write(self, resource_key: str, now: datetime) -> None:
        """Give back a slot taken at `now` whose write never happened: the cooldown runs from the write before."""
        row = _rk(resource_key)
        try:
            existing = self.table.get_entity("write", row)
        except ResourceNotFoundError:
            return
        if existing.get("At") != now:
            return  # taken again since: not ours to give back
        previous = existing.get("Previous")
        try:
            if previous is None:
                self.table.delete_entity("write", row, etag=existing.metadata["etag"], match_condition=MatchConditions.IfNotModified)
            else:
                self.table.update_entity({"PartitionKey": "write", "RowKey": row, "Resource": resource_key, "At": previous,
                                          "Trigger": existing.get("PreviousTrigger") or ""},
                                         mode=UpdateMode.REPLACE, etag=existing.metadata["etag"],
                                         match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as exc:
            if exc.status_code not in (404, 412):
                raise  # taken again meanwhile (412) or gone (404): not ours to give back; anything else is an error

    @_translated("count a write")
    def count_write(self, resource_key: str, at: datetime) -> str:
        """One row per write attempted, before it is sent: failed and interrupted writes count too. Returns its place."""
        place = f"{at:%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        self.table.create_entity({"PartitionKey": f"wlog-{at:%Y%m%d}", "RowKey": place, "Resource": resource_key, "At": at})
        return place

    @_translated("give a write's place back")
    def uncount_write(self, place: str, at: datetime) -> None:
        self.table.delete_entity(f"wlog-{at:%Y%m%d}", place)

    @_translated("count the last hour's writes")
    def writes_since(self, since: datetime) -> int:
        """Azure writes attempted since a time, all triggers together (the hourly blast-radius cap)."""
        query = "PartitionKey ge @lo and PartitionKey lt 'wlog-a' and At ge @since"
        rows = self.table.query_entities(query, parameters={"lo": f"wlog-{since:%Y%m%d}", "since": since}, select=["RowKey"])
        return sum(1 for _ in rows)

    # --- cluster recycles ------------------------------------------------------------------------

    @_translated("read pending restores")
    def restores(self) -> dict[str, tuple[int, datetime]]:
        """Cluster key → (max nodes to give back, when the recycle was recorded)."""
        return {fold(e["Resource"]): (int(e["MaxNodes"]), e["At"]) for e in self.table.query_entities("PartitionKey eq 'restore'")}

    @_translated("remember a restore")
    def put_restore(self, cluster_key: str, max_nodes: int, at: datetime) -> None:
        key = fold(cluster_key)
        self.table.upsert_entity({"PartitionKey": "restore", "RowKey": _rk(key), "Resource": key, "MaxNodes": max_nodes, "At": at})

    @_translated("clear a restore")
    def clear_restore(self, cluster_key: str) -> None:
        self.table.delete_entity("restore", _rk(fold(cluster_key)))

    # --- job digests ----------------------------------------------------------------------------

    @_translated("read the kept job digest")
    def job_digest(self, workspace_key: str) -> tuple[str, str | None]:
        """The digest's text (its parts in order) and the row's ETag; ("", None) when no row is kept.

        A row is read as hostile: a part count or a part that is not what this module writes reads as
        an empty digest, which ``shared.job_cache`` refuses (a complete listing follows).
        """
        try:
            row = self.table.get_entity("jobs", _rk(fold(workspace_key)))
        except ResourceNotFoundError:
            return "", None
        etag = row.metadata["etag"]
        count = row.get("Parts")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_PARTS:
            return "", etag
        parts = [row.get(f"Part{i:02d}") for i in range(count)]
        if not all(isinstance(part, str) for part in parts):
            return "", etag
        return "".join(parts), etag  # type: ignore[arg-type]

    @_translated("keep the job digest")
    def put_job_digest(self, workspace_key: str, text: str, etag: str | None) -> bool:
        key = fold(workspace_key)
        parts = [text[i:i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
        entity: dict[str, Any] = {"PartitionKey": "jobs", "RowKey": _rk(key), "Workspace": key, "Parts": len(parts),
                                  **{f"Part{i:02d}": part for i, part in enumerate(parts)}}
        try:
            if etag is None:
                self.table.create_entity(entity)
            else:
                self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified)
        except ResourceExistsError:
            return False  # another run kept one first
        except HttpResponseError as exc:
            if exc.status_code in (404, 412):
                return False  # changed or removed since this run read it
            raise
        return True

    # --- audit trail -----------------------------------------------------------------------------

    @_translated("record an outcome")
    def record(self, outcome: Outcome) -> None:
        """One row per outcome; row keys sort newest first within the day's partition."""
        at = outcome.at
        inverted = f"{(10**13 - int(at.timestamp() * 1000)):013d}"
        fields = {k.capitalize(): (v if v is not None else "") for k, v in outcome.as_log().items() if k != "at"}
        fields["Resource"] = outcome.action.key
        if outcome.freed is not None:
            fields.update({"Size": outcome.freed.size, "Vms": outcome.freed.vms, "Cores": outcome.cores if outcome.cores else 0,
                           "Params": json.dumps(outcome.action.change.params(), default=str)})
            if outcome.freed.running_since is not None:
                fields["RunningSince"] = outcome.freed.running_since
        self.table.create_entity({"PartitionKey": f"out-{at:%Y%m%d}", "RowKey": f"{inverted}-{uuid.uuid4().hex[:8]}", "At": at, **fields})

    # --- prices ----------------------------------------------------------------------------------

    @_translated("read a cached price")
    def cached_price(self, region: str, size: str, fresh_after: datetime) -> dict[str, Any] | None:
        """The price row of a VM size in a region, if read after `fresh_after` (a miss is cached too: Found False)."""
        try:
            row = self.table.get_entity("price", _rk(f"{region.lower()}|{size.lower()}"))
        except ResourceNotFoundError:
            return None
        at = row.get("At")
        return dict(row) if isinstance(at, datetime) and at > fresh_after else None

    @_translated("cache a price")
    def put_price(self, region: str, size: str, at: datetime, **fields: Any) -> None:
        self.table.upsert_entity({"PartitionKey": "price", "RowKey": _rk(f"{region.lower()}|{size.lower()}"),
                                  "Region": region.lower(), "Size": size, "At": at, **fields})

    @_translated("read the history")
    def history(self, since: datetime, limit: int = 50) -> list[dict[str, Any]]:
        """Outcomes since a time, newest first."""
        query = "PartitionKey ge @lo and PartitionKey lt 'out-a' and At ge @since"
        rows = list(self.table.query_entities(query, parameters={"lo": f"out-{since:%Y%m%d}", "since": since}))
        rows.sort(key=lambda e: e["At"], reverse=True)
        return [{k: v for k, v in row.items() if k not in ("PartitionKey", "RowKey")} for row in rows[:limit]]
