"""One structured log format for the whole node.

``json`` writes one JSON object per line (time, level, logger, message, and any
``extra`` fields, including ``conn`` — the connection id every protocol sets for
its lines); ``text`` writes the same fields as key=value pairs.  Credentials
are never logged; message bodies only at TRACE.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# The id of the connection being served, set by each listener per connection.
connection_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "connection_id", default=None
)

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message"}


class _ConnectionFilter(logging.Filter):
    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        if self.process is not None and not hasattr(record, "process_name"):
            record.process_name = self.process
        if not hasattr(record, "conn"):
            conn = connection_id.get()
            if conn is not None:
                record.conn = conn
        return True


def _fields(record: logging.LogRecord) -> dict[str, object]:
    out: dict[str, object] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": record.levelname,
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = value if isinstance(value, (str, int, float, bool)) or value is None \
                else str(value)
    if record.exc_info:
        out["exc"] = logging.Formatter().formatException(record.exc_info)
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False)


def _text_value(key: str, value: object) -> str:
    text = str(value)
    return json.dumps(value, ensure_ascii=False) if key == "msg" or " " in text else text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        exc = fields.pop("exc", None)
        line = " ".join(f"{k}={_text_value(k, v)}" for k, v in fields.items())
        return f"{line}\n{exc}" if exc else line


def setup_logging(level: str = "INFO", fmt: str = "json", *, process: str | None = None) -> None:
    """``process``: a name every line carries as ``process_name`` (a node's
    worker processes: "worker-0", ...)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ConnectionFilter(process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(TRACE if level == "TRACE" else getattr(logging, level))
    for noisy in ("uvicorn.access", "botocore", "aiobotocore", "mail.log"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
