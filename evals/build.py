"""Builds the evaluation sets' JSONL files from their hand-written text sources (stable ids)."""

import json
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _development() -> list[dict[str, object]]:
    """messages.jsonl: clean.txt ("lang|text") then risky.txt ("labels|lang|text")."""
    records: list[dict[str, object]] = []
    for name, risky in (("clean.txt", False), ("risky.txt", True)):
        for line in (HERE / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            if risky:
                labels, lang, text = line.split("|", 2)
            else:
                labels, (lang, text) = "", line.split("|", 1)
            records.append(_record(f"e{len(records) + 1:04d}", labels, lang, text))
    return records


def _held_out(name: str, prefix: str) -> list[dict[str, object]]:
    """A held-out set: "labels|lang|text" per line, "-" for a clean message."""
    records: list[dict[str, object]] = []
    for line in (HERE / name).read_text(encoding="utf-8").splitlines():
        if line.strip():
            labels, lang, text = line.split("|", 2)
            records.append(_record(f"{prefix}{len(records) + 1:04d}", labels, lang, text))
    return records


def _record(record_id: str, labels: str, lang: str, text: str) -> dict[str, object]:
    label_list = [] if labels in ("", "-") else labels.split(",")
    text = text.replace("\\u200b", "\u200b")  # zero-width evasions are written escaped
    return {"id": record_id, "text": text, "labels": label_list, "lang": lang}


def main() -> None:
    """Write the three JSONL sets and print their make-up."""
    sets = {
        "messages.jsonl": _development(),
        "holdout.jsonl": _held_out("holdout.txt", "h"),
        "holdout2.jsonl": _held_out("holdout2.txt", "g"),
        "holdout3.jsonl": _held_out("holdout3.txt", "k"),
    }
    for name, records in sets.items():
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (HERE / name).write_text(lines, encoding="utf-8")
        labels = Counter(str(label) for r in records for label in r["labels"])  # type: ignore[attr-defined]
        clean = sum(1 for r in records if not r["labels"])
        print(f"{name}: {len(records)} messages, {clean} clean, {dict(labels)}")


if __name__ == "__main__":
    main()
