"""Check messages.jsonl: parsing, ids, labels, languages and identifier check digits.

Check messages.jsonl: parsing, unique ids and texts, label and language vocabularies, and
an audit of every identifier-like string (check digits must pass in pii messages and must
fail in clean ones). Prints counts per category and language (markdown, for README.md).
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

from make_identifiers import cnid_valid, hkid_valid, iban_valid, luhn_ok

HERE = Path(__file__).resolve().parent
CATS = ("advice", "pii", "off_channel")
LANGS = ("en", "zh-hant", "zh-hans", "yue", "mixed")

HKID_RE = re.compile(
    r"(?<![A-Za-z0-9])([A-Za-z]{1,2})(\d{6})\s*[-(（]?\s*([0-9Aa])\s*[)）]?(?![0-9A-Za-z])"
)
CNID_RE = re.compile(r"(?<!\d)(\d{17}[\dXx])(?![\dA-Za-z])")
CARD_RE = re.compile(r"(?<![\d+-])(\d(?:[ -]?\d){12,18})(?![\dXx])")
CARD_SHAPES = re.compile(
    r"\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4} \d{6} \d{5}"
)
IBAN_RE = re.compile(
    r"\b([A-Z]{2}\d{2}(?: [A-Z0-9]{4}){2,7}(?: (?=[A-Z]*\d)[A-Z0-9]{1,3})?|[A-Za-z]{2}\d{2}[A-Za-z0-9]{11,30})\b"
)


def audit(text: str) -> list[tuple[str, str, bool]]:
    """(kind, string, valid) for every identifier-shaped substring."""
    norm = unicodedata.normalize("NFKC", text)
    found: list[tuple[str, str, bool]] = []
    for m in HKID_RE.finditer(norm):
        found.append(
            ("hkid", m.group(0).strip(), hkid_valid(m.group(1) + m.group(2) + m.group(3)))
        )
    for m in CNID_RE.finditer(norm):
        found.append(("cnid", m.group(1), cnid_valid(m.group(1))))
    for m in IBAN_RE.finditer(norm):
        s = m.group(1).replace(" ", "")
        if s[:2].upper() in {"GB", "DE", "CH", "FR", "LU", "AE", "NL"}:
            found.append(("iban", m.group(1), iban_valid(s)))
            norm = norm.replace(m.group(1), " " * len(m.group(1)))
    for m in CARD_RE.finditer(norm):
        digits = re.sub(r"\D", "", m.group(1))
        if (
            CARD_SHAPES.fullmatch(m.group(1))
            and len(digits) != 18
            and not re.fullmatch(r"20\d{6,}", digits)
        ):
            found.append(("card", m.group(1), luhn_ok(digits)))
    return found


def main() -> int:
    errors: list[str] = []
    records = []
    for n, line in enumerate(
        (HERE / "messages.jsonl").read_text(encoding="utf-8").splitlines(), 1
    ):
        try:
            r = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {n}: {exc}")
            continue
        if set(r) != {"id", "text", "labels", "lang", "note"}:
            errors.append(f"line {n}: keys {sorted(r)}")
        if (
            not isinstance(r["labels"], list)
            or any(lbl not in CATS for lbl in r["labels"])
            or len(set(r["labels"])) != len(r["labels"])
        ):
            errors.append(f"{r['id']}: bad labels {r['labels']}")
        if r["lang"] not in LANGS:
            errors.append(f"{r['id']}: bad lang {r['lang']}")
        if not r["text"].strip():
            errors.append(f"{r['id']}: empty text")
        records.append(r)
    ids = Counter(r["id"] for r in records)
    errors += [f"duplicate id {i}" for i, c in ids.items() if c > 1]
    texts = Counter(r["text"] for r in records)
    errors += [f"duplicate text {t!r}" for t, c in texts.items() if c > 1]

    # identifier audit
    for r in records:
        for kind, s, ok in audit(r["text"]):
            if "pii" in r["labels"] and not ok:
                errors.append(f"{r['id']}: pii message has INVALID {kind} {s!r}: {r['text']}")
            if "pii" not in r["labels"] and ok:
                errors.append(f"{r['id']}: non-pii message has VALID {kind} {s!r}: {r['text']}")

    # counts
    total = len(records)
    clean = sum(1 for r in records if not r["labels"])
    cat = Counter(lbl for r in records for lbl in r["labels"])
    combos = Counter("+".join(r["labels"]) or "clean" for r in records)
    print(
        f"messages: {total}; clean: {clean} ({clean / total:.0%}); risky: {total - clean} ({(total - clean) / total:.0%})\n"
    )
    print("| category | messages |\n| --- | --- |")
    for c in CATS:
        print(f"| {c} | {cat[c]} |")
    print(f"| (clean) | {clean} |\n")
    print("| label combination | messages |\n| --- | --- |")
    for k, v in sorted(combos.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {v} |")
    print(
        "\n| lang | total | clean | advice | pii | off_channel |\n| --- | --- | --- | --- | --- | --- |"
    )
    for lg in LANGS:
        rs = [r for r in records if r["lang"] == lg]
        print(
            f"| {lg} | {len(rs)} | {sum(1 for r in rs if not r['labels'])} | "
            + " | ".join(str(sum(1 for r in rs if c in r["labels"])) for c in CATS)
            + " |"
        )
    zw = sum(1 for r in records if "\u200b" in r["text"])
    print(f"\nmessages containing a zero-width space: {zw}")
    if errors:
        print("\nERRORS:", *errors, sep="\n  ", file=sys.stderr)
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
