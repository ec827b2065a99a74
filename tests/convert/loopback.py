"""A loopback HTTP server for the resolver tests: binds 127.0.0.1 on a free port, serves a
table of paths, and stops itself after `lifetime` seconds (or when the `with` block ends).

`hub_routes` lays out a model directory the way the Hugging Face hub serves it (model info,
tree listing, `resolve/` downloads with `X-Repo-Commit` / `ETag`), so that
`huggingface_hub.snapshot_download` does the real resolving and caching against it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit


@dataclasses.dataclass
class Route:
    body: bytes
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    status: int = 200
    cut_after: int | None = None  # send only this many bytes of the body, then drop the connection


@dataclasses.dataclass
class Server:
    url: str
    routes: dict[str, Route]
    requests: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "loopback/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _route(self) -> Route | None:
        path = urlsplit(self.path).path
        self.server.requests.append(f"{self.command} {path}")  # type: ignore[attr-defined]
        return self.server.routes.get(path)  # type: ignore[attr-defined]

    def _send(self, with_body: bool) -> None:
        route = self._route()
        if route is None:  # the hub's error codes, so huggingface_hub raises what the real hub makes it raise
            path = urlsplit(self.path).path
            code = "RepoNotFound" if path.startswith("/api/models/") else "EntryNotFound"
            if "/revision/" in path and path.split("/revision/")[0] in self.server.routes:  # type: ignore[attr-defined]
                code = "RevisionNotFound"
            route = Route(b'{"error": "not found"}', {"Content-Type": "application/json", "X-Error-Code": code}, 404)
        self.send_response(route.status)
        for key, value in route.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        if not with_body:
            return
        if route.cut_after is not None:
            self.wfile.write(route.body[: route.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(route.body)

    def do_GET(self) -> None:  # noqa: N802
        self._send(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(with_body=False)


@contextlib.contextmanager
def serve(routes: dict[str, Route], lifetime: float = 120.0) -> Iterator[Server]:
    """Serve `routes` on 127.0.0.1 until the block ends or `lifetime` seconds pass."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.routes = routes  # type: ignore[attr-defined]
    httpd.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    watchdog = threading.Timer(lifetime, httpd.shutdown)  # a hung test cannot keep the server alive
    watchdog.daemon = True
    watchdog.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", routes, httpd.requests)  # type: ignore[attr-defined]
    finally:
        watchdog.cancel()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def hub_routes(repo: str, files: dict[str, bytes], commit: str = "a" * 40) -> dict[str, Route]:
    """The Hugging Face hub's endpoints for one model repository at `commit` (also as `main`)."""
    blob = {name: hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() for name, data in files.items()}
    info = {"id": repo, "modelId": repo, "sha": commit, "private": False,
            "siblings": [{"rfilename": name} for name in sorted(files)]}
    tree = [{"type": "file", "path": name, "size": len(data), "oid": blob[name]}
            for name, data in sorted(files.items())]
    json_headers = {"Content-Type": "application/json"}
    routes = {}
    for revision in ("main", commit):
        routes[f"/api/models/{repo}/revision/{revision}"] = Route(json.dumps(info).encode(), json_headers)
        routes[f"/api/models/{repo}"] = Route(json.dumps(info).encode(), json_headers)
        routes[f"/api/models/{repo}/tree/{revision}"] = Route(json.dumps(tree).encode(), json_headers)
        for name, data in files.items():
            routes[f"/{repo}/resolve/{revision}/{name}"] = Route(
                data, {"X-Repo-Commit": commit, "ETag": f'"{blob[name]}"', "Content-Type": "application/octet-stream"}
            )
    return routes


def directory_files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}
