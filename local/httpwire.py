"""HTTP for the local stand-ins: the request and response values the emulator and the dev host
exchange, and the threaded server that turns sockets into them.

Rules:
- Header names are looked up case-insensitively. Repeated query parameters are joined with ","
  as ASP.NET Core's StringValues renders them (ARM and the Functions host both run on it).
- A response body may be bytes, text (text/plain) or a JSON-serialisable value
  (application/json); an explicit Content-Type header wins.
- The server listens with a backlog of 512, one thread per connection, HTTP/1.1 keep-alive; with
  `tls`, the handshake happens in the connection's thread, not in accept().
- Request bodies are read by Content-Length or chunked transfer encoding; a body over 100 MB
  (the Functions host's limit) or an unreadable one is answered with `refuse(status, message)`
  (413 or 400) and the connection is closed.
- The handler answers a Response, or None to drop the connection without one. Whatever it
  raises becomes a 500 and a logged traceback: bad input never stops the server.
- `stop()` stops accepting, closes idle keep-alive connections, and lets requests in flight
  write their answers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("local.httpwire")

MAX_BODY = 100 * 1024 * 1024


@dataclass
class Request:
    """One inbound request, fully read."""

    method: str
    target: str  # path and query as sent
    headers: list[tuple[str, str]]
    body: bytes = b""
    base_url: str = ""  # scheme://host:port the client used, for Location headers and ids

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def url(self) -> str:
        return self.base_url + self.target

    @property
    def query(self) -> dict[str, str]:
        joined: dict[str, str] = {}
        for key, value in parse_qsl(urlsplit(self.target).query, keep_blank_values=True):
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        return joined

    def arg(self, name: str, default: str | None = None) -> str | None:
        """A query parameter looked up case-insensitively, as ARM does."""
        lowered = name.lower()
        return next((value for key, value in self.query.items() if key.lower() == lowered), default)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def header_map(self) -> dict[str, str]:
        """Headers by name, repeated ones joined with ", "."""
        merged: dict[str, str] = {}
        for key, value in self.headers:
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return merged

    def json(self) -> Any:
        """The body as JSON; None when empty (ValueError when not JSON)."""
        return json.loads(self.body.decode("utf-8")) if self.body else None


class Response:
    """One response; `headers` may be given as a mapping or as (name, value) pairs."""

    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self.status = status
        self.body = body
        pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
        self.headers: list[tuple[str, str]] = [(str(k), str(v)) for k, v in pairs]

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def encode(self) -> tuple[bytes, list[tuple[str, str]]]:
        headers = list(self.headers)
        content_type = None
        if self.body is None:
            payload = b""
        elif isinstance(self.body, bytes):
            payload = self.body
        elif isinstance(self.body, str):
            payload, content_type = self.body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(self.body).encode("utf-8"), "application/json; charset=utf-8"
        if content_type and self.header("Content-Type") is None:
            headers.append(("Content-Type", content_type))
        return payload, headers


Handler = Callable[[Request], Response | None]
Refusal = Callable[[int, str], Response]


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sys_version = ""
    server: WireServer

    def version_string(self) -> str:
        return self.server.name

    def do_GET(self) -> None:
        with self.server.busy(self.connection):
            self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self._write(self.server.refuse(exc.status, str(exc)))
            return
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        request = Request(self.command, self.path, list(self.headers.items()), body, base_url=f"{self.server.scheme}://{host}")
        try:
            response = self.server.handler(request)
        except Exception:
            log.exception("unhandled error serving %s %s", self.command, self.path.split("?", 1)[0])
            response = Response(500)
        if response is None:
            self.close_connection = True
            # No answer at all: the client sees the connection closed under it.
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(response)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError as exc:
            raise _BodyError(400, "invalid Content-Length") from exc
        if length < 0:
            raise _BodyError(400, "invalid Content-Length")
        if length > MAX_BODY:
            raise _BodyError(413, "request body too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)
            except ValueError as exc:
                raise _BodyError(400, "invalid chunked encoding") from exc
            if size == 0:
                # Trailers end with an empty line.
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise _BodyError(413, "request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _write(self, response: Response) -> None:
        payload, headers = response.encode()
        try:
            self.send_response(response.status)
            for name, value in headers:
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away; nothing left to tell it.
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def _plain_refusal(status: int, message: str) -> Response:
    return Response(status, message)


class WireServer(ThreadingHTTPServer):
    """A threaded HTTP (or, with `tls`, HTTPS) server handing each request to `handler`."""

    daemon_threads = True
    block_on_close = False  # idle keep-alive threads must not hold up stop()
    # Kestrel listens with a backlog of 512; socketserver's default of 5 would reset a burst of
    # deliveries that arrives while the server is busy.
    request_queue_size = 512

    def __init__(
        self,
        address: tuple[str, int],
        handler: Handler,
        *,
        name: str,
        tls: ssl.SSLContext | None = None,
        idle_timeout: float | None = None,
        refuse: Refusal = _plain_refusal,
    ) -> None:
        self.handler = handler
        self.name = name
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.idle_timeout = idle_timeout
        self.refuse = refuse
        self._open: set[socket.socket] = set()
        self._busy: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(address, _RequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        return f"{self.scheme}://{f'[{host}]' if ':' in host else host}:{self.port}"

    @contextlib.contextmanager
    def busy(self, connection: socket.socket) -> Iterator[None]:
        with self._open_lock:
            self._busy.add(connection)
        try:
            yield
        finally:
            with self._open_lock:
                self._busy.discard(connection)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.idle_timeout)
        connection = request
        if self.tls is not None:
            try:
                connection = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                # A client that refuses the certificate or hangs up mid-handshake: nothing to serve.
                request.close()
                return
        with self._open_lock:
            self._open.add(connection)
        try:
            self.RequestHandlerClass(connection, client_address, self)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            pass  # the client went away; its next request opens a new connection
        finally:
            with self._open_lock:
                self._open.discard(connection)
            if connection is not request:
                with contextlib.suppress(OSError):
                    connection.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        with self._open_lock:
            idle = self._open - self._busy
        for connection in idle:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)
