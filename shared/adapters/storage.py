"""Storage account keys (list, regenerate) through azure-mgmt-storage. Values are returned, never logged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.azure import client_options, credential, translate
from shared.model import ResourceId
from shared.settings import Settings

Keys = dict[str, tuple[str, datetime | None]]  # key name → (value, creation time)


def _keys(result: Any) -> Keys:
    # azure-mgmt-storage 25.x: the list is `keys_property` (`keys` is a method of the model).
    return {str(k.key_name).lower(): (str(k.value), k.creation_time) for k in (result.keys_property or [])}


class StorageAccount:
    def __init__(self, settings: Settings, account: ResourceId, cred: Any | None = None) -> None:
        from azure.mgmt.storage import StorageManagementClient

        self.id = account
        self._client = StorageManagementClient(cred or credential(), account.subscription, base_url=settings.arm_endpoint,
                                               credential_scopes=[f"{settings.arm_audience}/.default"], **client_options(settings))

    def keys(self) -> Keys:
        try:
            return _keys(self._client.storage_accounts.list_keys(self.id.resource_group, self.id.name))
        except Exception as exc:
            raise translate(exc, f"list keys of {self.id.name}") from exc

    def regenerate(self, key_name: str) -> Keys:
        """Regenerate one key; returns the account's keys afterwards (the answer carries them: no extra call)."""
        from azure.mgmt.storage.models import StorageAccountRegenerateKeyParameters

        try:
            result = self._client.storage_accounts.regenerate_key(self.id.resource_group, self.id.name,
                                                                  StorageAccountRegenerateKeyParameters(key_name=key_name))
        except Exception as exc:
            raise translate(exc, f"regenerate {key_name} of {self.id.name}") from exc
        return _keys(result)
