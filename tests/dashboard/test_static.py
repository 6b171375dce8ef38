"""The page's files: index at /, assets under /static/, compressed, cached, under the CSP."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.dashboard.static import CSP, StaticFiles

Client = TestClient[Any, Any]
SCRIPT = "console.log('dashboard');\n" * 50


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    site = tmp_path / "static"
    site.mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    files = StaticFiles(site)
    app = web.Application()
    app.router.add_get("/", files.index)
    app.router.add_get("/static/{path:.+}", files.asset)
    async with TestServer(app) as server:
        test_client: Client = TestClient(server)
        async with test_client:
            yield test_client


async def test_without_a_built_page_the_root_says_so(client: Client) -> None:
    async with client.get("/") as response:
        assert response.status == 404
        text = await response.text()
    assert text.count("\n") == 1 and "index.html is not built yet" in text


async def test_files_are_compressed_cached_and_under_the_policy(
    client: Client, tmp_path: Path
) -> None:
    site = tmp_path / "static"
    (site / "index.html").write_text("<!doctype html><script src=/static/app.js></script>" * 10)
    (site / "app.js").write_text(SCRIPT)
    (site / "app.0123abcd.js").write_text(SCRIPT)
    async with client.get("/", headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status == 200
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-cache"
        assert "<script src=/static/app.js>" in await response.text()
    async with client.get("/static/app.js", auto_decompress=False) as response:
        assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert gzip.decompress(await response.read()).decode() == SCRIPT
        etag = response.headers["ETag"]
    async with client.get("/static/app.js", headers={"If-None-Match": etag}) as response:
        assert response.status == 304
    async with client.get("/static/app.js", headers={"Accept-Encoding": "identity"}) as response:
        assert "Content-Encoding" not in response.headers
        assert await response.text() == SCRIPT
    async with client.get("/static/app.0123abcd.js") as response:
        assert "immutable" in response.headers["Cache-Control"]
    # A rebuilt file is served at once, with a new ETag.
    (site / "app.js").write_text(SCRIPT + "// rebuilt, longer\n")
    async with client.get("/static/app.js", headers={"If-None-Match": etag}) as response:
        assert response.status == 200 and response.headers["ETag"] != etag


async def test_nothing_outside_the_directory_or_hidden(client: Client, tmp_path: Path) -> None:
    site = tmp_path / "static"
    (site / ".env").write_text("hidden")
    (site / "link.txt").symlink_to(tmp_path / "secret.txt")
    for path in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/.env",
                 "/static/link.txt", "/static/missing.js"):  # fmt: skip
        async with client.get(path) as response:
            assert response.status == 404, path
            assert "outside" not in await response.text()
