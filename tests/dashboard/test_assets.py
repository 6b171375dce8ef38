"""The page's files: light (the whole page, compressed as served, within 300 KB), self-contained
(nothing loaded from elsewhere, nothing inline that the CSP would block), and the vendored
libraries exactly what the pinned npm packages contain."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "gateway" / "dashboard" / "static"
VENDOR_SRC = ROOT / "gateway" / "dashboard" / "vendor-src"
BUILD = ROOT / "scripts" / "build-dashboard-vendor"
MAX_PAGE_BYTES = 300 * 1024
SERVED = (".html", ".css", ".js")  # what the page loads; licence texts are not loaded

# A page load, as the browser asks for it: index.html, then what it references. The virtual
# devices' MQTT client is loaded only when the Phone view opens; it is counted anyway.
IMPORT = re.compile(r"""(?:import\s*(?:[^"'()]*?\sfrom\s*)?|import\()\s*["'](/static/[^"']+)["']""")
LINK = re.compile(r"""(?:src|href)="(/static/[^"]+)\"""")


def referenced(path: Path, seen: set[Path]) -> None:
    if path in seen:
        return
    seen.add(path)
    text = path.read_text(encoding="utf-8")
    pattern = IMPORT if path.suffix == ".js" else LINK
    for ref in pattern.findall(text):
        target = STATIC / ref.removeprefix("/static/")
        assert target.is_file(), f"{path.name} refers to {ref}, which is not there"
        referenced(target, seen)


def page_files() -> set[Path]:
    seen: set[Path] = set()
    referenced(STATIC / "index.html", seen)
    return seen


def test_the_page_weighs_at_most_300_kb_compressed() -> None:
    files = page_files()
    assert STATIC / "vendor" / "mqtt.esm.js" in files
    assert STATIC / "vendor" / "dagre.esm.js" in files
    sizes = {p.relative_to(STATIC).as_posix(): len(gzip.compress(p.read_bytes(), 9)) for p in files}
    total = sum(sizes.values())
    print(f"page weight {total / 1024:.1f} KB gzip-compressed: {json.dumps(sizes, indent=1)}")
    assert total <= MAX_PAGE_BYTES, sizes
    # Every served file of the folder is reached from index.html (no dead weight).
    served = {p for p in STATIC.rglob("*") if p.suffix in SERVED}
    assert served == files, served ^ files


def test_nothing_comes_from_elsewhere_or_runs_inline() -> None:
    for path in STATIC.rglob("*"):
        if path.suffix not in (".html", ".css") and path.parent.name == "vendor":
            continue
        if path.suffix not in SERVED:
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(?:src|href|url\()\s*=?\s*["']?(?:https?:)?//""", text), path
        if path.suffix == ".html":
            # CSP: script-src 'self' and style-src 'self' (no inline code, no style attributes).
            assert not re.search(r"<script(?![^>]*\ssrc=)", text), path
            assert not re.search(r"\sstyle=|<style|\son[a-z]+=", text), path


@pytest.mark.skipif(shutil.which("npm") is None, reason="bootstrap installs npm")
def test_the_vendored_files_are_what_the_pinned_packages_contain(tmp_path: Path) -> None:
    lock = json.loads((VENDOR_SRC / "package-lock.json").read_text())
    declared = json.loads((VENDOR_SRC / "package.json").read_text())["dependencies"]
    for name, version in declared.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned: {version}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    out = tmp_path / "vendor"
    result = subprocess.run(
        [str(BUILD), str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    built = {p.name: p.read_bytes() for p in out.iterdir()}
    committed = {p.name: p.read_bytes() for p in (STATIC / "vendor").iterdir()}
    assert built.keys() == committed.keys()
    for name, content in built.items():
        assert committed[name] == content, f"static/vendor/{name} differs from the pinned package"
