"""Build information (spec §2.1). Packagers may set the KUMA_BUILD_* values at build time."""

from __future__ import annotations

import os
from importlib import metadata


def version() -> str:
    try:
        return metadata.version("kuma-py")
    except metadata.PackageNotFoundError:
        return "unknown"


def detailed() -> str:
    """The four lines of `version --detailed`; `unknown` when not injected at build time."""
    rows = [
        ("Version", version()),
        ("Git Tag", os.environ.get("KUMA_BUILD_GIT_TAG", "unknown")),
        ("Git Commit", os.environ.get("KUMA_BUILD_GIT_COMMIT", "unknown")),
        ("Build Date", os.environ.get("KUMA_BUILD_DATE", "unknown")),
    ]
    return "\n".join(f"{(label + ':'):<12}{value}" for label, value in rows)
