"""Loads a rules directory (rule files, aliases.yaml, policy.yaml) into a checked Rulebook."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import regex

from bot.domain import Action, Category, Severity
from bot.engine.rulebook.fields import (
    read_allow,
    read_context,
    read_examples,
    read_excludes,
    read_near,
    read_patterns,
    read_redact,
)
from bot.engine.rulebook.located import parse_yaml
from bot.engine.rulebook.model import NameRule, Policy, Problem, Rule, Rulebook, RulebookError
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
    policy = _load_policy(directory / "policy.yaml", problems, digest)
    aliases = _load_aliases(directory / "aliases.yaml", problems, digest)
    rules: list[Rule] = []
    seen: dict[str, Path] = {}
    for path in sorted(_rule_files(directory)):
        digest.update(str(path.relative_to(directory)).encode())
        raw = _read(path, problems)
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


def _read(path: Path, problems: list[Problem]) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(path, 0, f"cannot read: {error}"))
        return None


def _load_rule(path: Path, raw: str, problems: list[Problem]) -> Rule | None:
    doc = parse_yaml(path, raw, problems)
    if doc is None:
        return None
    if not isinstance(doc.data, dict):
        problems.append(Problem(path, 1, "a rule file must be a mapping of fields"))
        return None
    data: dict[str, Any] = doc.data
    reader = RuleReader(path, doc, problems)
    for key in data:
        if key not in RULE_KEYS:
            reader.fail(f"unknown field {key!r} (allowed: {', '.join(sorted(RULE_KEYS))})", key)

    rule_id = reader.text(data.get("id"), "id")
    if rule_id and rule_id != path.stem:
        reader.fail(f"id {rule_id!r} must equal the file name {path.stem!r}", "id")
    if rule_id and not RULE_ID.fullmatch(rule_id):
        reader.fail(f"id {rule_id!r} must be lower-case kebab-case", "id")
    category = Category(path.parent.name)
    severity = Severity.LOW
    try:
        severity = Severity.parse(reader.text(data.get("severity"), "severity") or "low")
    except ValueError as error:
        reader.fail(str(error), "severity")
    title = reader.text(data.get("title"), "title")
    message = reader.mapping(data.get("message"), "message")
    if not message:
        reader.fail("message must give zh and en texts", "message")
    message_zh = reader.text(message.get("zh"), "message", "zh")
    message_en = reader.text(message.get("en"), "message", "en")
    score = reader.number(data.get("score"), 0.7, 0.0, 1.0, "score")

    terms = tuple(t for t in reader.texts(data.get("terms"), "terms") if t)
    patterns = read_patterns(reader, data.get("patterns"), score)
    if not terms and not patterns:
        reader.fail("a rule needs at least one of terms or patterns", "id")

    near = read_near(reader, data.get("near"))
    excludes = read_excludes(reader, data.get("exclude"))
    allow_terms, allow_patterns = read_allow(reader, data.get("allow"))

    validate = data.get("validate")
    if validate is not None and validate not in VALIDATORS:
        reader.fail(
            f"unknown validate {validate!r}; known: {', '.join(sorted(VALIDATORS))}", "validate"
        )
        validate = None

    context = read_context(reader, data.get("context"))
    redact = read_redact(reader, data.get("redact"))
    examples = read_examples(reader, data)
    if not reader.ok:
        return None
    line_of = {key: doc.line(key) for key in data}
    return Rule(
        id=rule_id,
        category=category,
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


def _load_aliases(path: Path, problems: list[Problem], digest: Any) -> dict[str, str]:
    if not path.exists():
        return {}
    raw = _read(path, problems)
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


def _load_policy(path: Path, problems: list[Problem], digest: Any) -> Policy | None:
    if not path.exists():
        problems.append(Problem(path, 0, "policy.yaml is missing"))
        return None
    raw = _read(path, problems)
    if raw is None:
        return None
    digest.update(raw.encode())
    doc = parse_yaml(path, raw, problems)
    if doc is None or not isinstance(doc.data, dict):
        if doc is not None:
            problems.append(Problem(path, 1, "policy.yaml must be a mapping"))
        return None
    reader = RuleReader(path, doc, problems)
    data: dict[str, Any] = doc.data
    unknown = set(data) - {"min_score", "actions", "repeat_offenders", "names"}
    if unknown:
        reader.fail(f"unknown policy field(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])
    min_score = reader.number(data.get("min_score"), 0.5, 0.0, 1.0, "min_score")
    actions: dict[tuple[Category, Severity], tuple[Action, ...]] = {}
    for category_name, by_severity in reader.mapping(data.get("actions"), "actions").items():
        try:
            category = Category(category_name)
        except ValueError:
            reader.fail(f"unknown category {category_name!r}", "actions", category_name)
            continue
        for severity_name, names in reader.mapping(by_severity, "actions", category_name).items():
            try:
                severity = Severity.parse(str(severity_name))
                chosen = tuple(
                    Action(str(n))
                    for n in reader.texts(names, "actions", category_name, severity_name)
                )
            except ValueError as error:
                reader.fail(
                    f"{error} (actions are {', '.join(a.value for a in Action)})",
                    "actions",
                    category_name,
                    severity_name,
                )
                continue
            actions[(category, severity)] = tuple(dict.fromkeys((Action.LOG, *chosen)))
    repeat = reader.mapping(data.get("repeat_offenders"), "repeat_offenders")
    threshold = int(
        reader.number(repeat.get("threshold"), 3, 1, 1000, "repeat_offenders", "threshold")
    )
    window = int(
        reader.number(
            repeat.get("window_minutes"), 60, 1, 100000, "repeat_offenders", "window_minutes"
        )
    )
    repeat_action = Action.ESCALATE
    try:
        repeat_action = Action(str(repeat.get("action", "escalate")))
    except ValueError:
        reader.fail("repeat_offenders.action must be an action", "repeat_offenders", "action")
    names = _read_name_rule(reader, reader.mapping(data.get("names"), "names"))
    if not reader.ok:
        return None
    return Policy(min_score, actions, threshold, window * 60, repeat_action, names)


def _read_name_rule(reader: RuleReader, data: dict[str, Any]) -> NameRule:
    unknown = set(data) - {"severity", "min_score", "title", "message"}
    if unknown:
        reader.fail(f"unknown names field(s): {', '.join(sorted(unknown))}", "names")
    default = NameRule()
    severity = default.severity
    try:
        severity = Severity.parse(str(data.get("severity", default.severity.label)))
    except ValueError as error:
        reader.fail(str(error), "names", "severity")
    message = reader.mapping(data.get("message"), "names", "message")
    return NameRule(
        severity=severity,
        min_score=reader.number(
            data.get("min_score"), default.min_score, 0.0, 1.0, "names", "min_score"
        ),
        title=reader.text(data.get("title"), "names", "title", required=False) or default.title,
        message_zh=reader.text(message.get("zh"), "names", "message", "zh", required=False)
        or default.message_zh,
        message_en=reader.text(message.get("en"), "names", "message", "en", required=False)
        or default.message_en,
    )
