"""Wire-level building blocks shared by every service the emulator serves.

Each service module (ARM, Key Vault, Monitor, identity) exposes an object with:

    seed(scenario: dict, now: datetime) -> None   # take its own section of the scenario
    state() -> dict                               # JSON snapshot for GET /_emulator/state
    handle(req: Request) -> Response | None       # None: "not my route"

and uses only the helpers below (and `local.httpwire`'s Request and Response), so the server
can journal, fault-inject and delay every request in one place.
"""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from local.httpwire import Request, Response

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PRINCIPAL_ID = "8e5f1e1a-6a2b-4c3d-9e8f-0a1b2c3d4e5f"  # the managed identity the emulator issues tokens for


def arm_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error in ARM's shape: {"error": {"code", "message"}}."""
    return Response(status, {"error": {"code": code, "message": message}}, headers or {})


def not_found(kind: str, name: str) -> Response:
    return arm_error(404, "ResourceNotFound", f"The Resource '{kind}/{name}' was not found.")


# --- bearer tokens -------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def issue_token(resource: str, lifetime_s: int = 3600) -> tuple[str, int]:
    """A JWT-shaped (unsigned) access token for `resource`, and its expiry (epoch seconds).

    Clients such as azure-ai-ml decode the payload (oid, tid), so it must be a real JWT shape.
    """
    now = int(time.time())
    exp = now + lifetime_s
    claims = {
        "aud": resource.rstrip("/"),
        "iss": f"https://sts.windows.net/{TENANT_ID}/",
        "iat": now,
        "nbf": now,
        "exp": exp,
        "oid": PRINCIPAL_ID,
        "sub": PRINCIPAL_ID,
        "tid": TENANT_ID,
        "appid": PRINCIPAL_ID,
        "idtyp": "app",
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.emulator", exp


def token_claims(req: Request) -> dict[str, Any] | None:
    """The claims of the request's bearer token, or None when absent or unreadable."""
    auth = req.header("authorization") or ""
    if not auth.lower().startswith("bearer "):
        return None
    parts = auth[7:].strip().split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        return json.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        return None


def require_bearer(req: Request, audience_prefix: str) -> Response | None:
    """401 unless the request carries an unexpired token whose audience starts with `audience_prefix`."""
    claims = token_claims(req)
    if claims is None:
        return arm_error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    if claims.get("exp", 0) < time.time():
        return arm_error(401, "ExpiredAuthenticationToken", "The access token has expired.")
    if not str(claims.get("aud", "")).startswith(audience_prefix.rstrip("/")):
        return arm_error(401, "InvalidAuthenticationTokenAudience", f"The access token has an invalid audience '{claims.get('aud')}'.")
    return None


# --- time ------------------------------------------------------------------------------------

_REL = re.compile(r"^now(?:(?P<sign>[+-])(?P<span>(?:\d+[dhms])+))?$")
_UNIT = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def resolve_time(value: str | None, now: datetime) -> datetime | None:
    """Scenario timestamps: ISO 8601, or relative to seeding time such as 'now', 'now-3h12m', 'now+30d'."""
    if value is None:
        return None
    match = _REL.match(value.strip())
    if match:
        delta = timedelta()
        for amount, unit in re.findall(r"(\d+)([dhms])", match.group("span") or ""):
            delta += timedelta(**{_UNIT[unit]: int(amount)})
        return now - delta if match.group("sign") == "-" else now + delta
    return instant(value)


def instant(text: str) -> datetime:
    """An ISO 8601 time as Azure writes it (a Z, or an offset; none is UTC); ValueError for anything else."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_DURATION = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?=\d)(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)
_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(value: Any) -> timedelta:
    """An ISO 8601 duration in days, hours, minutes and seconds as Azure spells them ("PT30M",
    "P1DT2H", "PT0.5S"); ValueError for anything else ("P", "PT", "P1DT", "P1Y", "1h", not text)."""
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or not any(match.groups()):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    return timedelta(**{_DURATION_UNITS[k]: float(v) for k, v in match.groupdict().items() if v})


def iso(dt: datetime | None) -> str | None:
    """ARM's timestamp spelling: UTC with a Z."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")
