"""A stand-in for the Azure Retail Prices API (``GET https://prices.azure.com/api/retail/prices``).

Rules, after Microsoft Learn, "Azure Retail Prices REST API" (cost-management/retail-prices):
- public: no Authorization is asked for (a bearer token is ignored);
- ``$filter`` is OData: ``field eq 'value'`` clauses joined by ``and`` on the item fields
  (``armRegionName``, ``armSkuName``, ``serviceName``, …; ``priceType`` filters on ``type``); from api-version
  ``2023-01-01-preview`` on, values compare case-sensitively, before it without case; anything
  else in a filter is a 400;
- the answer is ``{"BillingCurrency", "CustomerEntityId", "CustomerEntityType", "Items", "NextPageLink",
  "Count"}``; a page holds at most ``pageSize`` items (the service pages at 1000) and
  ``NextPageLink`` is the same query with ``$skip``, or null on the last page;
- ``currencyCode='EUR'`` is accepted but answered in USD here (Microsoft prices in USD; other
  currencies are conversions for reference).

The catalogue holds real-looking items for the sizes the scenarios use, each size with its decoys:
Windows, Spot, Low Priority, DevTest and a 1-year reservation. A scenario may replace it with
``"prices": {"items": [...], "pageSize": N}``.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from local.emulator import wire
from local.httpwire import Request, Response

PATH = "/api/retail/prices"
DEFAULT_PAGE_SIZE = 1000
CASE_SENSITIVE_FROM = "2023-01-01"  # api-version 2023-01-01-preview and later
# Filter names that are not item fields: `priceType` filters on an item's `type` (Consumption, Reservation, DevTestConsumption).
_FILTER_FIELDS = {"priceType": "type"}
_CLAUSE = re.compile(r"^\s*(?P<field>[A-Za-z]+)\s+eq\s+'(?P<value>[^']*)'\s*$")

# (armSkuName, productName series, skuName, westeurope Linux pay-as-you-go USD/hour)
_SIZES = (
    ("Standard_DS3_v2", "DSv2 Series", "DS3 v2", 0.293),
    ("Standard_DS4_v2", "DSv2 Series", "DS4 v2", 0.585),
    ("Standard_D4s_v3", "DSv3 Series", "D4s v3", 0.23),
    ("Standard_NC6s_v3", "NCSv3 Series", "NC6s v3", 3.366),
)
_REGIONS = (("westeurope", "EU West", 1.0), ("eastus", "US East", 0.86))


def _item(region: tuple[str, str, float], arm_sku: str, product: str, sku: str, price: float, *, kind: str = "Consumption",
          term: str | None = None) -> dict[str, Any]:
    name, location, factor = region
    item: dict[str, Any] = {
        "currencyCode": "USD", "tierMinimumUnits": 0.0, "retailPrice": round(price * factor, 4),
        "unitPrice": round(price * factor, 4), "armRegionName": name, "location": location,
        "effectiveStartDate": "2024-05-01T00:00:00Z", "meterId": f"meter-{name}-{sku}-{product}".replace(" ", "-").lower(),
        "meterName": sku, "productId": "DZH318Z0BQ4" + str(len(product)), "skuId": f"DZH318Z0BQ4/{sku}",
        "productName": f"Virtual Machines {product}", "skuName": sku, "serviceName": "Virtual Machines",
        "serviceId": "DZH313Z7MMC8", "serviceFamily": "Compute", "unitOfMeasure": "1 Hour", "type": kind,
        "isPrimaryMeterRegion": True, "armSkuName": arm_sku,
    }
    if term:
        item["reservationTerm"] = term
    return item


def catalogue() -> list[dict[str, Any]]:
    """Every item the stand-in serves by default: for each size and region the Linux pay-as-you-go price and its decoys."""
    items = []
    for region in _REGIONS:
        for arm_sku, series, sku, price in _SIZES:
            items += [
                _item(region, arm_sku, f"{series} Windows", sku, price * 1.63),
                _item(region, arm_sku, series, f"{sku} Spot", price * 0.2),
                _item(region, arm_sku, series, f"{sku} Low Priority", price * 0.2),
                _item(region, arm_sku, series, sku, price, kind="DevTestConsumption"),
                _item(region, arm_sku, series, sku, price * 5100, kind="Reservation", term="1 Year"),
                _item(region, arm_sku, series, sku, price),
            ]
    return items


class PricesService:
    name = "prices"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = catalogue()
        self._page = DEFAULT_PAGE_SIZE

    def seed(self, scenario: dict[str, Any], now: datetime) -> None:
        del now
        spec = scenario.get("prices") or {}
        with self._lock:
            self._items = [dict(i) for i in spec["items"]] if "items" in spec else catalogue()
            self._page = max(1, int(spec.get("pageSize", DEFAULT_PAGE_SIZE)))

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"items": len(self._items), "pageSize": self._page}

    def handle(self, req: Request) -> Response | None:
        if req.path.rstrip("/").lower() != PATH:
            return None
        if req.method != "GET":
            return wire.arm_error(405, "MethodNotAllowed", "The Retail Prices API accepts GET only.")
        version = req.arg("api-version") or ""
        try:
            clauses = _parse(req.arg("$filter") or "")
        except ValueError as exc:
            return wire.arm_error(400, "BadRequest", str(exc))
        try:
            skip = max(0, int(req.arg("$skip") or 0))
        except ValueError:
            return wire.arm_error(400, "BadRequest", "$skip must be a whole number.")
        sensitive = version >= CASE_SENSITIVE_FROM

        def matches(item: dict[str, Any]) -> bool:
            for field, value in clauses:
                have = str(item.get(_FILTER_FIELDS.get(field, field), ""))
                if (have != value) if sensitive else (have.lower() != value.lower()):
                    return False
            return True

        with self._lock:
            found = [dict(i) for i in self._items if matches(i)]
            page = self._page
        items = found[skip:skip + page]
        following = None
        if skip + page < len(found):
            query = {k: v for k, v in req.query.items() if k.lower() != "$skip"}
            query["$skip"] = str(skip + page)
            following = f"https://{req.header('host') or 'prices.azure.com'}{PATH}?{urlencode(query)}"
        return Response(200, {"BillingCurrency": "USD", "CustomerEntityId": "Default", "CustomerEntityType": "Retail",
                              "Items": items, "NextPageLink": following, "Count": len(items)})


def _parse(text: str) -> list[tuple[str, str]]:
    """``a eq 'x' and b eq 'y'`` → [(a, x), (b, y)]; anything else is refused."""
    if not text.strip():
        return []
    out = []
    for part in re.split(r"\s+and\s+", text.strip()):
        match = _CLAUSE.match(part)
        if not match:
            raise ValueError(f"Invalid $filter clause {part[:80]!r}: only \"field eq 'value'\" joined by and is supported.")
        out.append((match.group("field"), match.group("value")))
    return out


SERVICE = PricesService()
