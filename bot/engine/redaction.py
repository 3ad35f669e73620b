"""Masks personal-data spans so a redacted copy stays readable (``A123***(*)``, ``9123 ****``)."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "*"


def mask_span(value: str, keep_start: int, keep_end: int) -> str:
    """Mask the letters and digits of ``value`` except the first/last few; keep separators.

    Keeping separators and brackets keeps the shape recognisable to a reviewer
    ("A123***(*)") without disclosing the identifier (PCPD code on ID numbers).
    """
    positions = [i for i, c in enumerate(value) if c.isalnum()]
    # Never reveal so much that the value could be reconstructed: at most half stays visible.
    visible_budget = len(positions) // 2
    keep_start = min(keep_start, visible_budget)
    keep_end = min(keep_end, visible_budget - keep_start)
    hidden = set(positions[keep_start : len(positions) - keep_end])
    return "".join(MASK if i in hidden else c for i, c in enumerate(value))


def redact(text: str, spans: Iterable[tuple[int, int, int, int]]) -> str:
    """Apply ``(start, end, keep_start, keep_end)`` masks to ``text``; overlaps are merged."""
    ordered = sorted(spans)
    if not ordered:
        return text
    merged: list[list[int]] = []
    for start, end, keep_start, keep_end in ordered:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            # Overlapping spans: mask the union and keep only what both would keep.
            last[1] = max(last[1], end)
            last[2] = min(last[2], keep_start)
            last[3] = min(last[3], keep_end)
        else:
            merged.append([start, end, keep_start, keep_end])
    out: list[str] = []
    position = 0
    for start, end, keep_start, keep_end in merged:
        out.append(text[position:start])
        out.append(mask_span(text[start:end], keep_start, keep_end))
        position = end
    out.append(text[position:])
    return "".join(out)
