"""The time-boxed regex: one per-message budget shared by every rule regex on that message."""

from __future__ import annotations

import time

import regex


class Deadline:
    """A per-message time budget shared by every regex run on that message."""

    def __init__(self, pattern_timeout: float, message_budget: float) -> None:
        """Each regex gets at most ``pattern_timeout`` s and all together ``message_budget`` s."""
        self._pattern_timeout = pattern_timeout
        self._ends_at = time.monotonic() + message_budget
        self.errors: list[str] = []

    def timeout(self) -> float:
        """Seconds the next regex may take (never below 1 ms so a late call still fails fast)."""
        return max(0.001, min(self._pattern_timeout, self._ends_at - time.monotonic()))

    def finditer(
        self,
        pattern: regex.Pattern[str],
        text: str,
        label: str,
        pos: int = 0,
        endpos: int | None = None,
    ) -> list[tuple[int, int]]:
        """All non-overlapping matches, or none (and an error noted) if the time box runs out.

        ``pos``/``endpos`` limit the search but keep the text around them visible to
        look-behinds, unlike slicing.
        """
        end = len(text) if endpos is None else endpos
        try:
            return [m.span() for m in pattern.finditer(text, pos, end, timeout=self.timeout())]
        except TimeoutError:
            self.errors.append(
                f"{label}: regex timed out; this pattern was skipped on this message"
            )
            return []

    def search(self, pattern: regex.Pattern[str], text: str, label: str) -> bool:
        """Whether ``pattern`` occurs, treating a time-out as 'not found' (and noting it)."""
        try:
            return pattern.search(text, timeout=self.timeout()) is not None
        except TimeoutError:
            self.errors.append(
                f"{label}: regex timed out; this pattern was skipped on this message"
            )
            return False
