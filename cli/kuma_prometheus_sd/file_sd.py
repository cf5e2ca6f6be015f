"""Monitoring assignments as Prometheus `file_sd` JSON, written so that Prometheus never reads a
half-written file.

Each target of an assignment becomes one target group (Kuma's converter): source
`<assignment name>/<index>`, `targets: [<__address__>]`, and as labels the assignment's labels
with the target's on top, `__address__` left out, names sanitised for Prometheus. The file lists
the groups in source order, indented as Kuma's adapter wrote it:

    [
        {
            "targets": ["192.168.0.1:5670"],
            "labels": {"__metrics_path__": "/metrics", "job": "backend", ...}
        }
    ]
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.xds.mads.assignments import ADDRESS_LABEL, sanitize_label_name

# The file is read by Prometheus, which runs as another user: readable by all, as Kuma's
# adapter left it (ioutil.TempFile's 0600 was widened by nothing there, but Prometheus ran
# as root in Kuma's examples).
FILE_MODE = 0o644


@dataclass(frozen=True, slots=True)
class TargetGroup:
    source: str
    targets: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]

    def as_json(self) -> dict[str, Any]:
        return {"targets": list(self.targets), "labels": dict(self.labels)}


def _labels(labels: Any) -> dict[str, str]:
    return {sanitize_label_name(k): v for k, v in labels.items()}


def convert(assignments: Iterable[Any]) -> list[TargetGroup]:
    """Target groups of MonitoringAssignment messages, sorted by source."""
    groups: list[TargetGroup] = []
    for assignment in assignments:
        common = _labels(assignment.labels)
        for i, target in enumerate(assignment.targets):
            labels = {**common, **_labels(target.labels)}
            address = labels.pop(ADDRESS_LABEL, "")
            groups.append(
                TargetGroup(
                    source=f"{assignment.name}/{i}",
                    targets=(address,),
                    labels=tuple(sorted(labels.items())),
                )
            )
    return sorted(groups, key=lambda g: g.source)


def render(groups: Iterable[TargetGroup]) -> bytes:
    return (json.dumps([g.as_json() for g in groups], indent=4, sort_keys=False) + "\n").encode()


class SdError(Exception):
    """What kuma-prometheus-sd tells its user: `Error: <message>`, exit status 1."""


def _go_error(exc: OSError, op: str) -> str:
    """`open PATH: permission denied`, the way Go words a failed system call."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    reason = reason[:1].lower() + reason[1:]
    return f"{op} {exc.filename}: {reason}" if exc.filename else reason


def try_write_to_dir(directory: str) -> None:
    """Kuma's start-up check (`util_os.TryWriteToDir`): a file can be created in `directory`,
    made (0755) when missing; SdError with Kuma's wording otherwise. "" is the working
    directory (Kuma's check looked at the system's temporary directory instead)."""
    where = directory or "."
    try:
        fd, path = tempfile.mkstemp(dir=where, prefix="write-access-check")
    except FileNotFoundError:
        try:
            os.makedirs(where, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise SdError(
                f'unable to create a directory "{directory}": {_go_error(exc, "mkdir")}'
            ) from None
        fd, path = _create_in(where, directory)
    except OSError as exc:
        raise _create_failed(exc, where, directory) from None
    os.close(fd)
    try:
        os.remove(path)
    except OSError as exc:
        raise SdError(
            f'unable to remove temporary files in directory "{directory}": '
            f"{_go_error(exc, 'remove')}"
        ) from None


def _create_in(where: str, directory: str) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(dir=where, prefix="write-access-check")
    except OSError as exc:
        raise _create_failed(exc, where, directory) from None


def _create_failed(exc: OSError, where: str, directory: str) -> SdError:
    if exc.filename is None:
        exc.filename = os.path.join(where, "write-access-check")
    return SdError(
        f'unable to create temporary files in directory "{directory}": {_go_error(exc, "open")}'
    )


class FileSdWriter:
    """Writes the groups to `path` when they differ from what it last wrote: a temporary file in
    the same directory, flushed to disk, then renamed over `path` (atomic on one filesystem)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.last: bytes | None = None
        self.writes = 0

    def write(self, groups: Iterable[TargetGroup]) -> bool:
        content = render(groups)
        if content == self.last:
            return False
        directory = self.path.parent
        # "sd-adapter" as Kuma's adapter: a name no `*.json` pattern of Prometheus matches
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="sd-adapter")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # the rename itself, durable
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self.last = content
        self.writes += 1
        return True
