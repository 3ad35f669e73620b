"""Builds evals/messages.jsonl from the hand-written clean.txt and risky.txt (stable ids)."""

import json
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    records = []
    for name, risky in (("clean.txt", False), ("risky.txt", True)):
        for line in (HERE / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            if risky:
                labels, lang, text = line.split("|", 2)
                label_list = labels.split(",")
            else:
                lang, text = line.split("|", 1)
                label_list = []
            text = text.replace("\\u200b", "\u200b")  # zero-width evasions are written escaped
            records.append({"id": f"e{len(records) + 1:04d}", "text": text, "labels": label_list, "lang": lang})
    (HERE / "messages.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    print(len(records), "messages;", sum(1 for r in records if not r["labels"]), "clean")
    print(Counter(label for r in records for label in r["labels"]))
    print(Counter(r["lang"] for r in records))


if __name__ == "__main__":
    main()
