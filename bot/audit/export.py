"""Producing records for inspection: decrypted JSONL or CSV, filters, progress, access records."""

from __future__ import annotations

import csv
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from tqdm import tqdm

from bot.audit.entries import operator_name
from bot.audit.records import Entry, Stored
from bot.audit.store import Archive, Query

# CSV columns: the fields an inspector reads first; everything else goes into "other" (JSON).
CSV_COLUMNS = (
    "seq",
    "at",
    "kind",
    "message_id",
    "conversation_id",
    "conversation_title",
    "sender_id",
    "sender_name",
    "source",
    "sent_at",
    "text",
    "categories",
    "severity",
    "rule_ids",
    "actions",
    "action",
    "status",
    "reviewer",
    "decision",
    "note",
    "key_id",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def flatten(stored: Stored, payload: dict[str, Any]) -> dict[str, Any]:
    """One exported record: the clear fields, then the decrypted payload."""
    sealed = stored.sealed
    return {
        "seq": stored.seq,
        "at": datetime.fromtimestamp(sealed.at, UTC).isoformat(),
        "kind": sealed.kind,
        "message_id": sealed.message_id,
        "conversation_id": sealed.conversation_id,
        "categories": [c for c in sealed.categories.split(",") if c],
        "key_id": sealed.key_id,
        **payload,
    }


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    text = str(value)
    # Chat text is attacker-controlled: a cell starting "=HYPERLINK(...)" would run as a
    # formula when a reviewer opens the export in a spreadsheet (CSV injection). The quote
    # makes it text; JSONL keeps the exact original.
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_records(
    archive: Archive,
    records: Iterable[Stored],
    out: TextIO,
    fmt: str,
    progress: tqdm[Any],
    keep: Callable[[Stored, dict[str, Any]], bool] | None = None,
) -> int:
    """Decrypt and write ``records`` as ``fmt`` ("jsonl" or "csv"); the number written.

    ``progress`` counts every record decrypted (kept or not) and is closed at the end.
    """
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow([*CSV_COLUMNS, "other"])
    written = 0
    for stored in records:
        payload = archive.decrypt(stored)
        progress.update()
        if keep is not None and not keep(stored, payload):
            continue
        record = flatten(stored, payload)
        if writer is not None:
            other = {k: v for k, v in record.items() if k not in CSV_COLUMNS}
            writer.writerow(
                [
                    *(_csv_cell(record.get(c)) for c in CSV_COLUMNS),
                    json.dumps(other, ensure_ascii=False),
                ]
            )
        else:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        written += 1
    progress.close()
    return written


def export(
    archive: Archive,
    query: Query,
    out: TextIO,
    fmt: str = "jsonl",
    *,
    show_progress: bool | None = None,
    keep: Callable[[Stored, dict[str, Any]], bool] | None = None,
) -> int:
    """Export the records matching ``query`` (and ``keep``, if given); the number written.

    ``show_progress`` None means: when stderr is a terminal and the export is long.
    """
    total = archive.count(query)
    enabled = (sys.stderr.isatty() and total > 10_000) if show_progress is None else show_progress
    # A rate and time left on stderr; never on an empty export, never on stdout (the data).
    progress = tqdm(total=total, file=sys.stderr, disable=not (enabled and total > 0), unit="rec")
    return write_records(archive, archive.select(query), out, fmt, progress, keep)


def mentions(needles: Iterable[str]) -> Callable[[Stored, dict[str, Any]], bool]:
    """A filter for records whose decrypted text, names or details contain any of ``needles``."""
    folded = [n.casefold() for n in needles if n]

    def keep(stored: Stored, payload: dict[str, Any]) -> bool:
        del stored
        haystack = json.dumps(payload, ensure_ascii=False).casefold()
        return any(n in haystack for n in folded)

    return keep


def record_access(
    archive: Archive, *, command: str, filters: dict[str, Any], records: int, output: str,
    operator: str | None = None, reason: str = "",
) -> int | None:  # fmt: skip
    """Append an ``access`` record: who read what, when, why.

    The SFC's circular on external electronic data storage (31 Oct 2019) expects a detailed
    audit trail of any access to records; the archive keeps its own. The filters (a person's
    id, say) are in the encrypted payload. Returns the seq, or None on a read-only copy.
    """
    entry = Entry(
        record_key=f"access:{uuid.uuid4().hex}",
        kind="access",
        message_id="",
        conversation_id="",
        sender_id="",
        categories=(),
        at=time.time(),
        payload={
            "operator": operator or operator_name(),
            "command": command,
            "filters": filters,
            "records": records,
            "output": output,
            "reason": reason,
        },
    )
    if archive.read_only:
        return None
    (seq,) = archive.append([entry])  # ArchiveError reaches the caller, which must say so
    return seq
