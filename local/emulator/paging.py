"""ARM list paging, as the emulator serves its Microsoft.MachineLearningServices lists.

ARM answers a list one page at a time: ``{"value": [...], "nextLink": "<absolute URL>"}``, the
next link carrying the same query plus an opaque ``$skipToken`` (the parameter the jobs list
declares in the REST spec), and ``nextLink`` absent or null on the last page. A client must follow
the links; one that reads only ``value`` silently sees the first page.

AML does not publish its page size; ``DEFAULT_PAGE_SIZE`` is the emulator's, settable through the
control API (``POST /_emulator/paging {"pageSize": N}``, 0 = every list in one page) so contract
tests can check either. The token is an offset into the list's order at the time of the request:
a job created while a client pages shifts the rest by one (a client may see an item twice, never
miss one that existed when it started).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from local.emulator import wire
from local.httpwire import Request, Response

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
TOKEN = "$skipToken"


def encode(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"skip": offset}).encode()).rstrip(b"=").decode()


def decode(token: str | None) -> int | None:
    """The offset a token carries; None when it is not one of ours."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["skip"]
    except (ValueError, KeyError, TypeError):
        return None
    return offset if isinstance(offset, int) and offset >= 0 else None


def page(req: Request, items: Sequence[T], size: int, render: Callable[[T], Any]) -> Response:
    """One page of `items` (already in the list's order) for this request, with ARM's nextLink."""
    found = window(req, items, size)
    if found is None:
        return wire.arm_error(400, "BadRequest", f"The {TOKEN} is not valid.")
    chunk, _, next_link = found
    return Response(200, {"value": [render(item) for item in chunk], "nextLink": next_link})


def window(req: Request, items: Sequence[T], size: int, token: str = TOKEN) -> tuple[Sequence[T], str | None, str | None] | None:
    """The part of `items` the request's `token` parameter points at (`size` of them; 0: all), the token
    of the next part and the link that carries it (the same query, that token replaced); None when the
    request's token is not one of ours."""
    offset = decode(req.arg(token))
    if offset is None:
        return None
    size = size if size > 0 else max(len(items), 1)
    following = encode(offset + size) if offset + size < len(items) else None
    next_link = None
    if following:
        query = [(k, v) for k, v in req.query.items() if k.lower() != token.lower()]
        next_link = f"{req.base_url}{req.path}?{urlencode([*query, (token, following)])}"
    return items[offset:offset + size], following, next_link
