"""Microsoft.Storage: storage accounts and their two access keys.

Routes (under ``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage``):
- ``GET storageAccounts`` (also subscription-wide) and ``GET storageAccounts/{name}``;
- ``POST storageAccounts/{name}/listKeys`` -> ``{"keys": [{"keyName", "value", "permissions",
  "creationTime"}]}``;
- ``POST storageAccounts/{name}/regenerateKey`` with ``{"keyName": "key1"|"key2"}`` -> the same
  list, the named key replaced by a new random value; the old value stops being valid at once.

Scenario section: ``"storageAccounts": [{"resourceGroup", "name", "location"?, "tags"?,
"keys": {"key1"?, "key2"?}}]``; a key not given is random. Keys look like Azure's: base64 of 64
random bytes.

``state()`` gives each account's current keys and how many times each key was regenerated; the
ML service asks ``key_status`` whether a datastore still holds a current key.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local.emulator import lro, wire
from local.httpwire import Request, Response

KEY_NAMES = ("key1", "key2")
DEFAULT_LOCATION = "westeurope"

_ROUTE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+))?/providers/Microsoft\.Storage"
    r"/storageAccounts(?:/(?P<name>[^/]+)(?:/(?P<action>[^/]+))?)?/?$",
    re.IGNORECASE,
)


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


@dataclass
class StorageAccount:
    subscription: str
    resource_group: str
    name: str
    location: str
    tags: dict[str, str]
    created: datetime
    keys: dict[str, str]
    key_created: dict[str, datetime]
    regenerations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KEY_NAMES, 0))

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Storage/storageAccounts/{self.name}"
        )

    def keys_body(self) -> dict[str, Any]:
        return {
            "keys": [
                {
                    "keyName": name,
                    "value": self.keys[name],
                    "permissions": "Full",
                    "creationTime": wire.iso(self.key_created[name]),
                }
                for name in KEY_NAMES
            ]
        }

    def body(self) -> dict[str, Any]:
        """The account as StorageAccounts_GetProperties returns it (2025-01-01 example)."""
        endpoints = {
            svc: f"https://{self.name}.{svc}.core.windows.net/" for svc in ("blob", "dfs", "file", "queue", "table", "web")
        }
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Storage/storageAccounts",
            "location": self.location,
            "tags": dict(self.tags),
            "kind": "StorageV2",
            "sku": {"name": "Standard_LRS", "tier": "Standard"},
            "properties": {
                "keyCreationTime": {name: wire.iso(self.key_created[name]) for name in KEY_NAMES},
                "creationTime": wire.iso(self.created),
                "primaryEndpoints": endpoints,
                "primaryLocation": self.location,
                "statusOfPrimary": "available",
                "provisioningState": "Succeeded",
                "accessTier": "Hot",
                "allowSharedKeyAccess": True,
                "allowBlobPublicAccess": False,
                "minimumTlsVersion": "TLS1_2",
                "supportsHttpsTrafficOnly": True,
                "isHnsEnabled": False,
                "networkAcls": {"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [], "virtualNetworkRules": []},
                "encryption": {
                    "keySource": "Microsoft.Storage",
                    "services": {
                        "blob": {"keyType": "Account", "enabled": True, "lastEnabledTime": wire.iso(self.created)},
                        "file": {"keyType": "Account", "enabled": True, "lastEnabledTime": wire.iso(self.created)},
                    },
                },
            },
        }


class StorageService:
    """Storage accounts of one emulated subscription."""

    name = "storage"

    def __init__(self) -> None:
        self._accounts: dict[tuple[str, str], StorageAccount] = {}  # (resource group, name), lower-cased

    # --- protocol -------------------------------------------------------------------------

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        self._accounts.clear()
        subscription = str(scenario.get("subscriptionId") or "00000000-0000-0000-0000-000000000000")
        for spec in scenario.get("storageAccounts") or []:
            self.upsert(subscription, spec, now)

    def state(self) -> dict[str, Any]:
        return {
            "accounts": [
                {
                    "id": acct.id,
                    "name": acct.name,
                    "resourceGroup": acct.resource_group,
                    "keys": dict(acct.keys),
                    "regenerations": dict(acct.regenerations),
                    "regenerationCount": sum(acct.regenerations.values()),
                }
                for acct in self._accounts.values()
            ]
        }

    def handle(self, req: Request) -> Response | None:
        match = _ROUTE.match(req.path)
        if match is None:
            return None
        refused = lro.guard(req)
        if refused is not None:
            return refused
        sub, rg, name, action = match["sub"], match["rg"], match["name"], match["action"]
        if name is None:
            if req.method != "GET":
                return wire.arm_error(405, "MethodNotAllowed", f"{req.method} is not supported here.")
            listed = [
                a.body() for a in self._accounts.values()
                if a.subscription.lower() == sub.lower() and (rg is None or a.resource_group.lower() == rg.lower())
            ]
            return Response(200, {"value": listed})
        if rg is None:
            return None
        acct = self._accounts.get((rg.lower(), name.lower()))
        if acct is None or acct.subscription.lower() != sub.lower():
            return wire.arm_error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.Storage/storageAccounts/{name}' under resource group '{rg}' was not found.",
            )
        if action is None and req.method == "GET":
            return Response(200, acct.body())
        if action is not None and action.lower() == "listkeys" and req.method == "POST":
            return Response(200, acct.keys_body())
        if action is not None and action.lower() == "regeneratekey" and req.method == "POST":
            return self._regenerate(acct, req)
        return wire.arm_error(405, "MethodNotAllowed", f"{req.method} {action or ''} is not supported on a storage account.")

    # --- operations -----------------------------------------------------------------------

    def _regenerate(self, acct: StorageAccount, req: Request) -> Response:
        try:
            body = req.json() or {}
        except ValueError:
            body = {}
        key_name = str(body.get("keyName", "")).lower() if isinstance(body, dict) else ""
        if key_name not in KEY_NAMES:
            return wire.arm_error(
                400, "InvalidValuesForRequestParameters", "Values for request parameters are invalid: keyName."
            )
        old = acct.keys[key_name]
        # Loop only guards against the astronomically unlikely repeat: a regenerated key must differ.
        while acct.keys[key_name] == old:
            acct.keys[key_name] = new_key()
        acct.key_created[key_name] = lro.utcnow()
        acct.regenerations[key_name] += 1
        return Response(200, acct.keys_body())

    # --- used by the control API and the ML service ---------------------------------------

    def upsert(self, subscription: str, spec: dict[str, Any], now: datetime) -> StorageAccount:
        """Add or replace an account from its scenario form."""
        given = spec.get("keys") or {}
        acct = StorageAccount(
            subscription=subscription,
            resource_group=str(spec["resourceGroup"]),
            name=str(spec["name"]),
            location=str(spec.get("location") or DEFAULT_LOCATION),
            tags=dict(spec.get("tags") or {}),
            created=wire.resolve_time(spec.get("createdAt"), now) or now,
            keys={name: str(given.get(name) or new_key()) for name in KEY_NAMES},
            key_created=dict.fromkeys(KEY_NAMES, wire.resolve_time(spec.get("createdAt"), now) or now),
        )
        self._accounts[(acct.resource_group.lower(), acct.name.lower())] = acct
        return acct

    def find(self, name: str) -> StorageAccount | None:
        """An account by name: storage account names are unique across Azure, not per group."""
        for acct in self._accounts.values():
            if acct.name.lower() == name.lower():
                return acct
        return None

    def key_status(self, account: str, value: str | None) -> bool | None:
        """Whether `value` is a current key of `account`; None when the account is not emulated."""
        acct = self.find(account)
        if acct is None:
            return None
        return value is not None and value in acct.keys.values()


SERVICE = StorageService()
