"""Key Vault secrets: the managed credentials and their versions. Values never leave this module
except as the return of `value()` and the argument of `write()`; they are never logged."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.adapters.azure import client_options, credential, is_loopback, translate
from shared.model import ResourceId
from shared.policy.rotation import ManagedSecret
from shared.settings import Settings


@dataclass(frozen=True)
class SecretRead:
    """One read of a secret. The value is excluded from repr so it never reaches a log by accident."""

    properties: ManagedSecret
    value: str = field(repr=False)
    content_type: str | None = None


def _secret(vault: str, props: Any) -> ManagedSecret:
    return ManagedSecret(vault=vault, name=props.name, version=props.version or "", tags=dict(props.tags or {}),
                         created=props.created_on, expires=props.expires_on)


class Vault:
    def __init__(self, settings: Settings, vault: ResourceId, cred: Any | None = None) -> None:
        from azure.keyvault.secrets import SecretClient

        self.id = vault
        url = settings.vault_url(vault.name)
        # Key Vault checks that the challenge's resource matches the vault's domain; a loopback
        # emulator cannot match it, and that check must never be relaxed for a real vault.
        self._client = SecretClient(url, cred or credential(), verify_challenge_resource=not is_loopback(url),
                                    **client_options(settings))

    def read(self, name: str) -> SecretRead | None:
        """The latest version: properties, value and content type in one call; None when the secret does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            secret = self._client.get_secret(name)
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise translate(exc, f"read secret {name} in {self.id.name}") from exc
        return SecretRead(_secret(self.id.name, secret.properties), str(secret.value or ""), secret.properties.content_type)

    def list(self) -> list[ManagedSecret]:
        """Every enabled secret's latest properties (no values)."""
        try:
            return [_secret(self.id.name, p) for p in self._client.list_properties_of_secrets() if p.enabled is not False]
        except Exception as exc:
            raise translate(exc, f"list secrets in {self.id.name}") from exc

    def write(self, name: str, value: str, tags: dict[str, str], expires: datetime | None, content_type: str | None) -> ManagedSecret:
        """A new version of the secret; the previous versions stay (Key Vault keeps history)."""
        try:
            stored = self._client.set_secret(name, value, tags=tags, expires_on=expires, content_type=content_type)
        except Exception as exc:
            raise translate(exc, f"write secret {name} in {self.id.name}") from exc
        return _secret(self.id.name, stored.properties)
