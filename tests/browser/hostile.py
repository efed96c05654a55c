"""Another origin on this machine: a small HTTP server whose pages post forms to Dropp.

Reached as `http://127.0.0.1:<port>` it is the same *site* as Dropp on 127.0.0.1 but another
origin (cookies are shared across ports, so only the origin rule stops it); reached as
`http://localhost:<port>` it is another site.
"""

import html
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import uuid4

from dropp.embedded.seaweedfs import free_port


class HostileSite:
    def __init__(self, port: int) -> None:
        self.port = port
        self.pages: dict[str, bytes] = {}
        # Every path asked for: the site also stands in for a desktop app's loopback listener.
        self.requested: list[str] = []

    def forged_form(
        self, action: str, fields: dict[str, str], *, host: str, no_referrer: bool = False
    ) -> str:
        """A page that posts `fields` to `action` as soon as it loads; its URL on `host`.
        With `no_referrer`, the page asks the browser to send `Origin: null`."""
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in fields.items()
        )
        meta = '<meta name="referrer" content="no-referrer">' if no_referrer else ""
        path = f"/{uuid4().hex}"
        self.pages[path] = (
            f"<!doctype html><html><head>{meta}<title>Win a prize</title></head><body>"
            f'<form id="f" method="post" action="{html.escape(action)}">{inputs}</form>'
            "<script>document.getElementById('f').submit()</script></body></html>"
        ).encode()
        return f"http://{host}:{self.port}{path}"


@contextmanager
def hostile_site() -> Iterator[HostileSite]:
    site = HostileSite(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requested.append(self.path)
            body = site.pages.get(self.path) or site.pages.get(self.path.partition("?")[0])
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", site.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
