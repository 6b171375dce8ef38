"""Shared fixtures for the graph tests: corpus paths and one reference-parser run for all."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
CORPUS = HERE / "corpus"
VALID_FBP = sorted((CORPUS / "valid").glob("*.fbp"))
INVALID_FBP = sorted((CORPUS / "invalid").glob("*.fbp"))
VALID_JSON = sorted((CORPUS / "json").glob("*.json"))
INVALID_JSON = sorted((CORPUS / "json_invalid").glob("*.json"))
REFERENCE_MODULE = REPO / "tests" / "npm" / "node_modules" / "fbp"
REFERENCE_SCRIPT = HERE / "reference_fbp.js"


def read_source(path: Path) -> str:
    # newline="" keeps "\r\n" files byte-exact, as the reference parser sees them.
    with path.open(encoding="utf-8", newline="") as f:
        return f.read()


def job_key(path: Path, case_sensitive: bool) -> str:
    return f"{path.parent.name}/{path.name}#{'cs' if case_sensitive else 'ci'}"


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    """Every corpus file parsed by npm fbp 1.8.0, in ONE node process, keyed by ``job_key``.

    bootstrap.sh installs node and the module, so their absence is a failure, not a skip.
    """
    node = shutil.which("node")
    assert node, "node is not installed: run ./bootstrap.sh setup"
    assert (REFERENCE_MODULE / "package.json").is_file(), "npm fbp missing: ./bootstrap.sh setup"
    version = json.loads((REFERENCE_MODULE / "package.json").read_text())["version"]
    assert version == "1.8.0", f"reference parser is fbp {version}, expected 1.8.0"
    jobs = {
        job_key(path, cs): {"source": read_source(path), "caseSensitive": cs}
        for path in [*VALID_FBP, *INVALID_FBP]
        for cs in (False, True)
    }
    done = subprocess.run(
        [node, str(REFERENCE_SCRIPT), str(REFERENCE_MODULE)],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    results: dict[str, Any] = json.loads(done.stdout)
    return results
