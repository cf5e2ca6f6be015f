"""`kuma.prom`: a multiprocess directory named by the environment is never used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import kuma.prom
from prometheus_client import Counter
Counter("planted", "a metric made after kuma.prom").inc()
print(kuma.prom.multiprocess_dir())
"""


def test_a_directory_from_the_environment_is_not_written(tmp_path: Path) -> None:
    for name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
        env = {**os.environ, name: str(tmp_path)}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "None"
        assert list(tmp_path.iterdir()) == []
