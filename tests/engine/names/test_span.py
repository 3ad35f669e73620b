"""NameSpan, the one result of name detection."""

import pytest

from bot.engine.names import NameSpan


def test_spans_are_frozen_values() -> None:
    span = NameSpan(0, 3, 0.85, "surname 陳 + honorific 生")
    with pytest.raises(AttributeError):
        span.score = 1.0  # type: ignore[misc]
