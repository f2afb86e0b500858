"""The AML workspaces of the allowed scopes, found through Azure Resource Graph.

One query per kind of scope (subscriptions, management groups), paged with ``$skipToken`` at
Resource Graph's maximum of 1000 rows a page. Resource Graph needs no role of its own: it answers
with the resources the identity may read, so the app's Reader-level role on a scope is what makes
a workspace discoverable there. Rows whose id is not an AML workspace id are dropped (and said).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from shared.adapters.azure import client_options, credential, translate
from shared.fleet import WORKSPACE_TYPE, in_scopes
from shared.model import ResourceId
from shared.settings import Scope, Settings

log = logging.getLogger("autopilot.discovery")

PAGE_ROWS = 1000  # Resource Graph's maximum $top
SUBSCRIPTIONS_PER_QUERY = 1000  # Resource Graph takes at most this many subscriptions in one request


def query_text(tag: tuple[str, str | None] | None) -> str:
    """The KQL: AML workspaces, with the tag filter when one is set (values compared case-insensitively).

    The tag's key and value were checked by the settings (no quote can reach the query).
    """
    stages = ["Resources", f"where type =~ '{WORKSPACE_TYPE}'"]
    if tag is not None:
        key, value = tag
        if any(c in "'\\" or not c.isprintable() for c in key + (value or "")):
            raise ValueError("a tag filter holding a quote, a backslash or a control character cannot be a KQL literal")
        stages.append(f"where isnotempty(tags['{key}'])" if value is None else f"where tags['{key}'] =~ '{value}'")
    stages.append("project id, subscriptionId, location")
    return " | ".join(stages)


class ResourceGraph:
    """Runs the discovery query on the ARM endpoint of the settings (so sovereign clouds work unchanged)."""

    def __init__(self, settings: Settings, cred: Any | None = None) -> None:
        from azure.mgmt.resourcegraph import ResourceGraphClient

        self.settings = settings
        self._client = ResourceGraphClient(cred or credential(), base_url=settings.arm_endpoint,
                                           credential_scopes=[f"{settings.arm_audience}/.default"], **client_options(settings))
        self.requests = 0

    def workspaces(self, scopes: Iterable[Scope], tag: tuple[str, str | None] | None) -> tuple[ResourceId, ...]:
        """Every AML workspace in `scopes` (carrying `tag` when given), each once, in Resource Graph's order."""
        scopes = list(scopes)
        subscriptions = [s.name for s in scopes if s.kind == "subscription"]
        groups = [s.name for s in scopes if s.kind == "managementGroup"]
        found: dict[str, ResourceId] = {}
        requests = [{"subscriptions": subscriptions[i:i + SUBSCRIPTIONS_PER_QUERY]}
                    for i in range(0, len(subscriptions), SUBSCRIPTIONS_PER_QUERY)]
        requests += [{"management_groups": groups}] if groups else []
        for scope in requests:
            for row in self._rows(scope, query_text(tag)):
                try:
                    rid = ResourceId.parse(str(row.get("id", "")))
                except ValueError as exc:
                    log.warning("discovery: dropped a row that is no resource id: %s", exc)
                    continue
                if not in_scopes(rid, scopes):
                    log.warning("discovery: dropped %s, which is not an AML workspace of the scopes", rid.id[:300])
                    continue
                found.setdefault(rid.key, rid)
        return tuple(found.values())

    def _rows(self, scope: dict[str, list[str]], query: str) -> Iterator[dict[str, Any]]:
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        token: str | None = None
        while True:
            request = QueryRequest(query=query, options=QueryRequestOptions(top=PAGE_ROWS, skip_token=token,
                                                                             result_format="objectArray"), **scope)
            try:
                self.requests += 1
                page = self._client.resources(request)
            except Exception as exc:
                raise translate(exc, "Resource Graph: discover workspaces") from exc
            yield from (row for row in page.data or [] if isinstance(row, dict))
            token = page.skip_token
            if not token:
                return
