"""The page's files from ``gateway/dashboard/static/``: ``index.html`` at ``/``, the rest under
``/static/``; compressed, cached for offline use, and under a Content-Security-Policy.

Files are read once and kept in memory with their gzip form (the page is small, at most 300 KB
compressed) until the file changes (size or mtime), so a rebuilt page is served without a
restart. Caching: the gateway is the only server, so a browser may always ask it; a file whose
name carries a content hash (``app.3f9a2c1b.js``) never changes and is cached for a year,
everything else is revalidated with its ETag each time (a 304 costs one local round trip).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

# No inline scripts or styles: everything the page runs comes from the gateway itself.
CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
HASHED_NAME = re.compile(r"\.[0-9a-f]{8,}\.[a-z0-9]+$")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
MIN_GZIP = 256  # bytes: smaller files gain nothing from compression
TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
    ".txt": "text/plain",
}
TEXT = ("text/", "application/json", "application/manifest+json", "image/svg+xml")


@dataclass(frozen=True)
class _File:
    stamp: tuple[int, int]  # size, mtime_ns: when either changes the file is read again
    body: bytes
    gzipped: bytes | None
    etag: str
    content_type: str


class StaticFiles:
    """Serves the files below ``directory`` (none above it, none hidden)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[Path, _File] = {}

    async def index(self, request: web.Request) -> web.StreamResponse:
        path = self.directory / "index.html"
        if not path.is_file():
            return web.Response(
                text=f"dashboard: {path} is not built yet\n",
                status=404,
                headers=SECURITY_HEADERS,
            )
        return self._respond(request, path)

    async def asset(self, request: web.Request) -> web.StreamResponse:
        path = self._locate(request.match_info["path"])
        if path is None:
            return web.Response(
                text="dashboard: no such file\n", status=404, headers=SECURITY_HEADERS
            )
        return self._respond(request, path)

    def _locate(self, name: str) -> Path | None:
        parts = name.split("/")
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        root = self.directory.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def _respond(self, request: web.Request, path: Path) -> web.StreamResponse:
        file = self._load(path)
        cache = IMMUTABLE if HASHED_NAME.search(path.name) else REVALIDATE
        headers = {
            **SECURITY_HEADERS,
            "Cache-Control": cache,
            "ETag": file.etag,
            "Vary": "Accept-Encoding",
        }
        if file.etag in _etags(request.headers.get("If-None-Match", "")):
            return web.Response(status=304, headers=headers)
        body = file.body
        if file.gzipped is not None and _accepts_gzip(request.headers.get("Accept-Encoding", "")):
            body = file.gzipped
            headers["Content-Encoding"] = "gzip"
        headers["Content-Type"] = file.content_type
        return web.Response(body=body, headers=headers)

    def _load(self, path: Path) -> _File:
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached.stamp == stamp:
            return cached
        body = path.read_bytes()
        content_type = content_type_of(path)
        gzipped = None
        if len(body) >= MIN_GZIP and content_type.startswith(TEXT):
            # A precompressed sibling (app.js.gz) is used as it is; otherwise compressed once.
            sibling = path.with_name(path.name + ".gz")
            gzipped = sibling.read_bytes() if sibling.is_file() else gzip.compress(body, 9, mtime=0)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        file = _File(stamp, body, gzipped, etag, content_type)
        self._cache[path] = file
        return file


def content_type_of(path: Path) -> str:
    found = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    found = found or "application/octet-stream"
    if found.startswith(TEXT):
        return f"{found}; charset=utf-8"
    return found


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _accepts_gzip(header: str) -> bool:
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "") != "q=0"
    return False
