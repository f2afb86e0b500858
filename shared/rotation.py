"""The rotation shell: read the credential's state from Azure, then walk the pure state machine.

One rotation reads (keys, the secret, every datastore on the account in every allowed workspace),
plans, claims the credential in the ledger, and executes the steps, following its own writes in
memory (`apply_effect`) so that it makes no more calls than it needs; it verifies at the end by
re-reading every datastore's secret. Whatever interrupts it, the next run starts again from what
Azure shows (see `shared/policy/rotation.py`).

No key value is ever logged, recorded, notified or put in an exception: values live only in local
variables here and in the adapters' arguments.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.actions import RotateCredential
from shared.engine import Report
from shared.errors import TransientFailure
from shared.model import Action, Mode, Outcome, ResourceId, Status, name_key
from shared.names import shown
from shared.outcome_log import tell as publish
from shared.policy.rotation import (
    MAX_VALIDITY_DAYS,
    TAG_KEY,
    TAG_PROVIDER,
    TAG_VALIDITY,
    TERMINAL,
    ManagedSecret,
    Observation,
    RotationRules,
    Step,
    StepKind,
    apply_effect,
    is_due,
    next_step,
    plan,
)
from shared.ports import LedgerPort, NotifierPort
from shared.settings import Settings
from shared.work import WorkItem

log = logging.getLogger("autopilot.rotation")


class RotationAborted(Exception):
    """A step could not be carried out; the credential is left consistent (see the state machine)."""


@dataclass
class _Live:
    """What one rotation run knows, including the values it must never show."""

    obs: Observation
    keys: dict[str, tuple[str, datetime | None]]
    stores: dict[str, Any]  # "ws/ds" → (workspace adapter, DatastoreRef)
    untouched: list[str]
    workspaces: list[Any]  # adapters of the workspaces with a datastore on the account: the ones to resync


class Rotator:
    def __init__(self, settings: Settings, vault: Callable[[ResourceId], Any], storage: Callable[[ResourceId], Any],
                 workspace: Callable[[ResourceId], Any], ledger: LedgerPort, notifier: NotifierPort,
                 checkpoint: Callable[[Step], None] | None = None) -> None:
        self.settings = settings
        self.vault = vault
        self.storage = storage
        self.workspace = workspace
        self.ledger = ledger
        self.notifier = notifier
        self.checkpoint = checkpoint or (lambda step: None)
        self.rules = RotationRules(timedelta(days=settings.rotation_near_expiry_days),
                                   timedelta(hours=settings.rotation_min_interval_hours))

    # --- entry points --------------------------------------------------------------------------

    def run(self, item: WorkItem, now: datetime, dry_run: bool = False) -> Report:
        """A ROTATE work item: one named secret (event or operator) or every managed secret of the vault (timer)."""
        vault_id = ResourceId.parse(item.target)
        if not any(v.same_as(vault_id) for v in self.settings.vaults):
            raise ValueError(f"ALLOWED_VAULTS: {vault_id} is not an allowed vault")
        report = Report(item)
        vault = self.vault(vault_id)
        secret = item.params.get("secret")
        if secret:
            names = [str(secret)]
            forced = bool(item.params.get("forced", True))
        else:
            names = [s.name for s in vault.list() if not s.missing_tags()]
            forced = False
            if not names:
                report.notes.append(f"vault {vault_id.name} holds no managed credential (tags {TAG_KEY}, {TAG_PROVIDER}, ValidityPeriodDays)")
        transient = 0
        for name in names:
            try:
                self._rotate(vault, vault_id, name, item, now, forced, dry_run, report)
            except _Transient:
                transient += 1
        if transient:
            raise TransientFailure(f"{transient} rotation(s) failed transiently; the work item will be retried")
        return report

    # --- one credential ------------------------------------------------------------------------

    def _rotate(self, vault: Any, vault_id: ResourceId, name: str, item: WorkItem, now: datetime, forced: bool,
                dry_run: bool, report: Report) -> None:
        from shared.errors import AzureError

        def tell(status: Status, detail: str, reason: str = "") -> None:
            action = Action(RotateCredential(), vault_id, name, reason or detail)
            publish(Outcome(action, status, detail, now, item.trigger), report.outcomes, self.ledger, self.notifier)

        try:
            read = vault.read(name)
        except AzureError as exc:
            return self._fail(tell, exc)
        if read is None:
            return tell(Status.SKIPPED, f"skipped: vault {vault_id.name} holds no secret {shown(name)} (deleted since, or never there)")
        secret = read.properties
        missing = secret.missing_tags()
        if missing:
            return tell(Status.SKIPPED, f"not a managed credential: no {', '.join(missing)} tag")
        if secret.validity is None:
            # Checked before anything is written: the new version's expiry is derived from it.
            return tell(Status.FAILED, f"{TAG_VALIDITY} is {shown(secret.tag(TAG_VALIDITY))}, not a whole number of days "
                                       f"from 1 to {MAX_VALIDITY_DAYS}: not rotated")
        event_version = str(item.params.get("version") or "")
        if event_version and event_version != secret.version:
            return tell(Status.SKIPPED, f"already rotated: the event names version {event_version[:8]}…, the latest is {secret.version[:8]}…")
        account = secret.account()
        if isinstance(account, str):
            return tell(Status.FAILED, account)
        due, why = is_due(secret, now, self.rules, forced)

        try:
            live = self._observe(read.value, secret, account)
        except AzureError as exc:
            return self._fail(tell, exc)
        except RotationAborted as exc:
            return tell(Status.FAILED, str(exc))
        for label in live.untouched:
            tell(Status.SKIPPED, f"datastore {label} not rotated and left untouched", "not an account-key datastore")
        steps = plan(live.obs, due, now)
        summary = " → ".join(s.kind.value for s in steps)
        if steps[0].kind is StepKind.NOT_DUE:
            extra = "" if steps[0].reason == "not due" else f"; {steps[0].reason.removeprefix('not due; ')}"
            return tell(Status.SKIPPED, f"not due: {why}{extra}")
        if steps[0].kind is StepKind.BLOCKED:
            return tell(Status.FAILED, f"blocked: {steps[0].reason}")
        if dry_run or self.settings.mode is Mode.OBSERVE:
            mode = "dry run" if dry_run else "observe mode"
            return tell(Status.PLANNED, f"{mode}: would {summary}", f"rotate: {why}")

        # A repair is keyed by its trigger: it must not take the claim of this version's rotation, due later.
        final = steps[-1].kind
        scope = secret.version if final is StepKind.WRITE_SECRET else f"{final.value}|{item.trigger}"
        claim = self.ledger.claim(f"rotate|{account.key}|{scope}", now, Action="rotate", Target=account.id)
        if isinstance(claim, str):
            return tell(Status.SKIPPED, f"duplicate: rotation of {account.name} {claim}")
        try:
            done = self._execute(vault, name, secret, read.content_type, account, live, due, now)
        except AzureError as exc:
            self.ledger.settle(claim, Status.FAILED, str(exc), retry=True)
            return self._fail(tell, exc)
        except RotationAborted as exc:
            self.ledger.settle(claim, Status.FAILED, str(exc), retry=True)
            return tell(Status.FAILED, str(exc), f"rotate: {why}")
        self.ledger.settle(claim, Status.DONE, done)
        tell(Status.DONE, done, f"rotate: {why}" if final is StepKind.WRITE_SECRET else "repair: datastore(s) on a revoked key")

    def _fail(self, tell: Callable[..., None], exc: Any) -> None:
        tell(Status.FAILED, f"{'transient, will retry' if exc.transient else 'permanent'}: {exc}")
        if exc.transient:
            raise _Transient() from exc

    def _observe(self, value: str, secret: ManagedSecret, account: ResourceId) -> _Live:
        keys = self.storage(account).keys()
        by_value = {v: k for k, (v, _) in keys.items()}
        stores: dict[str, Any] = {}
        holds: dict[str, str | None] = {}
        untouched: list[str] = []
        users: list[Any] = []
        # A workspace name is unique only within its resource group: where two allowed workspaces share
        # one, their datastores are labelled by full id, so that none hides another (and is left behind).
        shared_names = {n for n, count in Counter(name_key(w.name) for w in self.settings.workspaces).items() if count > 1}
        for ws_id in self.settings.workspaces:
            ws = self.workspace(ws_id)
            refs = ws.datastores_on(account.name)
            if refs:
                users.append(ws)
            for ref in refs:
                label = f"{ws_id.id}/datastores/{ref.name}" if name_key(ws_id.name) in shared_names else ref.label
                if ref.credential.lower() != "accountkey":
                    untouched.append(f"{label} ({ref.credential})")
                    continue
                if label in stores:
                    raise RotationAborted(f"two datastores answer to {label}: not rotating what cannot be told apart")
                stores[label] = (ws, ref)
                holds[label] = by_value.get(ws.datastore_key(ref.name) or "")
        obs = Observation(secret=secret, secret_key=by_value.get(value), keys_created={k: c for k, (_, c) in keys.items()},
                          datastores=holds)
        return _Live(obs, keys, stores, untouched, users)

    def _execute(self, vault: Any, name: str, secret: ManagedSecret, content_type: str | None, account: ResourceId,
                 live: _Live, due: bool, now: datetime) -> str:
        """Carry out the plan step by step, following each write in memory; verify at the end."""
        storage = self.storage(account)
        obs = live.obs
        written = None
        for _ in range(64):
            step = next_step(obs, due)
            if step.kind is StepKind.REPAIRED:
                return self._verify_repair(live, obs, step)
            if step.kind in TERMINAL and step.kind is not StepKind.WRITE_SECRET:
                raise RotationAborted(f"stopped before the secret was written: {step.reason}")
            if step.kind is StepKind.REGENERATE:
                live.keys = storage.regenerate(str(step.key))
                created = live.keys[str(step.key)][1] or now
                obs = replace_keys(apply_effect(obs, step, now), live.keys, created)
            elif step.kind in (StepKind.ALIGN_DATASTORE, StepKind.POINT_DATASTORE):
                ws, ds = live.stores[str(step.datastore)]
                ws.set_datastore_key(ds, live.keys[str(step.key)][0])
                obs = apply_effect(obs, step, now)
            elif step.kind is StepKind.RESYNC:
                for ws in live.workspaces:  # only workspaces using the account cache its keys
                    ws.resync_keys()
                obs = apply_effect(obs, step, now)
            elif step.kind is StepKind.WRITE_SECRET:
                key = str(step.key)
                validity = secret.validity or timedelta(days=90)  # never the default: checked before the first step
                tags = {k: v for k, v in secret.tags.items() if k.strip().lower() != TAG_KEY.lower()}
                tags[TAG_KEY] = key
                written = vault.write(name, live.keys[key][0], tags, now + validity, content_type)
                obs = apply_effect(obs, step, now)
            self.checkpoint(step)
            log.info("rotation of %s/%s: %s", secret.vault, name, step.reason)
            if written is not None:
                break
        return self._verify(vault, name, live, written)

    def _verify_repair(self, live: _Live, obs: Observation, step: Step) -> str:
        """A repair only: every repaired datastore must now hold the key in use."""
        expected = live.keys[str(step.key)][0]
        wrong = []
        for label in obs.repaired:
            ws, ref = live.stores[label]
            if ws.datastore_key(ref.name) != expected:
                wrong.append(label)
        if wrong:
            raise RotationAborted(f"verification: {', '.join(wrong)} do not hold {step.key}")
        return f"{step.reason}; verified"

    def _verify(self, vault: Any, name: str, live: _Live, written: ManagedSecret | None) -> str:
        if written is None:
            raise RotationAborted("the rotation did not reach the secret write")
        key = written.tag(TAG_KEY)
        expected = live.keys[key][0]
        wrong = [label for label, (ws, ref) in live.stores.items() if ws.datastore_key(ref.name) != expected]
        if wrong:
            raise RotationAborted(f"verification: {', '.join(wrong)} do not hold the new {key}")
        latest = vault.read(name)
        if latest is None or latest.value != expected:
            raise RotationAborted("verification: the secret does not hold the new key")
        stores = f"{len(live.stores)} datastore(s)" if live.stores else "no account-key datastore"
        expires = f"{written.expires:%Y-%m-%d}" if written.expires else "never"
        return f"rotated to {key}; {stores} and the secret verified; new version {written.version[:8]}…, expires {expires}"


class _Transient(Exception):
    """Internal: one credential failed transiently (already recorded)."""


def replace_keys(obs: Observation, keys: dict[str, tuple[str, datetime | None]], fallback: datetime) -> Observation:
    """Use the creation times the storage account reports after a regeneration."""
    from dataclasses import replace

    return replace(obs, keys_created={k: (c or fallback) for k, (_, c) in keys.items()})
