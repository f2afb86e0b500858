"""The HTTP request and response values the host's handlers exchange.

Rules: header names are looked up case-insensitively; repeated query parameters are joined with
"," as ASP.NET Core's StringValues renders them; bodies are bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    """One inbound request, fully read."""

    method: str
    target: str  # path and query as sent
    headers: list[tuple[str, str]]
    body: bytes = b""
    base_url: str = ""  # scheme://host:port the client used

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        joined: dict[str, str] = {}
        for key, value in parse_qsl(urlsplit(self.target).query, keep_blank_values=True):
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        return joined

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def header_map(self) -> dict[str, str]:
        """Headers by name, repeated ones joined with ", "."""
        merged: dict[str, str] = {}
        for key, value in self.headers:
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return merged

    @property
    def url(self) -> str:
        return self.base_url + self.target


@dataclass
class Response:
    """One response; `body` may be bytes, text or a JSON-serialisable value."""

    status: int
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    def encode(self) -> tuple[bytes, list[tuple[str, str]]]:
        headers = list(self.headers)
        names = {k.lower() for k, _ in headers}
        if self.body is None:
            payload = b""
        elif isinstance(self.body, bytes):
            payload = self.body
        elif isinstance(self.body, str):
            payload = self.body.encode("utf-8")
            if "content-type" not in names:
                headers.append(("Content-Type", "text/plain; charset=utf-8"))
        else:
            payload = json.dumps(self.body).encode("utf-8")
            if "content-type" not in names:
                headers.append(("Content-Type", "application/json; charset=utf-8"))
        return payload, headers
