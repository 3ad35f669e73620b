"""The matcher: rules compiled into one prefilter, then confirmed and scored (re-exports).

The names below live in ``lexicon``, ``deadline`` and ``hits``; they are re-exported so
importers of ``bot.engine.matcher`` keep working while they move to the canonical modules.
"""

from bot.engine.matcher.deadline import Deadline
from bot.engine.matcher.hits import Evaluated
from bot.engine.matcher.lexicon import Lexicon

__all__ = ["Deadline", "Evaluated", "Lexicon"]
