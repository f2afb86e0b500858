"""Managed identity token endpoint, App Service flavour (what Azure Functions gives an app).

Rules:
- ``GET /msi/token?resource=R&api-version=2019-08-01`` with header ``X-IDENTITY-HEADER`` equal to
  the secret printed at start answers ``{"access_token", "expires_on" (epoch seconds, as a
  string), "resource", "token_type": "Bearer", "client_id"}``. A wrong or missing header is 401,
  a missing resource or an api-version other than 2019-08-01 is 400: the same answers App
  Service gives, so azure-identity (through MSAL) meets no surprise.
- ARM accepts a token whose audience starts with ``https://management`` (public and sovereign
  clouds), or is the emulator's own URL: azure-ai-ml asks for a token scoped to the resource
  manager endpoint of its cloud, and with a custom cloud that endpoint is the emulator.
"""

from __future__ import annotations

import hmac
import secrets
from collections import Counter
from datetime import datetime
from typing import Any

from local.emulator import wire
from local.httpwire import Request, Response

TOKEN_PATH = "/msi/token"
APP_SERVICE_API_VERSION = "2019-08-01"


class IdentityService:
    """Issues tokens to whoever presents the identity header secret."""

    name = "identity"

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret or secrets.token_urlsafe(24)
        self._issued: Counter[str] = Counter()

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        """Identity has no scenario section; a reset only forgets what was issued."""
        del scenario, now
        self._issued.clear()

    def state(self) -> dict[str, Any]:
        return {"tokensIssued": dict(self._issued)}

    def handle(self, req: Request) -> Response | None:
        if req.path.rstrip("/") != TOKEN_PATH:
            return None
        if req.method != "GET":
            return wire.arm_error(405, "MethodNotAllowed", f"{req.method} is not supported on {TOKEN_PATH}.")
        presented = req.header("x-identity-header") or ""
        # Constant-time comparison: the header is the only thing standing between a local
        # process and a token, as on App Service.
        if not presented or not hmac.compare_digest(presented.encode(), self.secret.encode()):
            return Response(401, {"statusCode": 401, "message": "The X-IDENTITY-HEADER is missing or invalid."})
        if req.arg("api-version") != APP_SERVICE_API_VERSION:
            return Response(400, {"statusCode": 400, "message": f"api-version must be {APP_SERVICE_API_VERSION}."})
        resource = req.arg("resource")
        if not resource:
            return Response(400, {"statusCode": 400, "message": "The resource parameter is required."})
        token, expires_on = wire.issue_token(resource)
        self._issued[resource.rstrip("/")] += 1
        return Response(200, {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": req.arg("client_id") or wire.PRINCIPAL_ID,
        })


SERVICE = IdentityService()


def require_arm_bearer(req: Request) -> Response | None:
    """401 unless the request carries a valid token for ARM (see the module rules)."""
    refused = wire.require_bearer(req, "https://management")
    if refused is None or not req.base_url:
        return refused
    # A custom cloud whose resource manager endpoint is this emulator: its own URL is the audience.
    return refused if wire.require_bearer(req, req.base_url) else None
