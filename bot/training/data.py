"""The labelled messages the model learns from and is judged on, and the ordinary-chat negatives.

Training data is written by the team (models/intent/data/*.jsonl, docs/labelling.md); the
untuned test set (evals/intent-test/) is written blind and never trained on; ordinary chat from
public datasets (../shared/data/ordinary-chat/dev.tsv) is read where it lies, never copied in:
by a hash of the text, half of it serves as extra negatives, a quarter for choosing thresholds,
and a quarter measures false alarms on text nothing was fitted or tuned on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.domain import Category

DEV_SHARE = 0.15  # of the team's messages, held out for choosing thresholds
LABELS = (Category.ADVICE, Category.OFF_CHANNEL, Category.PII)
# What a message does when a rule hit in it is a false alarm (docs/labelling.md intents).
REPORTED_INTENTS = frozenset({"report", "warn", "policy", "question"})


class DataError(Exception):
    """A data file cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Labelled:
    """One message and what it should be flagged for."""

    text: str
    labels: frozenset[Category]
    intent: str = ""
    lang: str = ""
    voice: str = ""
    source: str = ""  # file it came from

    def has(self, category: Category) -> bool:
        """Whether the message should be flagged for ``category``."""
        return category in self.labels


def read_labelled(path: Path) -> list[Labelled]:
    """Every record of a JSON-lines file in the format of docs/labelling.md."""
    out: list[Labelled] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read: {error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            labels = frozenset(Category(label) for label in record["labels"])
            text = record["text"]
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"{path}:{number}: not a labelled record ({error})") from None
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}:{number}: empty text")
        out.append(
            Labelled(
                text,
                labels,
                str(record.get("intent", "")),
                str(record.get("lang", "")),
                str(record.get("voice", "")),
                path.name,
            )
        )
    return out


def read_directory(directory: Path) -> list[Labelled]:
    """All ``*.jsonl`` files of ``directory``, in name order."""
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise DataError(f"{directory}: no *.jsonl training files")
    return [record for path in files for record in read_labelled(path)]


def read_ordinary(path: Path) -> list[str]:
    """The ``text`` column of the ordinary-chat TSV (comment lines start with ``#``)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read: {error}") from None
    return [line.split("\t", 1)[0] for line in lines if line and not line.startswith("#")]


def bucket(text: str) -> float:
    """A stable number in [0, 1) from the text: the same message always lands the same side."""
    digest = hashlib.sha256(" ".join(text.split()).casefold().encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def split(records: Sequence[Labelled]) -> tuple[list[Labelled], list[Labelled]]:
    """(train, dev) by a hash of each text: deterministic, and duplicates stay together."""
    train = [r for r in records if bucket(r.text) >= DEV_SHARE]
    dev = [r for r in records if bucket(r.text) < DEV_SHARE]
    return train, dev


@dataclass(frozen=True, slots=True)
class OrdinaryParts:
    """The ordinary chat cut three ways by a hash of each text."""

    train: list[str]  # negatives the model is fitted on (half)
    tune: list[str]  # for choosing thresholds (a quarter)
    measure: list[str]  # untouched: false alarms per 10,000 (a quarter)


def ordinary_parts(texts: Iterable[str]) -> OrdinaryParts:
    """Split ordinary-chat messages into fitting, tuning and measuring parts."""
    parts = OrdinaryParts([], [], [])
    for text in texts:
        share = bucket("ordinary:" + text)
        part = parts.train if share < 0.5 else parts.tune if share < 0.75 else parts.measure
        part.append(text)
    return parts


def content_hash(paths: Iterable[Path]) -> str:
    """SHA-256 over the named files' bytes (and names), in order: what a model was built from."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def without(records: Iterable[Labelled], texts: Iterable[str]) -> Iterator[Labelled]:
    """``records`` minus any whose text (space- and case-folded) is in ``texts``: no test leaks."""
    banned = {" ".join(t.split()).casefold() for t in texts}
    return (r for r in records if " ".join(r.text.split()).casefold() not in banned)
