"""Loads a rules directory into a checked Rulebook: rule files, aliases, and the policy file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import regex

from bot.domain import Category, Severity
from bot.engine.rulebook.fields import (
    read_allow,
    read_context,
    read_examples,
    read_excludes,
    read_near,
    read_patterns,
    read_redact,
)
from bot.engine.rulebook.located import parse_yaml, read_source
from bot.engine.rulebook.model import Problem, Rule, Rulebook, RulebookError
from bot.engine.rulebook.policy_file import load_policy
from bot.engine.rulebook.reader import RuleReader
from bot.engine.validators import VALIDATORS

RULE_ID = regex.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
RULE_KEYS = frozenset(
    {
        "id",
        "severity",
        "title",
        "message",
        "score",
        "terms",
        "patterns",
        "near",
        "exclude",
        "allow",
        "validate",
        "context",
        "redact",
        "examples",
        "todo_match",
        "todo_no_match",
        "description",
    }
)


def load_rulebook(directory: Path) -> Rulebook:
    """Load and validate all of ``directory``; raise RulebookError listing every problem."""
    problems: list[Problem] = []
    if not directory.is_dir():
        raise RulebookError([Problem(directory, 0, "rules directory not found")])
    digest = hashlib.sha256()
    policy = load_policy(directory / "policy.yaml", problems, digest)
    aliases = _load_aliases(directory / "aliases.yaml", problems, digest)
    rules: list[Rule] = []
    seen: dict[str, Path] = {}
    for path in sorted(_rule_files(directory)):
        digest.update(str(path.relative_to(directory)).encode())
        raw = read_source(path, problems)
        if raw is None:
            continue
        digest.update(raw.encode())
        rule = _load_rule(path, raw, problems)
        if rule is None:
            continue
        if rule.id in seen:
            problems.append(
                Problem(
                    path,
                    rule.line_of.get("id", 1),
                    f"duplicate rule id {rule.id!r} (also in {seen[rule.id]})",
                )
            )
            continue
        seen[rule.id] = path
        rules.append(rule)
    if not rules and not problems:
        problems.append(
            Problem(directory, 0, "no rule files found (expected advice/, pii/, off_channel/)")
        )
    if problems or policy is None:
        raise RulebookError(problems)
    return Rulebook(tuple(rules), aliases, policy, digest.hexdigest()[:12], directory)


def _rule_files(directory: Path) -> Iterator[Path]:
    for category in Category:
        folder = directory / category.value
        if folder.is_dir():
            yield from folder.glob("*.yaml")
            yield from folder.glob("*.yml")


def _load_rule(path: Path, raw: str, problems: list[Problem]) -> Rule | None:
    doc = parse_yaml(path, raw, problems)
    if doc is None:
        return None
    if not isinstance(doc.data, dict):
        problems.append(Problem(path, 1, "a rule file must be a mapping of fields"))
        return None
    data: dict[str, Any] = doc.data
    reader = RuleReader(path, doc, problems)
    # Fields are read in file-format order so problems are listed in that order too.
    for key in data:
        if key not in RULE_KEYS:
            reader.fail(f"unknown field {key!r} (allowed: {', '.join(sorted(RULE_KEYS))})", key)
    rule_id = _read_id(reader, data.get("id"), path)
    severity = _read_severity(reader, data.get("severity"))
    title = reader.text(data.get("title"), "title")
    message_zh, message_en = _read_message(reader, data.get("message"))
    score = reader.number(data.get("score"), 0.7, 0.0, 1.0, "score")

    terms = tuple(t for t in reader.texts(data.get("terms"), "terms") if t)
    patterns = read_patterns(reader, data.get("patterns"), score)
    if not terms and not patterns:
        reader.fail("a rule needs at least one of terms or patterns", "id")

    near = read_near(reader, data.get("near"))
    excludes = read_excludes(reader, data.get("exclude"))
    allow_terms, allow_patterns = read_allow(reader, data.get("allow"))
    validate = _read_validate(reader, data.get("validate"))
    context = read_context(reader, data.get("context"))
    redact = read_redact(reader, data.get("redact"))
    examples = read_examples(reader, data)
    if not reader.ok:
        return None
    line_of = {key: doc.line(key) for key in data}
    return Rule(
        id=rule_id,
        category=Category(path.parent.name),
        severity=severity,
        title=title,
        message_zh=message_zh,
        message_en=message_en,
        score=score,
        terms=terms,
        patterns=patterns,
        near=near,
        excludes=excludes,
        allow_terms=allow_terms,
        allow_patterns=allow_patterns,
        validate=validate,
        context=context,
        redact=redact,
        examples=examples,
        path=path,
        line_of=line_of,
    )


def _read_id(reader: RuleReader, value: Any, path: Path) -> str:
    """The rule id: kebab-case and the file's own name, so a rule is found by its id."""
    rule_id = reader.text(value, "id")
    if rule_id and rule_id != path.stem:
        reader.fail(f"id {rule_id!r} must equal the file name {path.stem!r}", "id")
    if rule_id and not RULE_ID.fullmatch(rule_id):
        reader.fail(f"id {rule_id!r} must be lower-case kebab-case", "id")
    return rule_id


def _read_severity(reader: RuleReader, value: Any) -> Severity:
    """The severity; low when missing (and when wrong, with a problem recorded)."""
    try:
        return Severity.parse(reader.text(value, "severity") or "low")
    except ValueError as error:
        reader.fail(str(error), "severity")
        return Severity.LOW


def _read_message(reader: RuleReader, value: Any) -> tuple[str, str]:
    """The (zh, en) texts shown to the sender."""
    message = reader.mapping(value, "message")
    if not message:
        reader.fail("message must give zh and en texts", "message")
    zh = reader.text(message.get("zh"), "message", "zh")
    en = reader.text(message.get("en"), "message", "en")
    return zh, en


def _read_validate(reader: RuleReader, value: Any) -> str | None:
    """The checksum or shape validator a hit must pass, by name."""
    if value is not None and value not in VALIDATORS:
        reader.fail(
            f"unknown validate {value!r}; known: {', '.join(sorted(VALIDATORS))}", "validate"
        )
        return None
    return None if value is None else str(value)


def _load_aliases(path: Path, problems: list[Problem], digest: Any) -> dict[str, str]:
    if not path.exists():
        return {}
    raw = read_source(path, problems)
    if raw is None:
        return {}
    digest.update(raw.encode())
    doc = parse_yaml(path, raw, problems)
    if doc is None:
        return {}
    if not isinstance(doc.data, dict):
        problems.append(
            Problem(path, 1, "aliases.yaml must map a canonical spelling to a list of aliases")
        )
        return {}
    aliases: dict[str, str] = {}
    for canonical, values in doc.data.items():
        if not isinstance(values, list) or not all(
            isinstance(v, str) and v.strip() for v in values
        ):
            problems.append(
                Problem(path, doc.line(canonical), f"{canonical}: aliases must be a list of text")
            )
            continue
        for alias in values:
            if alias in aliases and aliases[alias] != canonical:
                problems.append(
                    Problem(
                        path,
                        doc.line(canonical),
                        f"alias {alias!r} also maps to {aliases[alias]!r}",
                    )
                )
            aliases[alias] = str(canonical)
    return aliases
