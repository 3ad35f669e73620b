"""A rule's structured fields read and compiled: patterns, near, exclude, allow, and more."""

from __future__ import annotations

from typing import Any

import regex

from bot.engine.rulebook.model import (
    ContextSpec,
    Example,
    ExcludeSpec,
    NearSpec,
    PatternSpec,
    RedactSpec,
)
from bot.engine.rulebook.reader import RuleReader

EXCLUDE_WHERE = frozenset({"before", "after", "around", "covering", "message"})


def read_patterns(reader: RuleReader, value: Any, default_score: float) -> tuple[PatternSpec, ...]:
    """``patterns:``: named regexes (a bare string is a pattern too), compiled."""
    if value is None:
        return ()
    if not isinstance(value, list):
        reader.fail("patterns must be a list of {name, regex, score}", "patterns")
        return ()
    specs: list[PatternSpec] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {"name": f"pattern-{i + 1}", "regex": item}
        if not isinstance(item, dict):
            reader.fail("each pattern must be a mapping with name and regex", "patterns", i)
            continue
        unknown = set(item) - {"name", "regex", "score"}
        if unknown:
            reader.fail(f"unknown pattern field(s): {', '.join(sorted(unknown))}", "patterns", i)
        name = reader.text(item.get("name", f"pattern-{i + 1}"), "patterns", i, "name")
        source = reader.text(item.get("regex"), "patterns", i, "regex")
        score = reader.number(item.get("score"), default_score, 0.0, 1.0, "patterns", i, "score")
        compiled = reader.compile(source, "patterns", i, "regex") if source else None
        if compiled is not None:
            specs.append(
                PatternSpec(name, source, compiled, score, reader.doc.line("patterns", i))
            )
    return tuple(specs)


def read_near(reader: RuleReader, value: Any) -> NearSpec | None:
    """``near:``: terms or patterns one of which must sit within a few tokens of a hit."""
    data = reader.mapping(value, "near")
    if not data:
        return None
    within = int(reader.number(data.get("within"), 6, 1, 50, "near", "within"))
    terms = tuple(t for t in reader.texts(data.get("terms"), "near", "terms") if t)
    sources = reader.texts(data.get("patterns"), "near", "patterns")
    compiled = [reader.compile(s, "near", "patterns", i) for i, s in enumerate(sources) if s]
    if not terms and not sources:
        reader.fail("near needs terms or patterns", "near")
    return NearSpec(within, terms, tuple(c for c in compiled if c is not None))


def read_excludes(reader: RuleReader, value: Any) -> tuple[ExcludeSpec, ...]:
    """``exclude:``: patterns or terms that drop a hit when found where they say."""
    if value is None:
        return ()
    if not isinstance(value, list):
        reader.fail("exclude must be a list of {pattern or terms, where, window}", "exclude")
        return ()
    specs: list[ExcludeSpec] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            reader.fail("each exclude must be a mapping", "exclude", i)
            continue
        unknown = set(item) - {"pattern", "terms", "where", "window"}
        if unknown:
            reader.fail(f"unknown exclude field(s): {', '.join(sorted(unknown))}", "exclude", i)
        where = str(item.get("where", "around"))
        if where not in EXCLUDE_WHERE:
            reader.fail(
                f"where must be one of {', '.join(sorted(EXCLUDE_WHERE))}", "exclude", i, "where"
            )
        window = int(reader.number(item.get("window"), 20, 0, 500, "exclude", i, "window"))
        source = item.get("pattern")
        compiled = (
            reader.compile(reader.text(source, "exclude", i, "pattern"), "exclude", i, "pattern")
            if source is not None
            else None
        )
        terms = tuple(t for t in reader.texts(item.get("terms"), "exclude", i, "terms") if t)
        if compiled is None and not terms:
            reader.fail("exclude needs a pattern or terms", "exclude", i)
            continue
        specs.append(ExcludeSpec(where, window, compiled, terms, reader.doc.line("exclude", i)))
    return tuple(specs)


def read_allow(
    reader: RuleReader, value: Any
) -> tuple[tuple[str, ...], tuple[regex.Pattern[str], ...]]:
    """``allow:``: phrases and patterns that clear the whole message for this rule."""
    if value is None:
        return (), ()
    if not isinstance(value, list):
        reader.fail("allow must be a list of phrases or {pattern: ...}", "allow")
        return (), ()
    terms: list[str] = []
    patterns: list[regex.Pattern[str]] = []
    for i, item in enumerate(value):
        if isinstance(item, dict) and "pattern" in item:
            compiled = reader.compile(
                reader.text(item["pattern"], "allow", i, "pattern"), "allow", i
            )
            if compiled is not None:
                patterns.append(compiled)
        else:
            text = reader.text(item, "allow", i)
            if text:
                terms.append(text)
    return tuple(terms), tuple(patterns)


def read_context(reader: RuleReader, value: Any) -> ContextSpec | None:
    """``context:``: words near a hit that raise or lower its score."""
    data = reader.mapping(value, "context")
    if not data:
        return None
    unknown = set(data) - {"window", "raise", "lower"}
    if unknown:
        reader.fail(f"unknown context field(s): {', '.join(sorted(unknown))}", "context")
    window = int(reader.number(data.get("window"), 30, 1, 500, "context", "window"))
    return ContextSpec(
        window,
        tuple(t for t in reader.texts(data.get("raise"), "context", "raise") if t),
        tuple(t for t in reader.texts(data.get("lower"), "context", "lower") if t),
    )


def read_redact(reader: RuleReader, value: Any) -> RedactSpec | None:
    """``redact:``: true/"mask" or how many characters stay visible at each end."""
    if value is None or value is False:
        return None
    if value is True or value == "mask":
        return RedactSpec(0, 0)
    data = reader.mapping(value, "redact")
    keep_start = int(reader.number(data.get("keep_start"), 0, 0, 20, "redact", "keep_start"))
    keep_end = int(reader.number(data.get("keep_end"), 0, 0, 20, "redact", "keep_end"))
    return RedactSpec(keep_start, keep_end)


def read_examples(reader: RuleReader, data: dict[str, Any]) -> tuple[Example, ...]:
    """``examples:`` (at least one of each kind) and the ``todo_*`` known gaps."""
    examples = reader.mapping(data.get("examples"), "examples")
    unknown = set(examples) - {"match", "no_match"}
    if unknown:
        reader.fail(f"unknown examples field(s): {', '.join(sorted(unknown))}", "examples")
    result: list[Example] = []
    for key, expect in (("match", True), ("no_match", False)):
        items = reader.texts(examples.get(key), "examples", key)
        if not items:
            reader.fail(f"examples.{key} needs at least one example", "examples")
        result += [
            Example(t, expect, reader.doc.line("examples", key, i)) for i, t in enumerate(items)
        ]
    for key, expect in (("todo_match", True), ("todo_no_match", False)):
        items = reader.texts(data.get(key), key)
        result += [
            Example(t, expect, reader.doc.line(key, i), todo=True) for i, t in enumerate(items)
        ]
    return tuple(result)
