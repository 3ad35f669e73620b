"""JSON logs keep whitelisted fields only; the SDK's loggers are scrubbed of frame contents."""

from __future__ import annotations

import logging
import sys

from bot.infra.logs import JsonFormatter, scrub_sdk_loggers


def test_json_log_keeps_whitelisted_fields_and_drops_anything_else() -> None:
    record = logging.LogRecord(
        "bot.runtime.lifecycle", logging.INFO, __file__, 1, "message flagged", (), None
    )
    record.message_id = "msg1"
    record.text = "客戶身份證 A123456(3)"  # a careless extra= must not reach the log
    try:
        raise ValueError("A123456(3)")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert '"message_id": "msg1"' in line
    assert "A123456" not in line
    assert '"exception": "ValueError"' in line


def test_sdk_loggers_are_scrubbed_of_frame_contents() -> None:
    scrub_sdk_loggers()
    logger = logging.getLogger("dingtalk_stream.client")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    logging.getLogger().addHandler(handler)
    try:
        logger.warning(
            "unknown callback message topic, topic=%s, message=%s", "t", {"text": "A123456(3)"}
        )
        logger.error("error processing message: A123456(3) leaked in an f-string")
        logger.warning("unknown message topic, topic=%s", "ping")
    finally:
        logging.getLogger().removeHandler(handler)
    assert all("A123456" not in line for line in seen)
    assert len(seen) == 2  # pings are dropped as noise
    assert logging.getLogger("websockets.client").level == logging.INFO
