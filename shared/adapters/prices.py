"""Hourly VM prices from the Azure Retail Prices API, cached in the ledger for a day.

The API (Microsoft Learn, "Azure Retail Prices REST API") is public and needs no sign-in:
``GET {RETAIL_PRICES_ENDPOINT}?api-version=2023-01-01-preview&$filter=armRegionName eq 'westeurope' and
armSkuName eq 'Standard_DS3_v2' and priceType eq 'Consumption'`` answers ``{"Items": [...],
"NextPageLink": ...}``. The price an idle VM would have cost is the pay-as-you-go Linux one: an
item of ``type`` "Consumption", ``unitOfMeasure`` "1 Hour", in USD, whose ``productName`` does not
end in "Windows" and whose ``skuName`` / ``meterName`` is not a "Spot" or "Low Priority" meter.
From this api-version on, filter values compare case-sensitively: region names are lower case,
size names as ARM spells them.

No price is an answer too: the report then shows core-hours and says why. A miss is cached like a
price (the catalogue will not change within the day); a failed read is not (it is tried again).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from shared.payload import PayloadError, load_json
from shared.settings import Settings

log = logging.getLogger("autopilot.prices")

API_VERSION = "2023-01-01-preview"
CACHE_FOR = timedelta(days=1)
MAX_PAGES = 20  # a size in a region has a few dozen items; more pages than this is not an answer to trust
MAX_PAGE_BYTES = 4 * 1024 * 1024  # a page of 1000 items is about 0.6 MB; a bigger one is not read to its end
_NAME = re.compile(r"^[A-Za-z0-9_]{1,80}$")  # region and VM size names: nothing that could leave the quotes


@dataclass(frozen=True)
class Price:
    """What one VM of a size costs per hour in a region, and which meter says so."""

    hourly: float
    currency: str
    meter: str


class _Cache(Protocol):
    def cached_price(self, region: str, size: str, fresh_after: datetime) -> dict[str, Any] | None: ...
    def put_price(self, region: str, size: str, at: datetime, **fields: Any) -> None: ...


def pay_as_you_go(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The pay-as-you-go Linux hourly item among a size's items (primary meter region first, then the cheapest)."""
    def linux_consumption(item: dict[str, Any]) -> bool:
        meters = f"{item.get('skuName', '')} {item.get('meterName', '')}".lower()
        return (item.get("type") == "Consumption" and item.get("unitOfMeasure") == "1 Hour"
                and item.get("currencyCode", "USD") == "USD" and "spot" not in meters and "low priority" not in meters
                and not str(item.get("productName", "")).lower().endswith("windows")
                and _hourly(item.get("retailPrice")) is not None)

    found = [i for i in items if isinstance(i, dict) and linux_consumption(i)]
    if not found:
        return None
    return min(found, key=lambda i: (not i.get("isPrimaryMeterRegion", True), float(i["retailPrice"])))


def _hourly(value: Any) -> float | None:
    """A retail price as the API gives it (a JSON number), when it is a positive finite one; None otherwise
    (text, true, NaN or infinity is not a price to multiply hours by)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


class RetailPrices:
    """Prices of VM sizes by region, from the ledger's cache or the Retail Prices API."""

    def __init__(self, settings: Settings, cache: _Cache | None) -> None:
        self.settings = settings
        self.cache = cache
        self._seen: dict[tuple[str, str], Price | str] = {}

    def hourly(self, region: str, size: str, now: datetime) -> Price | str:
        """The price of one VM hour, or why there is none (one line)."""
        key = (region.lower(), size.lower())
        if key not in self._seen:
            self._seen[key] = self._lookup(region.lower(), size, now)
        return self._seen[key]

    def _lookup(self, region: str, size: str, now: datetime) -> Price | str:
        if not (_NAME.match(region) and _NAME.match(size)):
            return f"{size[:80]!a} in {region[:80]!a} is not a VM size and region the price list knows"
        row = self._cached(region, size, now)
        if row is not None:
            if row.get("Found"):
                return Price(float(row["Price"]), str(row.get("Currency") or "USD"), str(row.get("Meter") or ""))
            return str(row.get("Reason") or f"no price for {size} in {region}")
        try:
            item = pay_as_you_go(self._items(region, size))
        except _Unreadable as exc:
            return f"Retail Prices API not readable ({exc})"  # not cached: tried again next time
        if item is None:
            reason = f"the price list has no pay-as-you-go Linux hourly price for {size} in {region}"
            self._store(region, size, now, Found=False, Reason=reason)
            return reason
        price = Price(float(item["retailPrice"]), str(item.get("currencyCode") or "USD"),
                      f"{item.get('productName', '')} / {item.get('meterName', '')}")
        self._store(region, size, now, Found=True, Price=price.hourly, Currency=price.currency, Meter=price.meter[:200])
        return price

    def _cached(self, region: str, size: str, now: datetime) -> dict[str, Any] | None:
        if self.cache is None:
            return None
        try:
            return self.cache.cached_price(region, size, now - CACHE_FOR)
        except Exception as exc:  # the cache is a convenience: the price list itself still answers
            log.warning("price cache unreadable: %s", type(exc).__name__)
            return None

    def _store(self, region: str, size: str, now: datetime, **fields: Any) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put_price(region, size, now, **fields)
        except Exception as exc:
            log.warning("price not cached: %s", type(exc).__name__)

    def _items(self, region: str, size: str) -> list[dict[str, Any]]:
        """Every item of the size in the region, following NextPageLink to the endpoint's own scheme, host and port only.

        No redirect is followed (a page answering with one is unreadable) and no page is read beyond
        MAX_PAGE_BYTES: the price list can point this process at nothing but itself.
        """
        import requests

        endpoint = self.settings.retail_prices_endpoint
        origin = _origin(endpoint)
        url: str | None = endpoint
        params: dict[str, str] | None = {
            "api-version": API_VERSION,
            "$filter": f"armRegionName eq '{region}' and armSkuName eq '{size}' and priceType eq 'Consumption'",
        }
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            try:
                with requests.get(url, params=params, timeout=self.settings.arm_timeout_seconds, allow_redirects=False,
                                  stream=True) as response:
                    if response.is_redirect or response.is_permanent_redirect:
                        raise _Unreadable(f"a redirect ({response.status_code}) instead of a page")
                    response.raise_for_status()
                    body = load_json(_bounded_body(response), MAX_PAGE_BYTES, "a page of the price list", shaped=False)
            except (requests.RequestException, PayloadError) as exc:
                raise _Unreadable(str(exc) if isinstance(exc, PayloadError) else type(exc).__name__) from exc
            if not isinstance(body, dict) or not isinstance(body.get("Items"), list):
                raise _Unreadable("an answer without Items")
            items += body["Items"]
            following = body.get("NextPageLink")
            if following and (not isinstance(following, str) or _origin(following) != origin):
                raise _Unreadable("a next page elsewhere than the price list's own scheme, host and port")
            url, params = (following, None) if following else (None, None)
        raise _Unreadable(f"more than {MAX_PAGES} pages")


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of a URL, the default port made explicit; None when it has none readable."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:
        return None
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port) if parts.hostname else None


def _bounded_body(response: Any) -> bytes:
    """The body of a streamed response, read no further than one byte past MAX_PAGE_BYTES."""
    body = bytearray()
    for chunk in response.iter_content(64 * 1024):
        body += chunk
        if len(body) > MAX_PAGE_BYTES:
            break
    return bytes(body)


class _Unreadable(Exception):
    """The price list could not be read (network, HTTP error, an answer of the wrong shape)."""
