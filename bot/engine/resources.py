"""Where the shipped data lives: the rules and models directories (overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path

# The source tree (an editable install) or the image's working directory: rules/ and models/
# sit beside the bot package, not inside it, so rule authors edit them without touching code.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_rules_dir() -> Path:
    """BOT_RULES_DIR, else the ``rules/`` directory shipped with the code."""
    configured = os.environ.get("BOT_RULES_DIR", "").strip()
    return Path(configured) if configured else PROJECT_ROOT / "rules"


def models_dir() -> Path:
    """BOT_MODELS_DIR, else the ``models/`` directory shipped with the code."""
    configured = os.environ.get("BOT_MODELS_DIR", "").strip()
    return Path(configured) if configured else PROJECT_ROOT / "models"
