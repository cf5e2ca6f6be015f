"""The one logging setup of every binary and of gunicorn (`logconfig_dict`).

Kuma's layout by default, one line per record, tab-separated:

    2024-05-01T12:00:00.123+0200	INFO	kuma-cp	started api-server

and with `KUMA_LOG_FORMAT=json` one JSON object per line for log shippers
(`{"ts": ..., "level": "info", "logger": ..., "msg": ...}`, plus `error` with the traceback).
Levels are Kuma's: off, info, debug."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import sys
import time
from typing import Any

from kuma.errors import ConfigError

LEVELS = {"off": logging.CRITICAL + 10, "info": logging.INFO, "debug": logging.DEBUG}
FORMAT_ENV = "KUMA_LOG_FORMAT"
FORMATS = ("console", "json")
# zap's level names, which Kuma prints
_LEVEL_NAMES = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_HANDLER = "kuma"
_current = "info"


def _timestamp(created: float) -> str:
    """ISO 8601 with milliseconds and the local offset (`Z` in UTC), as zap's ISO8601 encoder."""
    local = time.localtime(created)
    millis = int(created % 1 * 1000)
    offset = time.strftime("%z", local)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", local)
        + f".{millis:03d}"
        + ("Z" if offset in ("+0000", "-0000") else offset)
    )


def _level(record: logging.LogRecord) -> str:
    return _LEVEL_NAMES.get(record.levelname, record.levelname)


def _message(record: logging.LogRecord) -> str:
    """The record's message; a captured warning without the source line and blank line that
    `warnings.formatwarning` appends (one line per record, as every other)."""
    message = record.getMessage()
    if record.name == "py.warnings":
        return message.split("\n", 1)[0]
    return message


class ConsoleFormatter(logging.Formatter):
    """time, level, logger, message, tab-separated; a traceback follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = "\t".join(
            (_timestamp(record.created), _level(record), record.name, _message(record))
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": _level(record).lower(),
            "logger": record.name,
            "msg": _message(record),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (click's test runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def log_format() -> str:
    chosen = os.environ.get(FORMAT_ENV, "") or "console"
    if chosen not in FORMATS:
        raise ConfigError(f"{FORMAT_ENV} must be one of {', '.join(FORMATS)} (got {chosen!r})")
    return chosen


def config_dict(level: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` document for `level` (off, info, debug)."""
    if level not in LEVELS:
        raise ConfigError(f"log level must be one of {', '.join(LEVELS)} (got {level!r})")
    formatter = ConsoleFormatter if log_format() == "console" else JsonFormatter
    number = LEVELS[level]
    # gunicorn's own loggers go through the same handler; their levels are set here because
    # gunicorn sets them from its `loglevel` before it applies this document
    passthrough = {"level": number, "handlers": [], "propagate": True}
    # Kuma logs no requests; gunicorn turns its access log on whenever logconfig_dict is set
    silenced = {"level": LEVELS["off"], "handlers": [], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {_HANDLER: {"()": formatter}},
        "handlers": {_HANDLER: {"()": StderrHandler, "formatter": _HANDLER}},
        "root": {"level": number, "handlers": [_HANDLER]},
        "loggers": {"gunicorn.error": passthrough, "gunicorn.access": silenced},
    }


def setup(level: str) -> None:
    """Configure this process's logging. Handlers someone else attached to the root logger
    (a test framework's) are kept."""
    global _current
    document = config_dict(level)
    root = logging.getLogger()
    foreign = [h for h in root.handlers if h.get_name() != _HANDLER]
    logging.config.dictConfig(document)
    for handler in foreign:
        root.addHandler(handler)
    logging.captureWarnings(level != "off")
    _current = level


def current_level() -> str:
    """The level the last `setup` chose (handed on to gunicorn's workers)."""
    return _current
