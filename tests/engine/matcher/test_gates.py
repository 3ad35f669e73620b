"""Pattern gates: the cheap preconditions are necessary, never sufficient."""

import pytest

from bot.engine.matcher.gates import analyse


@pytest.mark.parametrize(
    ("pattern", "min_digits", "literals"),
    [
        (r"guarantee\w*\s+\d+%", 1, {"guarantee"}),
        (r"(?<![\d.])(?:\+?852[\s-]?)?[2-9]\d{3}[\s-]?\d{4}(?![\d.])", 8, None),
        (r"(?:whatsapp|signal)\s+me", 0, {"whatsapp", "signal"}),
        (r"(?:whatsapp|\w+)\s+me", 0, {"me"}),
        (r"\p{Han}+\d{2}", 0, None),  # regex-only syntax: no gate, always runs
    ],
)
def test_pattern_gates_are_necessary_conditions(
    pattern: str, min_digits: int, literals: set[str] | None
) -> None:
    gate = analyse(pattern)
    assert gate.min_digits == min_digits
    assert gate.literals == (frozenset(literals) if literals is not None else None)
