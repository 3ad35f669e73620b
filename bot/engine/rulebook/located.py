"""Rule sources read and parsed as YAML with line numbers, so every problem names its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.engine.rulebook.model import Problem


class Located:
    """YAML parsed with the line of every mapping key and sequence item kept."""

    def __init__(self, node: yaml.Node) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        # One SafeLoader constructs every scalar (ints, floats, quoted strings) the safe way.
        self._loader = yaml.SafeLoader("")
        try:
            self.data = self._convert(node, ())
        finally:
            self._loader.dispose()

    def _convert(self, node: yaml.Node, path: tuple[str | int, ...]) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self._convert(value_node, (*path, key))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._loader.construct_object(node, deep=True)

    def line(self, *path: str | int) -> int:
        """Line of the deepest known prefix of ``path``."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


def read_source(path: Path, problems: list[Problem]) -> str | None:
    """The text of a rules file; None (and a problem recorded) when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(path, 0, f"cannot read: {error}"))
        return None


def parse_yaml(path: Path, raw: str, problems: list[Problem]) -> Located | None:
    """Parse ``raw`` keeping lines; on bad or empty YAML record a problem and return None."""
    try:
        node = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problems.append(Problem(path, line, f"not valid YAML: {getattr(error, 'problem', error)}"))
        return None
    if node is None:
        problems.append(Problem(path, 0, "file is empty"))
        return None
    return Located(node)
