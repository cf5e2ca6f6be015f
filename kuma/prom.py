"""Prometheus metrics across processes. A service under gunicorn serves from several worker
processes; each keeps its own counters, so `/metrics` must add them up, whichever worker
answers. prometheus-client's multiprocess mode does that through files in one directory.

`private_dir()` makes that directory for one process tree: the gunicorn master makes it before
forking (mkdtemp: mode 0700, owned by the service's user), every worker writes its files there,
and the master removes it at exit. Its path is always made here, never taken from the caller's
environment (a `PROMETHEUS_MULTIPROC_DIR` already set is replaced), so no other user can read,
plant or fill the files. Single-process binaries (`kuma-cp run`, `kuma-xds`) never call it and
expose their own registry."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

ENV = "PROMETHEUS_MULTIPROC_DIR"
_private: list[str] = []  # the directory this process tree made, inherited by forked workers

# A directory named by the environment is never used, by any binary: metrics made from here on
# keep their values in memory until `private_dir()` (the class is chosen at their creation).
for _name in (ENV, ENV.lower()):
    os.environ.pop(_name, None)
values.ValueClass = values.get_value_class()
# Kuma's Go client exposes no `<name>_created` series (a gauge family beside every counter,
# summary and histogram); neither does any `/metrics` here.
disable_created_metrics()


@contextmanager
def private_dir() -> Iterator[str]:
    """Multiprocess mode for this process and its forked children while the block runs."""
    path = tempfile.mkdtemp(prefix="kuma-metrics-")
    os.environ[ENV] = path
    # Metrics made from now on keep their values in files (the class is chosen at import).
    values.ValueClass = values.get_value_class()
    _private.append(path)
    maker = os.getpid()
    try:
        yield path
    finally:
        # A forked worker leaves through here too (gunicorn exits it with SystemExit); only the
        # process that made the directory removes it.
        if os.getpid() == maker:
            _private.remove(path)
            if os.environ.get(ENV) == path:
                del os.environ[ENV]
            values.ValueClass = values.get_value_class()
            shutil.rmtree(path, ignore_errors=True)


def go_counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Gauge:
    """A counter under the name Kuma's Go client exposes it: `cert_generation`, not the
    `cert_generation_total` prometheus-client gives every Counter, so that Kuma's dashboards
    find it. Only `inc()` is called on it; `rate()` and `increase()` read it as a counter.
    Under gunicorn every process's count is added, the exited workers' too (`sum`)."""
    return Gauge(name, documentation, labelnames, multiprocess_mode="sum")


def multiprocess_dir() -> str | None:
    """The directory of this process tree's multiprocess mode, if it is on."""
    return _private[-1] if _private else None


def registry() -> CollectorRegistry:
    """What `/metrics` exposes: every worker's metrics under gunicorn, else this process's."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=path)
    return merged


def exposition() -> tuple[bytes, str]:
    """`/metrics`: the body in Prometheus' text format, and its content type."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """gunicorn's `child_exit`: drop the dead worker's live gauges (its counters stay counted)."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(pid, path)
