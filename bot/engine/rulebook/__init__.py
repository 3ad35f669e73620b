"""The rule book package: rule files loaded, checked and compiled into frozen rules."""

# Transitional: other rooms import these names from ``bot.engine.rulebook``; their homes are
# ``model`` and ``loader``, and importers move there before this re-export goes.

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
