"""HTTP ingest (``POST /v1/messages``): messages from other sources into the same durable queue.

DingTalk delivers to an app robot only the group messages that @-mention it, so the rest of
a group's traffic (an archive export, another capture) arrives here. The body is a JSON
batch (``{"messages": [...]}`` or a bare list) or JSON lines, one record per message in the
format ``python -m bot screen --jsonl`` reads. Use the DingTalk msgId as ``id`` when the
message came from DingTalk: a message seen both here and on the stream is then acted on once.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.domain import Message
from bot.infra.supervisor import Supervisor

MAX_BATCH = 1_000
MAX_TEXT = 200_000
MAX_ID = 256
OPTIONAL_FIELDS = (
    "conversation_id",
    "conversation_title",
    "sender_id",
    "sender_name",
    "sender_staff_id",
)


class RecordError(ValueError):
    """One record of a batch is unusable; the message says why (never quoting its text)."""


def message_from_record(record: Any) -> Message:
    """Validate one ingest record and build its Message (``source="ingest"``).

    A ``session_webhook`` in a record is ignored: only DingTalk frames may name one, so an
    ingest client cannot make the bot post to an arbitrary URL.
    """
    if not isinstance(record, dict):
        raise RecordError("expected an object")
    raw_id = record.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        raise RecordError('"id" (string) is required')
    message_id = str(raw_id).strip()
    if not message_id or len(message_id) > MAX_ID:
        raise RecordError(f'"id" must be 1-{MAX_ID} characters')
    text = record.get("text")
    if not isinstance(text, str):
        raise RecordError('"text" (string) is required')
    if len(text) > MAX_TEXT:
        raise RecordError(f'"text" is longer than {MAX_TEXT} characters')
    extra: dict[str, str] = {}
    for name in OPTIONAL_FIELDS:
        value = record.get(name, "")
        if not isinstance(value, str):
            raise RecordError(f'"{name}" must be a string')
        extra[name] = value[:256]
    return Message(
        id=message_id, text=text, source="ingest", sent_at=_sent_at(record.get("sent_at")), **extra
    )


def _sent_at(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # epoch milliseconds, as DingTalk's createAt
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise RecordError('"sent_at" must be ISO 8601 or epoch milliseconds') from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise RecordError('"sent_at" must be ISO 8601 or epoch milliseconds')


def parse_body(body: bytes, content_type: str) -> list[Any]:
    """The records of a request body; raises RecordError when the body itself is unusable."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError("body is not UTF-8") from None
    if content_type in {"application/x-ndjson", "application/jsonl", "application/x-jsonlines"}:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise RecordError(f"line {number}: invalid JSON ({error.msg})") from None
        return records
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(f"invalid JSON ({error.msg} at line {error.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        return list(data["messages"])
    if isinstance(data, list):
        return data
    raise RecordError('expected {"messages": [...]} or a JSON list')


class Ingest:
    """The ``POST /v1/messages`` handler."""

    def __init__(
        self,
        *,
        token: str | None,
        accept: Callable[[Message], Awaitable[str]],
        refuse: Callable[[], str | None],
        supervisor: Supervisor,
    ) -> None:
        """``refuse`` returns a reason to turn a batch away (queue full, shutting down)."""
        self._token = token.encode() if token else None
        self.accept = accept
        self.refuse = refuse
        self.supervisor = supervisor

    def add_routes(self, app: web.Application) -> None:
        """Mount the endpoint."""
        app.router.add_post("/v1/messages", self.handle)

    def _authorised(self, request: web.Request) -> bool:
        assert self._token is not None  # noqa: S101
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        return hmac.compare_digest(presented.strip().encode(), self._token)

    async def handle(self, request: web.Request) -> web.Response:
        """Validate, authorise, queue each record; 202 with what was accepted and rejected."""
        if self._token is None:
            return _error(404, "ingest is disabled: set BOT_INGEST_TOKEN to enable it")
        if not self._authorised(request):
            return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        reason = self.refuse()
        if reason is not None:
            # Unlike a DingTalk frame, an HTTP client can retry: push back instead of spilling.
            return _error(503, reason, {"Retry-After": "5"})
        try:
            records = parse_body(await request.read(), request.content_type)
        except RecordError as error:
            return _error(400, str(error))
        if len(records) > MAX_BATCH:
            return _error(413, f"at most {MAX_BATCH} messages per request")
        accepted = 0
        rejected: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            try:
                message = message_from_record(record)
            except RecordError as error:
                rejected.append({"index": index, "error": str(error)})
                continue
            try:
                await self.accept(message)
            except Exception as error:  # noqa: BLE001  (answered with 500 and counted)
                self.supervisor.report("ingest", error, message_id=message.id)
                # Records up to here are queued; the client resends the rest (dedupe absorbs
                # any overlap).
                return web.json_response(
                    {"accepted": accepted, "rejected": rejected, "failed_at": index}, status=500
                )
            accepted += 1
        status = 202 if accepted or not records else 400
        return web.json_response({"accepted": accepted, "rejected": rejected}, status=status)


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers)
