"""A rule pattern as the stdlib parser reads it: the syntax tree the pattern gates walk."""

from __future__ import annotations

import re
import re._constants as sre_constants
import re._parser as sre_parse
from typing import Any

# (op, argument) pairs of one sequence of the tree; sub-sequences are parser objects that
# list() turns into the same shape.
Items = list[tuple[Any, Any]]

REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)


def parse(source: str) -> Items:
    """Parse ``source`` case-insensitively, as it is matched; raises on syntax it cannot read."""
    return list(sre_parse.parse(source, re.IGNORECASE))
