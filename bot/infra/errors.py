"""The error a wrong or missing setting raises, named so start-up can say which one to fix."""

from __future__ import annotations


class ConfigError(Exception):
    """A setting is missing or wrong; ``setting`` names it so start-up can say which."""

    def __init__(self, setting: str, problem: str) -> None:
        """Keep the name apart so callers and tests can check it."""
        self.setting = setting
        super().__init__(problem if problem.startswith(setting) else f"{setting}: {problem}")
