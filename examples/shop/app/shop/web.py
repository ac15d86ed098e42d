"""Just enough HTTP for three small JSON services: a threading server, routes
by method and path pattern, and a /health endpoint that asks the service's
own check (its datastore)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("shop")


class HTTPError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}


Handler = Callable[..., tuple[int, Any]]


class App:
    def __init__(self, name: str, health: Callable[[], None]) -> None:
        self.name = name
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.health = health

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.routes.append((method, re.compile(f"^{pattern}$"), fn))
            return fn

        return register

    def dispatch(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/health":
            try:
                self.health()
            except Exception as exc:  # noqa: BLE001 - any failure of the check means not ready
                return 503, {"status": "unavailable", "reason": f"{exc.__class__.__name__}: {exc}"}
            return 200, {"status": "ok"}
        allowed = False
        for route_method, pattern, fn in self.routes:
            match = pattern.match(path)
            if not match:
                continue
            allowed = True
            if route_method == method:
                try:
                    return fn(body, **match.groupdict()) if method in ("POST", "PUT") else fn(**match.groupdict())
                except HTTPError as exc:
                    return exc.status, exc.body
        return (405, {"error": "method not allowed"}) if allowed else (404, {"error": "not found"})

    def serve(self) -> None:
        logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {self.name} %(levelname)s %(message)s")
        port = int(os.environ.get("PORT", "8080"))
        app = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    status, payload = 400, {"error": "the body is not JSON"}
                else:
                    try:
                        status, payload = app.dispatch(self.command, self.path.split("?", 1)[0], body)
                    except Exception:
                        log.exception("%s %s failed", self.command, self.path)
                        status, payload = 500, {"error": "internal error"}
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                if self.path != "/health":
                    log.info("%s %s", self.address_string(), format % args)

        server = ThreadingHTTPServer(("0.0.0.0", port), RequestHandler)
        server.daemon_threads = True
        # Kubernetes stops a pod with SIGTERM: finish the current requests.
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        log.info("listening on :%d", port)
        server.serve_forever()


def required(name: str) -> str:
    """An environment variable the service cannot start without, with a message that names it."""
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set: the TestEnvironment injects it (a datastore or stub of that name)")
    return value


def need(body: Any, *fields: str) -> None:
    if not isinstance(body, dict):
        raise HTTPError(400, "a JSON object is required")
    missing = [f for f in fields if f not in body]
    if missing:
        raise HTTPError(400, f"missing fields: {', '.join(missing)}")
