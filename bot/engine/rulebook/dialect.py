"""The rule pattern dialect: how a rule author's regex becomes the regex run on folded text."""

from __future__ import annotations

import regex

from bot.engine.normalize import fold_char, is_cjk

REGEX_FLAGS = regex.V0 | regex.IGNORECASE

_LATIN = r"[\p{Latin}\d]"
_LATIN_BOUNDARY = rf"(?:(?<!{_LATIN})(?={_LATIN})|(?<={_LATIN})(?!{_LATIN}))"
_WORD_STARTS_AFTER = rf"(?<!{_LATIN})"  # \b just before a word: nothing Latin behind
_WORD_ENDS_BEFORE = rf"(?!{_LATIN})"  # \b just after a word: nothing Latin ahead


def fold_pattern_script(source: str) -> str:
    """Fold the Chinese characters of a pattern to Simplified, as message text is folded.

    Rule authors may then write a pattern in either script (搵 or 揾, 飛機 or 飞机). Only CJK
    characters are touched; regex syntax is ASCII and stays as written.
    """
    return "".join(fold_char(c) if is_cjk(c) else c for c in source)


def latin_word_boundaries(source: str, *, one_sided: bool = True) -> str:
    r"""Make ``\b`` in a rule pattern mean a boundary of a Latin-script word.

    In Unicode regexes Chinese characters are word characters, so ``\bbuy\b`` would miss
    "快啲buy啦". Rule authors write ``\b`` and mean "not glued to other Latin letters or digits".
    Where the pattern says which side the word is on (``\bbuy``, ``(?:on|via)\b``) only that
    side is checked: the two-sided form is tried at every position and is several times slower.
    """
    out: list[str] = []
    index = 0
    in_class = False
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source):
            pair = source[index : index + 2]
            if pair == "\\b" and not in_class:
                if one_sided and _word_follows(source, index + 2):
                    out.append(_WORD_STARTS_AFTER)
                elif one_sided and _word_precedes(source, index):
                    out.append(_WORD_ENDS_BEFORE)
                else:
                    out.append(_LATIN_BOUNDARY)
            else:
                out.append(pair)
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


def _word_follows(source: str, index: int) -> bool:
    """Whether every match of the pattern text at ``index`` starts with a Latin letter or digit."""
    if index >= len(source):
        return False
    if source[index].isascii() and source[index].isalnum():
        return True
    if source[index : index + 2] == "\\d":
        return True
    if source.startswith("(?:", index):
        close = _matching_paren(source, index)
        if close is None or (close + 1 < len(source) and source[close + 1] in "?*{"):
            return False  # an optional group tells nothing about what follows
        return all(_word_follows(alt, 0) for alt in _alternatives(source[index + 3 : close]))
    return False


def _word_precedes(source: str, index: int) -> bool:
    """Whether every match of the pattern text before ``index`` ends with a Latin letter/digit."""
    if index == 0:
        return False
    before = source[index - 1]
    if before.isascii() and before.isalnum():
        return index < 2 or source[index - 2] != "\\" or source[index - 2 : index] == "\\d"
    if before == ")":
        opening = _matching_open(source, index - 1)
        if opening is None or not source.startswith("(?:", opening):
            return False
        return all(
            _word_precedes(alt, len(alt)) for alt in _alternatives(source[opening + 3 : index - 1])
        )
    return False


def _alternatives(group: str) -> list[str]:
    """Split a group body on its top-level ``|``."""
    parts, depth, current, escaped = [], 0, [], False
    for char in group:
        if escaped:
            current.append(char)
            escaped = False
            continue
        if char == "\\":
            escaped = True
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _matching_paren(source: str, opening: int) -> int | None:
    depth = 0
    index = opening
    while index < len(source):
        char = source[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def _matching_open(source: str, closing: int) -> int | None:
    for opening in range(closing - 1, -1, -1):
        unescaped = opening == 0 or source[opening - 1] != "\\"
        if source[opening] == "(" and unescaped and _matching_paren(source, opening) == closing:
            return opening
    return None


def compile_pattern(source: str) -> regex.Pattern[str]:
    """Compile a rule pattern as written in a rule file; raises like :func:`regex.compile`."""
    return regex.compile(fold_pattern_script(latin_word_boundaries(source)), REGEX_FLAGS)
