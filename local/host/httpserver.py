"""The host's HTTP listener: a ThreadingHTTPServer that turns sockets into Request/Response values.

Rules:
- Binds to loopback only; one thread per connection; HTTP/1.1 with keep-alive.
- Request bodies are read by Content-Length or chunked transfer encoding; a body over 100 MB
  (the Functions host's limit) is 413, an unreadable one 400.
- Whatever the handler raises becomes a 500 and a logged traceback: bad input never stops the
  server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from local.host.wire import Request, Response

log = logging.getLogger("local.host.http")

MAX_BODY = 100 * 1024 * 1024

Handler = Callable[[Request], Response]


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local.host"
    server: HostHTTPServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self._write(Response(exc.status, str(exc)))
            return
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        request = Request(self.command, self.path, list(self.headers.items()), body, base_url=f"http://{host}")
        try:
            response = self.server.handler(request)
        except Exception:
            log.exception("unhandled error serving %s %s", self.command, self.path.split("?", 1)[0])
            response = Response(500)
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


class HostHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the host's request handler."""

    daemon_threads = True
    # The Functions host (Kestrel) listens with a backlog of 512; socketserver's default of 5 would
    # reset a burst of Event Grid deliveries that arrives while the host is busy.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], handler: Handler) -> None:
        super().__init__(address, _RequestHandler)
        self.handler = handler
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)
