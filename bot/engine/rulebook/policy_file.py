"""Loads policy.yaml: threshold, actions per category and severity, repeat offenders, the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.domain import Action, Category, Severity
from bot.engine.rulebook.located import parse_yaml, read_source
from bot.engine.rulebook.model import IntentPolicy, IntentRule, NameRule, Policy, Problem
from bot.engine.rulebook.reader import RuleReader


def load_policy(path: Path, problems: list[Problem], digest: Any) -> Policy | None:
    """Read ``policy.yaml`` into ``digest`` and check it; None (problems recorded) if unusable."""
    if not path.exists():
        problems.append(Problem(path, 0, "policy.yaml is missing"))
        return None
    raw = read_source(path, problems)
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
    unknown = set(data) - {"min_score", "actions", "repeat_offenders", "names", "intent"}
    if unknown:
        reader.fail(f"unknown policy field(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])
    min_score = reader.number(data.get("min_score"), 0.5, 0.0, 1.0, "min_score")
    actions = _read_actions(reader, reader.mapping(data.get("actions"), "actions"))
    threshold, window, repeat_action = _read_repeat_offenders(
        reader, reader.mapping(data.get("repeat_offenders"), "repeat_offenders")
    )
    names = _read_name_rule(reader, reader.mapping(data.get("names"), "names"))
    intent = _read_intent(reader, reader.mapping(data.get("intent"), "intent"))
    if not reader.ok:
        return None
    return Policy(min_score, actions, threshold, window * 60, repeat_action, names, intent)


def _read_intent(reader: RuleReader, data: dict[str, Any]) -> IntentPolicy:
    """``intent:`` the model's name; per category ``flag_at``, ``veto_when_reported``, wording."""
    model = reader.text(data.get("model"), "intent", "model", required=False)
    rules: dict[Category, IntentRule] = {}
    for key, value in data.items():
        if key == "model":
            continue
        try:
            category = Category(key)
        except ValueError:
            reader.fail(f"unknown intent field {key!r} (model, or a category)", "intent", key)
            continue
        rules[category] = _read_intent_rule(reader, category, reader.mapping(value, "intent", key))
    return IntentPolicy(model.strip(), rules)


def _read_intent_rule(reader: RuleReader, category: Category, data: dict[str, Any]) -> IntentRule:
    path = ("intent", category.value)
    unknown = set(data) - {"flag_at", "veto_when_reported", "severity", "title", "message"}
    if unknown:
        reader.fail(f"unknown intent field(s): {', '.join(sorted(unknown))}", *path)
    severity = Severity.MEDIUM
    try:
        severity = Severity.parse(str(data.get("severity", "medium")))
    except ValueError as error:
        reader.fail(str(error), *path, "severity")

    def threshold(name: str) -> float | None:
        if data.get(name) is None:
            return None
        return reader.number(data.get(name), 0.5, 0.0, 1.0, *path, name)

    message = reader.mapping(data.get("message"), *path, "message")
    flag_at = threshold("flag_at")
    title = reader.text(data.get("title"), *path, "title", required=flag_at is not None)
    return IntentRule(
        category=category,
        flag_at=flag_at,
        veto_when_reported=threshold("veto_when_reported"),
        severity=severity,
        title=title,
        message_zh=reader.text(message.get("zh"), *path, "message", "zh", required=False),
        message_en=reader.text(message.get("en"), *path, "message", "en", required=False),
    )


def _read_actions(
    reader: RuleReader, data: dict[str, Any]
) -> dict[tuple[Category, Severity], tuple[Action, ...]]:
    """``actions:`` category -> severity -> actions; ``log`` is always among them."""
    actions: dict[tuple[Category, Severity], tuple[Action, ...]] = {}
    for category_name, by_severity in data.items():
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
    return actions


def _read_repeat_offenders(reader: RuleReader, repeat: dict[str, Any]) -> tuple[int, int, Action]:
    """``repeat_offenders:`` (threshold, window in minutes, action)."""
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
    return threshold, window, repeat_action


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
