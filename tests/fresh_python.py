"""Running a Python snippet in a fresh interpreter of this checkout, for what a test session
cannot show in its own: what a process that imported only some modules does, or what differs
between processes (hash seeds, memory layout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def json_printed_by(
    script: str, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> Any:
    """What `script` prints as JSON on its last line, run by `python -c` from the checkout."""
    run = subprocess.run(
        [sys.executable, "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])
