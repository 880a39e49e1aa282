"""Structured logs: one event per line, key=value text by default, JSON lines with `--log-format json`.

    setup_logging(level="info", fmt="text", stream=sys.stderr, node_id="n1")
    log_event(log, logging.INFO, "block_committed", height=12, txs=340)

A record carries an event name and fields. `log_event` (and node/net/transport.py's own helper) put them in the record's
`event` and `fields` attributes; a plain `log.info("text %s", x)` record gets event "message" and its text as `msg`.

    text: ts=2026-11-25T09:30:01.123Z level=info logger=node.validator.node node=n1 event=block_committed height=12 txs=340
    json: {"ts": "2026-11-25T09:30:01.123Z", "level": "info", "logger": "node.validator.node", "node": "n1",
           "event": "block_committed", "height": 12, "txs": 340}

Values: bytes are written as hex, text values with spaces, quotes or '=' are quoted (text format); an exception is
added as `exc` (its formatted traceback). A field value is cut at MAX_VALUE_CHARS characters so one line stays
bounded.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

__all__ = ["FORMATS", "LEVELS", "MAX_VALUE_CHARS", "JsonFormatter", "KeyValueFormatter", "log_event", "setup_logging"]

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error", "critical")
MAX_VALUE_CHARS = 2_048
_RESERVED = frozenset({"ts", "level", "logger", "node", "event"})


def _value(v: Any) -> Any:
    """A JSON-ready, bounded form of one field value."""
    if isinstance(v, bytes | bytearray | memoryview):
        v = bytes(v).hex()
    elif v is None or isinstance(v, bool | int | float):
        return v
    elif not isinstance(v, str):
        v = str(v)
    return v if len(v) <= MAX_VALUE_CHARS else v[:MAX_VALUE_CHARS] + "…"


def _timestamp(created: float) -> str:
    t = time.gmtime(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(created % 1 * 1000):03d}Z"


def _fields(record: logging.LogRecord, node_id: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ts": _timestamp(record.created),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    if node_id:
        out["node"] = node_id
    event = getattr(record, "event", None)
    fields = getattr(record, "fields", None)
    if isinstance(event, str) and isinstance(fields, Mapping):
        out["event"] = event
        for key, value in fields.items():
            name = str(key)
            out[f"field_{name}" if name in _RESERVED - {"node"} else name] = _value(value)
    else:
        out["event"] = "message"
        out["msg"] = _value(record.getMessage())
    if record.exc_info:
        out["exc"] = _value(logging.Formatter().formatException(record.exc_info))
    return out


def _printable(text: str) -> str:
    """`text` (JSON) with every character that is not printable escaped: json.dumps leaves U+0085, U+2028,
    U+2029, DEL and other non-printing characters raw, and line readers (str.splitlines, terminals) take some of
    them for line breaks or controls, so a peer-supplied value could forge a log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    s = str(value)
    if s == "" or not s.isprintable() or any(c in s for c in ' "=\\'):
        return _printable(json.dumps(s, ensure_ascii=False))
    return s


class KeyValueFormatter(logging.Formatter):
    """`key=value` pairs separated by spaces; values quoted (JSON string syntax) when they need it."""

    def __init__(self, node_id: str | None = None) -> None:
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_text(v)}" for k, v in _fields(record, self.node_id).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def __init__(self, node_id: str | None = None) -> None:
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        return _printable(json.dumps(_fields(record, self.node_id), ensure_ascii=False, separators=(", ", ": ")))


class StructuredHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler setup_logging installs (a later call replaces it, and only it)."""


def setup_logging(
    level: str = "info", fmt: str = "text", stream: TextIO | None = None, node_id: str | None = None
) -> logging.Handler:
    """Send every log record of the process to `stream` (stderr by default) in the chosen format, at `level` and
    above. Replaces handlers installed by an earlier call. Raises ValueError for an unknown level or format."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if level.lower() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    handler = StructuredHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(node_id) if fmt == "json" else KeyValueFormatter(node_id))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, StructuredHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def log_event(logger: logging.Logger, level: int, event: str, /, exc_info: bool = False, **fields: Any) -> None:
    """Log `event` with `fields` as one structured record (skipped cheaply when the level is disabled)."""
    if logger.isEnabledFor(level):
        text = " ".join(f"{k}={_text(_value(v))}" for k, v in fields.items())
        logger.log(level, "%s %s", event, text, exc_info=exc_info, extra={"event": event, "fields": fields})
