"""A real local webhook receiver for the alert tests (the e-mail side is aiosmtpd, in test_alerts)."""
from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class Webhook(BaseHTTPRequestHandler):
    """Records each POST in `received` (path, headers, raw body, JSON); answers 204, or 500 on /broken."""

    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, "headers": dict(self.headers), "raw": body.decode(),
                                    "json": json.loads(body)})
        self.send_response(500 if self.path == "/broken" else 204)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


@contextlib.contextmanager
def webhook_server() -> Iterator[ThreadingHTTPServer]:
    """A webhook receiver on a free loopback port, for the block's duration; posts land in Webhook.received."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
