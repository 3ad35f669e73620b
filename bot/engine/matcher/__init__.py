"""The matcher package: every rule in one literal prefilter, hits then confirmed and scored."""

# Transitional: other rooms import these names from ``bot.engine.matcher``; their homes are
# ``lexicon``, ``deadline`` and ``hits``, and importers move there before this re-export goes.

from bot.engine.matcher.deadline import Deadline
from bot.engine.matcher.hits import Evaluated
from bot.engine.matcher.lexicon import Lexicon

__all__ = ["Deadline", "Evaluated", "Lexicon"]
