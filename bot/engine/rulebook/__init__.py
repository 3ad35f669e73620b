"""The rule book: rule files loaded, checked and compiled (re-exports for existing importers).

The names below live in ``model`` and ``loader``; they are re-exported so importers of
``bot.engine.rulebook`` keep working while they move to the canonical modules.
"""

from bot.engine.rulebook.loader import load_rulebook
from bot.engine.rulebook.model import (
    NAME_RULE_ID,
    Example,
    NameRule,
    Policy,
    Problem,
    Rule,
    Rulebook,
    RulebookError,
)

__all__ = [
    "NAME_RULE_ID",
    "Example",
    "NameRule",
    "Policy",
    "Problem",
    "Rule",
    "Rulebook",
    "RulebookError",
    "load_rulebook",
]
