"""Operator requests (the on-demand HTTP functions): validated into work items, one clear error otherwise."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared import names
from shared.model import same_name
from shared.names import shown
from shared.settings import Settings
from shared.work import Kind, WorkItem


class RequestError(ValueError):
    """The request is malformed; the message names the field."""


def rotation_request(payload: Any, settings: Settings, now: datetime) -> tuple[WorkItem, bool]:
    """{"vault": id-or-name, "secret": name, "dryRun": bool} → a forced ROTATE work item."""
    if not isinstance(payload, dict):
        raise RequestError("body must be a JSON object with vault and secret")
    vault_raw, secret = payload.get("vault"), payload.get("secret")
    if not isinstance(secret, str) or not secret.strip():
        raise RequestError("secret: required (the Key Vault secret name)")
    if not isinstance(vault_raw, str) or not vault_raw.strip():
        raise RequestError("vault: required (an allowed vault's resource id or name)")
    bad = names.SECRET.check(secret.strip())
    if bad:
        raise RequestError(f"secret: {bad}")
    unknown = sorted(set(payload) - {"vault", "secret", "dryRun"})
    if unknown:
        raise RequestError(f"{shown(unknown[0])}: unknown field (expected vault, secret, dryRun)")
    dry_run = payload.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise RequestError("dryRun: must be true or false")
    vault = next((v for v in settings.vaults if v.same_as(vault_raw) or same_name(v.name, vault_raw)), None)
    if vault is None:
        raise RequestError(f"vault: {shown(vault_raw.strip())} is not in ALLOWED_VAULTS")
    trigger = f"manual|{vault.key}|{secret.strip()}|{now:%Y%m%dT%H%M%S}"
    return WorkItem(Kind.ROTATE, vault.id, trigger, {"secret": secret.strip(), "forced": True}), dry_run
