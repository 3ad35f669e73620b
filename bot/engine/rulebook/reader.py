"""Reads typed values out of parsed YAML, recording located problems instead of raising."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import regex

from bot.engine.rulebook.dialect import compile_pattern
from bot.engine.rulebook.located import Located
from bot.engine.rulebook.model import Problem


class RuleReader:
    """Reads one rule file's fields, recording problems instead of stopping at the first."""

    def __init__(self, path: Path, doc: Located, problems: list[Problem]) -> None:
        self.path = path
        self.doc = doc
        self.problems = problems
        self.ok = True

    def fail(self, message: str, *path: str | int) -> None:
        """Record a problem at the line of ``path``; the file is then rejected."""
        self.problems.append(Problem(self.path, self.doc.line(*path), message))
        self.ok = False

    def text(self, value: Any, *path: str | int, required: bool = True) -> str:
        """Non-empty text (numbers are read as text); "" when missing and not required."""
        if value is None and not required:
            return ""
        if (
            not isinstance(value, str | int | float)
            or isinstance(value, bool)
            or not str(value).strip()
        ):
            self.fail(f"{'.'.join(map(str, path))} must be non-empty text", *path)
            return ""
        return str(value)

    def texts(self, value: Any, *path: str | int) -> tuple[str, ...]:
        """A list of texts; () when missing."""
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(f"{'.'.join(map(str, path))} must be a list", *path)
            return ()
        return tuple(self.text(v, *path, i) for i, v in enumerate(value))

    def number(
        self, value: Any, default: float, low: float, high: float, *path: str | int
    ) -> float:
        """A number within ``low``..``high``; ``default`` when missing or wrong."""
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            self.fail(f"{'.'.join(map(str, path))} must be a number from {low} to {high}", *path)
            return default
        return float(value)

    def compile(self, source: str, *path: str | int) -> regex.Pattern[str] | None:
        """A rule pattern compiled in the rule dialect; None when it does not compile."""
        try:
            return compile_pattern(source)
        except (regex.error, ValueError, OverflowError) as error:
            self.fail(f"regex does not compile: {error}", *path)
            return None

    def mapping(self, value: Any, *path: str | int) -> dict[str, Any]:
        """A mapping; {} when missing or not a mapping."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(f"{'.'.join(map(str, path))} must be a mapping", *path)
            return {}
        return value
