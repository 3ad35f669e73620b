"""JSON logs on stderr with whitelisted fields only; the SDK loggers scrubbed of message text."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Fields a log call may attach with ``extra=``; anything else is dropped so a careless call
# cannot leak message text into the logs.
SAFE_FIELDS = frozenset(
    {
        "message_id",
        "conversation_id",
        "source",
        "case_id",
        "rules",
        "actions",
        "categories",
        "severity",
        "strikes",
        "attempts",
        "version",
        "replica",
        "endpoint",
        "status",
        "code",
        "delay",
        "count",
        "error",
        "stage",
        "elapsed_ms",
        "depth",
        "reason",
        "outcome",
        "settings",
        "url",
        "stream_id",
        "task",
    }
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, and whitelisted fields only."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``; exception text is reduced to its type (it can quote data)."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key in SAFE_FIELDS:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_info[0].__name__
        return json.dumps(out, ensure_ascii=False, default=str)


class _SdkScrubber(logging.Filter):
    """The SDK logs whole frames (with message text) on some paths; keep only its template."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("unknown message topic"):
            return False  # every SYSTEM ping is logged as "unknown" by 0.24.3: noise
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        if not record.args:
            # f-strings ("error processing message: {e}", "failed, error={e}, response.text=")
            # carry their data after the first ':' or '='; keep only the words before it.
            cut = min((i for i in (template.find(":"), template.find("=")) if i >= 0), default=120)
            template = template[: min(cut, 120)]
        record.msg = template
        record.args = tuple("…" for _ in record.args) if isinstance(record.args, tuple) else ()
        record.exc_info = None
        return True


def configure_logging(level: str = "INFO") -> None:
    """JSON logs on stderr for the whole process; the SDK's loggers scrubbed and routed here."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    scrub_sdk_loggers()


def scrub_sdk_loggers() -> None:
    """Route ``dingtalk_stream.*`` loggers through ours with their arguments scrubbed.

    ``websockets`` logs every frame (message text included) at DEBUG, so its loggers are
    held at INFO whatever the root level is.
    """
    for name in ("websockets", "websockets.client", "urllib3"):
        logging.getLogger(name).setLevel(logging.INFO)
    for name in ("dingtalk_stream", "dingtalk_stream.client", "dingtalk_stream.handler"):
        logger = logging.getLogger(name)
        logger.handlers.clear()  # the SDK adds its own plain-text StreamHandler
        logger.propagate = True
        if not any(isinstance(f, _SdkScrubber) for f in logger.filters):
            logger.addFilter(_SdkScrubber())
