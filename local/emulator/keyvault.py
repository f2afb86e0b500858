"""Key Vault secrets data plane, served under ``/keyvault/{vaultName}`` on the emulator's port.

Rules this module keeps (Key Vault REST 7.x / 2025+, as azure-keyvault-secrets 4.12 speaks it):

- Every request without an acceptable bearer token is answered 401 with Key Vault's challenge
  ``WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/{tenant}",
  resource="https://vault.azure.net"``. The SDK's ChallengeAuthPolicy first sends the request
  without a body, reads that challenge, fetches a token for ``https://vault.azure.net/.default`` and
  sends the request again. Tokens must have audience ``https://vault.azure.net``.
- Locally the vault URL is ``https://127.0.0.1:PORT/keyvault/{name}``, but ids inside bodies keep
  Azure's form ``https://{name}.vault.azure.net/secrets/{secret}/{version}``: the SDK parses ids by
  path segment, so a path prefix would break it, and Key Vault events carry that form too.
  (The SDK must be built with ``verify_challenge_resource=False`` because the challenge resource
  ``vault.azure.net`` does not match a loopback host.)
- ``PUT /secrets/{name}`` writes a new version (32 hex digits) that becomes the current one.
- ``GET /secrets/{name}`` and ``/secrets/{name}/`` read the current version; ``/secrets/{name}/{v}``
  reads one version. A disabled version answers 403 ``Forbidden`` (inner ``SecretDisabled``).
- ``GET /secrets`` and ``/secrets/{name}/versions`` page with ``maxresults`` (1..25, default 25)
  and an absolute ``nextLink`` carrying an opaque ``$skiptoken``; items never carry values.
- ``PATCH /secrets/{name}/{version}`` (empty version = current) updates contentType, attributes
  (each given field; the others stay) and tags: a given ``tags`` object replaces the whole set.
- Secret names are case-insensitive (the first spelling is kept) and match ``[0-9A-Za-z-]{1,127}``.
- Errors use Key Vault's body ``{"error": {"code", "message"}}``: 404 ``SecretNotFound``,
  400 ``BadParameter`` for an unknown api-version or a malformed body, 404 ``VaultNotFound`` for a
  vault the scenario does not define (in Azure that would be a DNS failure).
- Values leave this module only in the bodies of get and set responses, and in ``state()``.
  ``state()`` is test material for the control API (``GET /_emulator/state``): it includes values so
  tests can check what a rotation wrote; nothing else here logs or echoes a value.

Event helper: ``GET /keyvault/_events/{vault}?secret=NAME&type=SecretNearExpiry
&schema=eventgrid|cloudevents[&quirks=doc]`` (no token needed) builds the Event Grid notification
Key Vault would send for the current version of a secret (see ``build_event``). It lives beside
the data plane because the server keeps ``/_emulator/`` to its own routes.

The server journals request bodies as sent; ``journal_body`` is the redaction it should apply to
Key Vault requests so a secret value written with ``PUT`` never lands in the journal.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from local.emulator import wire
from local.httpwire import Request, Response

AUDIENCE = "https://vault.azure.net"
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"  # the ARM services' default too
RECOVERY_LEVEL = "Recoverable+Purgeable"
RECOVERABLE_DAYS = 90
MAX_TAGS = 15
PAGE_MAX = 25
# Versions azure-keyvault-secrets 4.12 knows; anything else is refused as Key Vault does.
API_VERSIONS = frozenset(
    {"2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"}
)
EVENT_TYPES = ("SecretNewVersionCreated", "SecretNearExpiry", "SecretExpired")
UNRESOLVED_PREFIX = "<unresolved storageKey "

_log = logging.getLogger(__name__)

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_PREFIX = re.compile(r"^/keyvault/(?P<vault>[^/]+)(?P<rest>/.*)?$")
_EVENT_PATH = re.compile(r"^/keyvault/_events/(?P<vault>[^/]+)/?$")
REDACTED = "<redacted>"


@dataclass
class SecretVersion:
    """One immutable value of a secret, with its mutable properties."""

    version: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    created: int
    updated: int
    exp: int | None = None
    nbf: int | None = None


@dataclass
class Secret:
    name: str  # first spelling; lookups are case-insensitive
    versions: list[SecretVersion] = field(default_factory=list)  # oldest first; the last is current


@dataclass
class Vault:
    name: str
    resource_group: str
    subscription_id: str
    secrets: dict[str, Secret] = field(default_factory=dict)  # keyed by lower-cased name

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.KeyVault/vaults/{self.name}"
        )

    @property
    def azure_url(self) -> str:
        return f"https://{self.name}.vault.azure.net"


class BadRequest(Exception):
    """A request Key Vault would refuse with 400 BadParameter."""


def kv_error(status: int, code: str, message: str, inner: str | None = None) -> Response:
    """Key Vault's error body, plus the headers every Key Vault answer carries."""
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return Response(status, {"error": error}, _headers())


def _headers() -> dict[str, str]:
    return {
        "Cache-Control": "no-cache",
        "x-ms-keyvault-region": "local",
        "x-ms-keyvault-service-version": "1.9.0.0",
        "x-ms-request-id": str(uuid.uuid4()),
    }


def _challenge(reason: Response) -> Response:
    """401 with the challenge the SDK parses; the body keeps Key Vault's wording."""
    code = reason.body["error"]["code"] if isinstance(reason.body, dict) else ""
    message = {
        "AuthenticationFailed": "AKV10000: Request is missing a Bearer or PoP token.",
        "ExpiredAuthenticationToken": "AKV10032: Invalid issuer or token expired.",
    }.get(code, f"AKV10022: Invalid audience. Expected {AUDIENCE}.")
    response = kv_error(401, "Unauthorized", message)
    response.headers.append(
        ("WWW-Authenticate", f'Bearer authorization="https://login.microsoftonline.com/{wire.TENANT_ID}", resource="{AUDIENCE}"')
    )
    return response


def journal_body(method: str, path: str, body: Any) -> Any:
    """The request body as the journal may keep it: a secret's ``value`` is replaced."""
    if method.upper() == "PUT" and path.lower().startswith("/keyvault/") and isinstance(body, dict) and "value" in body:
        return {**body, "value": REDACTED}
    return body


def _epoch(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp())


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


class KeyVaultService:
    """The secrets data plane of every vault in the scenario."""

    name = "keyvault"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._vaults: dict[str, Vault] = {}

    # --- scenario ---------------------------------------------------------------------------

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        """Load ``scenario["vaults"]``; replaces every vault.

        A vault is ``{"name", "resourceGroup", "subscriptionId"?, "secrets": [...]}``. A secret is
        ``{"name", "value", "contentType"?, "tags"?, "enabled"?, "exp"?, "nbf"?, "created"?}`` (times
        are ISO or relative such as "now+20d"), or ``{"name", "versions": [<same fields>, ...]}``
        oldest first. A value ``{"storageKey": {"account": A, "key": "key1"}}`` is the value of that
        storage account key at seed time (see ``storage_key``).
        """
        vaults: dict[str, Vault] = {}
        default_sub = str(scenario.get("subscriptionId") or DEFAULT_SUBSCRIPTION)
        for spec in scenario.get("vaults") or []:
            vault = Vault(
                name=spec["name"],
                resource_group=spec.get("resourceGroup", "rg-default"),
                subscription_id=str(spec.get("subscriptionId") or default_sub),
            )
            for secret_spec in spec.get("secrets") or []:
                secret = Secret(name=secret_spec["name"])
                for version_spec in secret_spec.get("versions") or [secret_spec]:
                    secret.versions.append(self._seed_version(version_spec, now, scenario))
                vault.secrets[secret.name.lower()] = secret
            vaults[vault.name.lower()] = vault
        with self._lock:
            self._vaults = vaults

    def _seed_version(self, spec: dict[str, Any], now: datetime, scenario: dict[str, Any]) -> SecretVersion:
        created = _epoch(wire.resolve_time(spec.get("created"), now)) or _epoch(now) or 0
        return SecretVersion(
            version=spec.get("version") or uuid.uuid4().hex,
            value=_resolve_value(spec.get("value", ""), scenario),
            content_type=spec.get("contentType"),
            tags={str(k): str(v) for k, v in spec["tags"].items()} if spec.get("tags") else None,
            enabled=bool(spec.get("enabled", True)),
            created=created,
            updated=created,
            exp=_epoch(wire.resolve_time(spec.get("exp"), now)),
            nbf=_epoch(wire.resolve_time(spec.get("nbf"), now)),
        )

    def state(self) -> dict[str, Any]:
        """Snapshot for tests, values included (test material; never logged)."""
        with self._lock:
            unresolved = [
                f"{vault.name}/{secret.name}/{v.version}"
                for vault in self._vaults.values()
                for secret in vault.secrets.values()
                for v in secret.versions
                if v.value.startswith(UNRESOLVED_PREFIX)
            ]
            return {
                "unresolvedStorageKeys": unresolved,
                "vaults": [
                    {
                        "name": vault.name,
                        "resourceGroup": vault.resource_group,
                        "subscriptionId": vault.subscription_id,
                        "resourceId": vault.resource_id,
                        "secrets": [
                            {
                                "name": secret.name,
                                "current": secret.versions[-1].version if secret.versions else None,
                                "versions": [
                                    {**_bundle(vault, secret, v, with_value=True), "version": v.version}
                                    for v in secret.versions
                                ],
                            }
                            for secret in vault.secrets.values()
                        ],
                    }
                    for vault in self._vaults.values()
                ]
            }

    # --- HTTP -------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response | None:
        """Serve ``/keyvault/{vault}/secrets...`` and ``/keyvault/_events/{vault}``; None otherwise."""
        path = req.path
        event_match = _EVENT_PATH.match(path)
        if event_match and req.method == "GET":
            return self._event(unquote(event_match.group("vault")), req)
        match = _PREFIX.match(path)
        if not match:
            return None
        rejected = wire.require_bearer(req, AUDIENCE)
        if rejected is not None:
            return _challenge(rejected)
        api_version = req.query.get("api-version")
        if api_version not in API_VERSIONS:
            return kv_error(
                400,
                "BadParameter",
                f"The specified version ({api_version}) is not recognized. Consider using the latest supported version (7.6).",
            )
        with self._lock:
            vault = self._vaults.get(unquote(match.group("vault")).lower())
            if vault is None:
                return kv_error(404, "VaultNotFound", f"Vault '{match.group('vault')}' does not exist in this emulator's scenario.")
            segments = [unquote(s) for s in (match.group("rest") or "/").split("/")[1:]]
            try:
                return self._route(req, vault, segments)
            except BadRequest as exc:
                return kv_error(400, "BadParameter", str(exc))

    def _route(self, req: Request, vault: Vault, segments: list[str]) -> Response:
        method = req.method
        if segments in (["secrets"], ["secrets", ""]) and method == "GET":
            return self._list(req, vault, None)
        if not segments or segments[0] != "secrets" or len(segments) < 2:
            return kv_error(400, "BadParameter", "The request URI is not a secrets operation this emulator serves.")
        name = segments[1]
        if not _NAME.match(name):
            return kv_error(400, "BadParameter", f"The request URI contains an invalid name: {name}")
        rest = segments[2:]
        if method == "PUT" and rest in ([], [""]):
            return self._set(req, vault, name)
        if method == "GET" and rest == ["versions"]:
            return self._list(req, vault, name)
        if method in ("GET", "PATCH") and len(rest) <= 1:
            version = rest[0] if rest else ""
            secret, found = self._find(vault, name, version)
            if secret is None or found is None:
                return _secret_not_found(name, version)
            if method == "GET":
                if not found.enabled:
                    return kv_error(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
                return Response(200, _bundle(vault, secret, found, with_value=True), _headers())
            return self._update(req, vault, secret, found)
        # Delete, backup, restore and recover exist in Key Vault; the app never uses them.
        return kv_error(
            405,
            "MethodNotAllowed",
            f"{method} /{'/'.join(segments)} is not served by this emulator (secrets get/set/list/update only).",
        )

    def _find(self, vault: Vault, name: str, version: str) -> tuple[Secret | None, SecretVersion | None]:
        secret = vault.secrets.get(name.lower())
        if secret is None or not secret.versions:
            return secret, None
        if not version:
            return secret, secret.versions[-1]
        return secret, next((v for v in secret.versions if v.version == version.lower()), None)

    def _set(self, req: Request, vault: Vault, name: str) -> Response:
        body = _json_object(req)
        value = body.get("value")
        if not isinstance(value, str):
            raise BadRequest("Property 'value' is required and must be a string.")
        attributes = _attributes(body.get("attributes"))
        now = _now()
        version = SecretVersion(
            version=uuid.uuid4().hex,
            value=value,
            content_type=_content_type(body),
            tags=_tags(body.get("tags")),
            enabled=attributes.get("enabled", True),
            created=now,
            updated=now,
            exp=attributes.get("exp"),
            nbf=attributes.get("nbf"),
        )
        secret = vault.secrets.setdefault(name.lower(), Secret(name=name))
        secret.versions.append(version)
        return Response(200, _bundle(vault, secret, version, with_value=True), _headers())

    def _update(self, req: Request, vault: Vault, secret: Secret, version: SecretVersion) -> Response:
        body = _json_object(req)
        attributes = _attributes(body.get("attributes"))
        if "contentType" in body:
            version.content_type = _content_type(body)
        if "tags" in body:
            # Key Vault replaces the tag set as a whole; it does not merge.
            version.tags = _tags(body.get("tags"))
        for key in ("enabled", "exp", "nbf"):
            if key in attributes:
                setattr(version, key, attributes[key])
        version.updated = _now()
        return Response(200, _bundle(vault, secret, version, with_value=False), _headers())

    def _list(self, req: Request, vault: Vault, name: str | None) -> Response:
        raw_max = req.query.get("maxresults")
        try:
            page_size = int(raw_max) if raw_max else PAGE_MAX
        except ValueError:
            raise BadRequest("maxresults must be an integer.") from None
        if not 1 <= page_size <= PAGE_MAX:
            raise BadRequest(f"Invalid value {page_size} for maxresults. It should be between 1 and {PAGE_MAX}.")
        if name is None:
            items = [
                _item(vault, s, s.versions[-1], versioned=False)
                for s in sorted(vault.secrets.values(), key=lambda s: s.name.lower())
                if s.versions
            ]
        else:
            secret = vault.secrets.get(name.lower())
            if secret is None:
                return _secret_not_found(name, "")
            items = [_item(vault, secret, v, versioned=True) for v in secret.versions]
        offset = _decode_skiptoken(req.query.get("$skiptoken"))
        page = items[offset : offset + page_size]
        next_link = None
        if offset + page_size < len(items):
            token = _encode_skiptoken(offset + page_size)
            base = f"{req.base_url}/keyvault/{quote(vault.name)}/secrets" + (f"/{quote(name)}/versions" if name else "")
            next_link = f"{base}?api-version={req.query.get('api-version')}&$skiptoken={token}&maxresults={page_size}"
        return Response(200, {"value": page, "nextLink": next_link}, _headers())

    # --- control API ------------------------------------------------------------------------

    def _event(self, vault_name: str, req: Request) -> Response:
        query = req.query
        try:
            event = self.build_event(
                vault_name,
                query.get("secret", ""),
                event_type=query.get("type", "SecretNearExpiry"),
                schema=query.get("schema", "eventgrid"),
                quirks=query.get("quirks") == "doc",
            )
        except LookupError as exc:
            return wire.arm_error(404, "NotFound", str(exc))
        except ValueError as exc:
            return wire.arm_error(400, "BadRequest", str(exc))
        return Response(200, event)

    def build_event(
        self,
        vault_name: str,
        secret_name: str,
        *,
        event_type: str = "SecretNearExpiry",
        schema: str = "eventgrid",
        quirks: bool = False,
    ) -> Any:
        """The notification Key Vault's system topic would deliver for the secret's current version.

        ``schema="eventgrid"`` returns the array Event Grid posts (one event: id, topic = vault
        resource id, subject = secret name, eventType, eventTime, data, dataVersion "1",
        metadataVersion "1"). ``schema="cloudevents"`` returns one CloudEvents 1.0 event
        (source = vault resource id), as delivered in structured mode. ``data`` is ``{Id, VaultName,
        ObjectType: "Secret", ObjectName, Version, NBF, EXP}`` with NBF/EXP in epoch seconds (null
        when unset). ``quirks=True`` reproduces the documented sample's stray spaces
        (``"ObjectName "``, ``" <version>"``) and string NBF/EXP, which consumers must trim.
        """
        short_type = event_type.removeprefix("Microsoft.KeyVault.")
        if short_type not in EVENT_TYPES:
            raise ValueError(f"type must be one of {', '.join(EVENT_TYPES)}")
        if schema not in ("eventgrid", "cloudevents"):
            raise ValueError("schema must be eventgrid or cloudevents")
        with self._lock:
            vault = self._vaults.get(vault_name.lower())
            if vault is None:
                raise LookupError(f"vault '{vault_name}' is not in the scenario")
            secret, current = self._find(vault, secret_name, "")
            if secret is None or current is None:
                raise LookupError(f"secret '{secret_name}' is not in vault '{vault.name}'")
            data: dict[str, Any] = {
                "Id": f"{vault.azure_url}/secrets/{secret.name}/{current.version}",
                "VaultName": vault.name,
                "ObjectType": "Secret",
                "ObjectName": secret.name,
                "Version": current.version,
                "NBF": current.nbf,
                "EXP": current.exp,
            }
            topic = vault.resource_id
        if quirks:
            data = {
                "Id": data["Id"],
                "VaultName": data["VaultName"],
                "ObjectType": "Secret",
                "ObjectName ": data["ObjectName"],
                "Version": f" {data['Version']}",
                "NBF": None if data["NBF"] is None else str(data["NBF"]),
                "EXP": None if data["EXP"] is None else str(data["EXP"]),
            }
        event_id = str(uuid.uuid4())
        when = wire.iso(datetime.now(UTC))
        full_type = f"Microsoft.KeyVault.{short_type}"
        if schema == "cloudevents":
            return {
                "id": event_id,
                "source": topic,
                "specversion": "1.0",
                "type": full_type,
                "subject": secret.name,
                "time": when,
                "data": data,
            }
        return [
            {
                "id": event_id,
                "topic": topic,
                "subject": secret.name,
                "eventType": full_type,
                "eventTime": when,
                "data": data,
                "dataVersion": "1",
                "metadataVersion": "1",
            }
        ]


# --- bodies -------------------------------------------------------------------------------


def _attrs(version: SecretVersion) -> dict[str, Any]:
    attributes: dict[str, Any] = {"enabled": version.enabled}
    if version.nbf is not None:
        attributes["nbf"] = version.nbf
    if version.exp is not None:
        attributes["exp"] = version.exp
    attributes.update(
        created=version.created,
        updated=version.updated,
        recoveryLevel=RECOVERY_LEVEL,
        recoverableDays=RECOVERABLE_DAYS,
    )
    return attributes


def _bundle(vault: Vault, secret: Secret, version: SecretVersion, *, with_value: bool) -> dict[str, Any]:
    """A SecretBundle: the versioned item, with the value only for get and set answers (and the state snapshot)."""
    item = _item(vault, secret, version, versioned=True)
    return {"value": version.value, **item} if with_value else item


def _item(vault: Vault, secret: Secret, version: SecretVersion, *, versioned: bool) -> dict[str, Any]:
    """A SecretItem as list operations return it: no value; unversioned id when listing secrets."""
    item: dict[str, Any] = {"id": f"{vault.azure_url}/secrets/{secret.name}" + (f"/{version.version}" if versioned else "")}
    if version.content_type is not None:
        item["contentType"] = version.content_type
    item["attributes"] = _attrs(version)
    if version.tags is not None:
        item["tags"] = dict(version.tags)
    return item


def _secret_not_found(name: str, version: str) -> Response:
    ident = f"{name}/{version}" if version else name
    return kv_error(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {ident} was not found in this key vault. If you recently deleted this secret you may "
        "be able to recover it using the correct recovery command. For help resolving this issue, please see "
        "https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def _json_object(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _content_type(body: dict[str, Any]) -> str | None:
    value = body.get("contentType")
    if value is not None and not isinstance(value, str):
        raise BadRequest("Property 'contentType' must be a string.")
    return value


def _tags(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadRequest("Property 'tags' must be an object of string values.")
    if len(value) > MAX_TAGS:
        raise BadRequest(f"A secret can have at most {MAX_TAGS} tags.")
    return {str(k): v for k, v in value.items()}


def _attributes(value: Any) -> dict[str, Any]:
    """Writable attributes that were given: enabled (bool), exp and nbf (epoch seconds or null)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("Property 'attributes' must be an object.")
    given: dict[str, Any] = {}
    if "enabled" in value and value["enabled"] is not None:
        if not isinstance(value["enabled"], bool):
            raise BadRequest("Property 'attributes.enabled' must be a boolean.")
        given["enabled"] = value["enabled"]
    for key in ("exp", "nbf"):
        if key in value:
            raw = value[key]
            if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int | float)):
                raise BadRequest(f"Property 'attributes.{key}' must be a number of seconds since 1970-01-01.")
            given[key] = None if raw is None else int(raw)
    return given


def _encode_skiptoken(offset: int) -> str:
    raw = json.dumps({"NextMarker": offset}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_skiptoken(token: str | None) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        return int(json.loads(base64.urlsafe_b64decode(padded))["NextMarker"])
    except (ValueError, KeyError, TypeError):
        raise BadRequest("The $skiptoken is not valid.") from None


def _resolve_value(value: Any, scenario: dict[str, Any]) -> str:
    """A literal value, or ``{"storageKey": {"account", "key"}}`` (see ``storage_key``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("storageKey"), dict):
        ref = value["storageKey"]
        return storage_key(str(ref.get("account", "")), str(ref.get("key", "key1")), scenario)
    raise ValueError(f"unsupported secret value in scenario: {type(value).__name__}")


def storage_key(account: str, key_name: str, scenario: dict[str, Any]) -> str:
    """The value of a storage account key at seed time.

    Read from the ARM storage service's state when ``local.emulator.arm_storage.SERVICE`` exists
    (the server seeds storage before Key Vault); otherwise from the key the scenario gives the
    account. A key that is random and unreachable is an unresolved placeholder, reported in
    ``state()`` and logged, so one scenario gap does not stop every other service from seeding.
    """
    from local.emulator import arm_storage

    service = getattr(arm_storage, "SERVICE", None)
    if service is not None:
        for acct in service.state().get("accounts", []):
            if str(acct.get("name", "")).lower() == account.lower():
                found = (acct.get("keys") or {}).get(key_name)
                if found:
                    return str(found)
    for spec in scenario.get("storageAccounts") or []:
        if str(spec.get("name", "")).lower() == account.lower():
            given = (spec.get("keys") or {}).get(key_name)
            if given:
                return str(given)
    _log.warning("storageKey %s/%s cannot be resolved at seed time; the secret gets a placeholder", account, key_name)
    return f"{UNRESOLVED_PREFIX}{account}/{key_name}>"


SERVICE = KeyVaultService()
