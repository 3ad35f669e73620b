"""A validated rule set as the runtime holds it, and rule files as a bundle other replicas load."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from bot.domain import Category
from bot.engine.screener import Screener
from bot.runtime.notices import RuleNote

BUNDLE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A loaded, validated rule set and what chat messages may say about each rule."""

    screener: Screener
    notes: dict[str, RuleNote]

    @property
    def version(self) -> str:
        """The rule set's content hash."""
        return self.screener.rules_version

    @classmethod
    def build(cls, screener: Screener) -> RuleSet:
        """Index rule titles and bilingual messages by id."""
        notes = {
            rule.id: RuleNote(
                rule.id, rule.title, rule.category, rule.severity, rule.message_zh, rule.message_en
            )
            for rule in screener.rulebook.rules
        }
        # The client-name and intent-model pseudo-rules have no rule file; policy.yaml gives
        # their wording.
        names = screener.policy.names
        notes[names.id] = RuleNote(
            names.id, names.title, Category.PII, names.severity, names.message_zh, names.message_en
        )
        for intent in screener.policy.intent.rules.values():
            notes[intent.id] = RuleNote(
                intent.id,
                intent.title or intent.id,
                intent.category,
                intent.severity,
                intent.message_zh,
                intent.message_en,
            )
        return cls(screener, notes)

    def note(self, rule_id: str, fallback: RuleNote) -> RuleNote:
        """The note for ``rule_id``; ``fallback`` for a rule the set does not know."""
        return self.notes.get(rule_id, fallback)


def read_bundle(directory: Path) -> dict[str, str]:
    """The rule files of ``directory`` as {relative path: text}."""
    return {
        str(path.relative_to(directory)): path.read_text(encoding="utf-8")
        for path in sorted(directory.rglob("*"))
        if path.suffix in BUNDLE_SUFFIXES and path.is_file()
    }


def write_bundle(bundle: dict[str, str], directory: Path) -> None:
    """Materialise a bundle (refusing paths that escape ``directory``)."""
    if directory.exists():
        shutil.rmtree(directory)
    for relative, text in bundle.items():
        target = (directory / relative).resolve()
        if directory.resolve() not in target.parents:
            raise ValueError(f"bundle path escapes the rules directory: {relative!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detection: name, size and mtime of every rule file."""
    out = []
    for path in sorted(directory.rglob("*")):
        if path.suffix in BUNDLE_SUFFIXES:
            with contextlib.suppress(OSError):
                stat = path.stat()
                out.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(out)
