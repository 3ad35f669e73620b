"""Build messages.jsonl from the hand-written source/*.txt files.

Each source line is  labels|lang|note|text  ("-" = clean; labels comma-separated).
Lines starting with '#' are comments. In the text, the escapes \\u200b (zero-width space)
and \\n (newline) are expanded. The records are shuffled with a fixed seed so that an id
says nothing about the label, then numbered e0001, e0002, ...
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = [
    "advice.txt",
    "off_channel.txt",
    "pii.txt",
    "multi.txt",
    "clean_numbers.txt",
    "clean_words.txt",
    "extra.txt",
]
SEED = 4501


def read_sources() -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    for name in SOURCES:
        for lineno, line in enumerate(
            (HERE / "source" / name).read_text(encoding="utf-8").splitlines(), 1
        ):
            if not line.strip() or line.startswith("#"):
                continue
            labels, lang, note, text = line.split("|", 3)
            text = text.replace("\\u200b", "\u200b").replace("\\n", "\n")
            records.append(
                {
                    "text": text,
                    "labels": [] if labels == "-" else sorted(labels.split(",")),
                    "lang": lang,
                    "note": note.strip(),
                    "_src": f"{name}:{lineno}",
                }
            )
    return records


def main() -> None:
    records = read_sources()
    random.Random(SEED).shuffle(records)
    with open(HERE / "messages.jsonl", "w", encoding="utf-8") as fh:
        for i, r in enumerate(records, 1):
            out = {
                "id": f"e{i:04d}",
                "text": r["text"],
                "labels": r["labels"],
                "lang": r["lang"],
                "note": r["note"],
            }
            fh.write(json.dumps(out, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} records to messages.jsonl")


if __name__ == "__main__":
    main()
