"""The rotation shell on in-memory stand-ins of Key Vault, the storage account and the workspaces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from local.memory import MemoryLedger, MemoryNotifier
from shared.adapters.aml import DatastoreRef
from shared.adapters.keyvault import SecretRead
from shared.model import ResourceId, Status
from shared.policy.rotation import ManagedSecret
from shared.rotation import Rotator
from shared.settings import Settings
from shared.work import Kind, WorkItem
from tests.unit.builders import NOW

A = "/subscriptions/s/resourceGroups/rg-a/providers/Microsoft.MachineLearningServices/workspaces/mlw-prod"
B = "/subscriptions/s/resourceGroups/rg-b/providers/Microsoft.MachineLearningServices/workspaces/mlw-prod"
VAULT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1"
ACCOUNT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1"


@dataclass
class Secret:
    value: str = "K1"
    tag: str = "key1"
    created: datetime = NOW - timedelta(days=400)
    version: int = 0
    validity: str = "90"


@dataclass
class Azure:
    """One storage account, one managed secret and an account-key datastore `shared` in each workspace."""

    keys: dict[str, tuple[str, datetime]] = field(default_factory=lambda: {"key1": ("K1", NOW - timedelta(days=500)),
                                                                            "key2": ("K2", NOW - timedelta(days=500))})
    secret: Secret = field(default_factory=Secret)
    held: dict[str, str] = field(default_factory=lambda: {A.lower(): "K1", B.lower(): "K1"})
    clock: datetime = NOW

    def vault(self, rid: ResourceId) -> Azure.Vault:
        return Azure.Vault(self)

    def storage(self, rid: ResourceId) -> Azure.Storage:
        return Azure.Storage(self)

    def workspace(self, rid: ResourceId) -> Azure.Workspace:
        return Azure.Workspace(self, rid)

    @dataclass
    class Vault:
        azure: Azure

        def read(self, name: str) -> SecretRead:
            s = self.azure.secret
            tags = {"CredentialId": s.tag, "ProviderAddress": ACCOUNT, "ValidityPeriodDays": s.validity}
            return SecretRead(ManagedSecret("kv1", name, f"v{s.version}", tags, s.created, None), s.value)

        def write(self, name: str, value: str, tags: dict[str, str], expires: datetime | None, content_type: str | None) -> ManagedSecret:
            self.azure.secret = Secret(value, tags["CredentialId"], self.azure.clock, self.azure.secret.version + 1,
                                       self.azure.secret.validity)
            return self.read(name).properties

    @dataclass
    class Storage:
        azure: Azure

        def keys(self) -> dict[str, tuple[str, datetime]]:
            return dict(self.azure.keys)

        def regenerate(self, key: str) -> dict[str, tuple[str, datetime]]:
            self.azure.keys[key] = (f"NEW-{key}-{self.azure.clock:%j}", self.azure.clock)
            return self.keys()

    @dataclass
    class Workspace:
        azure: Azure
        rid: ResourceId

        def datastores_on(self, account: str) -> list[DatastoreRef]:
            return [DatastoreRef(self.rid.name, "shared", "AccountKey")]

        def datastore_key(self, name: str) -> str:
            return self.azure.held[self.rid.key]

        def set_datastore_key(self, store: DatastoreRef, key: str) -> None:
            self.azure.held[self.rid.key] = key

        def resync_keys(self) -> None:
            pass

    def valid(self) -> dict[str, bool]:
        values = {v for v, _ in self.keys.values()}
        return {ws: key in values for ws, key in self.held.items()}


def rotate(azure: Azure, settings: Settings, when: datetime) -> list[tuple[Status, str]]:
    azure.clock = when
    rotator = Rotator(settings, azure.vault, azure.storage, azure.workspace, MemoryLedger(), MemoryNotifier())
    report = rotator.run(WorkItem(Kind.ROTATE, VAULT, f"evt-{when:%j}", {"secret": "sa-key"}), when)
    return [(o.status, o.detail) for o in report.outcomes]


def settings() -> Settings:
    return Settings.from_env({"ALLOWED_WORKSPACES": f"{A},{B}", "ALLOWED_VAULTS": VAULT, "AzureWebJobsStorage": "x",
                              "AUTOPILOT_MODE": "enforce"})


def test_two_workspaces_named_alike_in_two_resource_groups_both_have_their_datastore_moved():
    azure = Azure()
    for when in (NOW, NOW + timedelta(days=60)):
        ((status, detail),) = rotate(azure, settings(), when)
        assert status is Status.DONE and "2 datastore(s)" in detail
        assert azure.valid() == {A.lower(): True, B.lower(): True}


def test_a_validity_tag_that_is_no_number_of_days_stops_the_rotation_before_any_write():
    azure = Azure()
    azure.secret.validity = "²"
    ((status, detail),) = rotate(azure, settings(), NOW)
    assert status is Status.FAILED and "not a whole number of days" in detail
    assert azure.keys["key2"][0] == "K2" and azure.secret.version == 0
