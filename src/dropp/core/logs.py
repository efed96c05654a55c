"""Logs as people read them in a terminal, or one JSON object a line (LOG_FORMAT=json) for a
log pipeline; either way each line of a request carries its request id, and secrets in URLs
never reach them (log_redaction)."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from dropp.core import log_redaction, request_id

TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or "-") on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "-")
        if rid != "-":
            line["request_id"] = rid
        args = record.args
        if (
            record.name == log_redaction.ACCESS_LOGGER
            and isinstance(args, tuple)
            and len(args) == 5
        ):
            # uvicorn's access line, already redacted: its parts as fields too.
            client, method, target, _, status = args
            line |= {"client": client, "method": method, "target": target, "status": status}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str, log_format: Literal["text", "json"]) -> None:
    """One handler on stderr for everything, uvicorn's loggers included (they propagate)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    log_redaction.install()
