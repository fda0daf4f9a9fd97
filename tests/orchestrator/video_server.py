"""A real HTTP server on loopback (http.server in a thread) serving MP4s the way real servers fail:
cut connections, 404s, 5xx, ignored Range requests, bodies held back until an event. Every request
is logged (path, Range header, status), so tests assert what was fetched again and from where."""

from __future__ import annotations

import hashlib
import http.server
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

WAIT_S = 600.0  # the longest any held body waits for its event (a pass never waits for it)

#: behaviours (per path):
#:   ok         200, or 206 for a Range request (ETag and If-Range honoured)
#:   404        404 Not Found
#:   503-once   503 on the first request, then ok
#:   cut-once   the first response sends half the body and closes the connection; then ok
#:   cut-no-range  cut-once, and every later response ignores Range (200 with the whole body)
#:   stall-once the first response sends half the body and then nothing until a second request came
#:   hold       half the body, then the rest once `release(path)` (or the path's gate) says so
#:   gate       the whole body held until the path's gate (a callable polled) returns True
BEHAVIOURS = ("ok", "404", "503-once", "cut-once", "cut-no-range", "stall-once", "hold", "gate")


@dataclass
class Served:
    body: bytes
    behaviour: str = "ok"
    etag: str = ""
    gate: Callable[[], bool] | None = None
    released: threading.Event = field(default_factory=threading.Event)
    half_sent: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Request:
    path: str
    range: str | None
    status: int


class VideoServer:
    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that went away mid-body (the tests cut and kill on purpose)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: bytes, behaviour: str = "ok",
              gate: Callable[[], bool] | None = None) -> str:
        """Serve `body` at `path` (as it appears in the URL, unquoted) and return its URL."""
        assert behaviour in BEHAVIOURS, behaviour
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        self.files[urllib.parse.unquote(path)] = Served(body, behaviour, etag, gate)
        return self.url(path)

    def requests(self, path: str) -> list[Request]:
        key = urllib.parse.unquote(path)
        with self._lock:
            return [r for r in self.log if r.path == key]

    def release(self, path: str) -> None:
        self.files[urllib.parse.unquote(path)].released.set()

    def close(self) -> None:
        self._stopping.set()
        for served in self.files.values():
            served.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- serving ---------------------------------------------------------------------------------
    def _wait(self, cond: Callable[[], bool]) -> None:
        """Wait for an event (polled: a gate reads another process's state), never for a duration."""
        waited = 0.0
        while not cond() and not self._stopping.is_set() and waited < WAIT_S:
            self._stopping.wait(0.05)
            waited += 0.05

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(h.path).path)
        served = self.files.get(path)
        with self._lock:
            previous = [r for r in self.log if r.path == path]
        first = not previous
        rng = h.headers.get("Range")
        if served is None or served.behaviour == "404":
            return self._reply(h, path, rng, 404, b"not found\n")
        if served.behaviour == "503-once" and first:
            return self._reply(h, path, rng, 503, b"busy\n")
        body, start = served.body, 0
        honour = served.behaviour != "cut-no-range"
        if_range = h.headers.get("If-Range")
        if rng and honour and (not if_range or if_range == served.etag):
            start = int(rng.split("=", 1)[1].split("-", 1)[0])
            if start >= len(body):
                return self._reply(h, path, rng, 416, b"", {"Content-Range": f"bytes */{len(body)}"})
        status = 206 if start else 200
        headers = {"ETag": served.etag, "Accept-Ranges": "bytes" if honour else "none"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        chunk = body[start:]
        half = len(chunk) // 2
        with self._lock:
            self.log.append(Request(path, rng, status))
        if served.behaviour == "gate" and served.gate is not None:
            self._wait(served.gate)
        h.send_response(status)
        for k, v in {**headers, "Content-Type": "video/mp4", "Content-Length": str(len(chunk))}.items():
            h.send_header(k, v)
        h.end_headers()
        try:
            cut = served.behaviour in ("cut-once", "cut-no-range") and first
            stall = served.behaviour == "stall-once" and first
            hold = served.behaviour == "hold" and first
            if cut or stall or hold:
                h.wfile.write(chunk[:half])
                h.wfile.flush()
                served.half_sent.set()
                if cut:
                    h.close_connection = True
                    return
                if stall:
                    self._wait(lambda: len(self.requests(path)) > 1)
                    h.close_connection = True
                    return
                self._wait(lambda: served.released.is_set() or bool(served.gate and served.gate()))
                h.wfile.write(chunk[half:])
            else:
                h.wfile.write(chunk)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def _reply(self, h: http.server.BaseHTTPRequestHandler, path: str, rng: str | None, status: int,
               body: bytes, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.log.append(Request(path, rng, status))
        h.send_response(status)
        for k, v in {**(headers or {}), "Content-Length": str(len(body))}.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
