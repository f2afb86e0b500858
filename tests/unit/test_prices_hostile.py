"""The Retail Prices client against a price list that misbehaves: it is served over real HTTP by a small
local server (two of them, the second standing for another origin), so requests' own redirect, streaming
and URL handling are what is tested."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.adapters.prices import MAX_PAGE_BYTES, Price, RetailPrices, pay_as_you_go
from shared.settings import Settings

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def item(price: object, **extra: object) -> dict[str, object]:
    return {"type": "Consumption", "unitOfMeasure": "1 Hour", "currencyCode": "USD", "retailPrice": price,
            "productName": "Virtual Machines DSv2 Series", "skuName": "DS3 v2", "meterName": "DS3 v2", **extra}


class Server:
    """One HTTP server answering every GET with what `answer(path)` gives: (status, headers, body)."""

    def __init__(self) -> None:
        self.answer: Callable[[str], tuple[int, dict[str, str], bytes]] = lambda path: (404, {}, b"")
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                status, headers, body = outer.answer(self.path)
                self.send_response(status)
                for k, v in {"Content-Length": str(len(body)), "Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a bounded read stops early
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/retail/prices"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def page(self, items: list[object], following: str | None = None) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, json.dumps({"Items": items, "NextPageLink": following}).encode()


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    pair = (Server(), Server())
    yield pair
    for s in pair:
        s.httpd.shutdown()
        s.httpd.server_close()


def prices_at(url: str) -> RetailPrices:
    base = Settings.from_env({"ALLOWED_WORKSPACES": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/"
                              "providers/Microsoft.MachineLearningServices/workspaces/ws",
                              "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    return RetailPrices(replace(base, retail_prices_endpoint=url, arm_timeout_seconds=5), None)


def test_a_next_page_on_the_same_host_but_another_port_is_not_followed(servers):
    prices_api, other = servers
    other_port = other.url.split(":")[2].split("/")[0]
    prices_api.answer = lambda path: prices_api.page([], f"http://127.0.0.1:{other_port}/internal?$skip=1")
    other.answer = lambda path: other.page([item(0.29)])
    answer = prices_at(prices_api.url).hourly("westeurope", "Standard_DS3_v2", NOW)
    assert isinstance(answer, str) and "elsewhere than the price list's own scheme, host and port" in answer
    assert other.paths == []


def test_a_redirect_to_another_host_is_not_followed(servers):
    prices_api, other = servers
    prices_api.answer = lambda path: (302, {"Location": other.url + "?metadata=1"}, b"")
    other.answer = lambda path: other.page([item(0.29)])
    answer = prices_at(prices_api.url).hourly("westeurope", "Standard_DS3_v2", NOW)
    assert isinstance(answer, str) and "a redirect (302)" in answer
    assert other.paths == []


def test_a_page_larger_than_the_bound_is_not_read_to_its_end(servers):
    prices_api, _ = servers
    huge = json.dumps({"Items": [item(0.29, pad="x" * MAX_PAGE_BYTES)], "NextPageLink": None}).encode()
    prices_api.answer = lambda path: (200, {}, huge)
    answer = prices_at(prices_api.url).hourly("westeurope", "Standard_DS3_v2", NOW)
    assert isinstance(answer, str) and f"over the {MAX_PAGE_BYTES:,}-byte limit" in answer


@pytest.mark.parametrize("bad", ["0.29", True, None, [0.29], {"value": 0.29}, 1e400, -0.29, 0])
def test_a_retail_price_that_is_not_a_positive_finite_number_is_not_a_price(bad):
    assert pay_as_you_go([item(bad)]) is None
    assert pay_as_you_go([item(bad), item(0.29)]) == item(0.29)


def test_a_well_formed_price_list_still_answers_across_its_own_pages(servers):
    prices_api, _ = servers
    prices_api.answer = lambda path: (prices_api.page([item(0.29)]) if "skip" in path else
                                      prices_api.page([item("0.01")], prices_api.url + "?$skip=1"))
    answer = prices_at(prices_api.url).hourly("westeurope", "Standard_DS3_v2", NOW)
    assert answer == Price(0.29, "USD", "Virtual Machines DSv2 Series / DS3 v2")
