"""Loads rules/ (rule files, aliases, policy) into checked objects; errors name file and line."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
import yaml

from bot.domain import Action, Category, Severity
from bot.engine.normalize import fold_char, is_cjk
from bot.engine.validators import VALIDATORS

RULE_ID = regex.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
EXCLUDE_WHERE = frozenset({"before", "after", "around", "covering", "message"})
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
REGEX_FLAGS = regex.V0 | regex.IGNORECASE


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a rule file, located for the rule author."""

    path: Path
    line: int  # 1-based; 0 when the whole file is at fault
    message: str

    def __str__(self) -> str:
        """Render as ``file:line: message`` (the form editors and CI logs link to)."""
        return (
            f"{self.path}:{self.line}: {self.message}"
            if self.line
            else f"{self.path}: {self.message}"
        )


class RulebookError(Exception):
    """The rule set cannot be used; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        """Keep the problems; the message lists them one per line."""
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """A named regular expression of a rule, compiled."""

    name: str
    source: str
    compiled: regex.Pattern[str]
    score: float
    line: int


@dataclass(frozen=True, slots=True)
class ExcludeSpec:
    """A reason to drop a hit: a pattern or literal terms found before/after/around/covering it."""

    where: str
    window: int
    compiled: regex.Pattern[str] | None
    terms: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class NearSpec:
    """Proximity requirement: one of these within ``within`` tokens of the hit."""

    within: int
    terms: tuple[str, ...]
    patterns: tuple[regex.Pattern[str], ...]


@dataclass(frozen=True, slots=True)
class ContextSpec:
    """Words near a hit that raise or lower its score."""

    window: int
    raise_terms: tuple[str, ...]
    lower_terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RedactSpec:
    """How much of a matched span stays visible in redacted copies."""

    keep_start: int
    keep_end: int


@dataclass(frozen=True, slots=True)
class Example:
    """A rule's own example, checked by ``rules check`` and the test suite."""

    text: str
    expect_match: bool
    line: int
    todo: bool = False  # a known gap: expected to fail until the rule improves


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule file, validated and compiled."""

    id: str
    category: Category
    severity: Severity
    title: str
    message_zh: str
    message_en: str
    score: float
    terms: tuple[str, ...]
    patterns: tuple[PatternSpec, ...]
    near: NearSpec | None
    excludes: tuple[ExcludeSpec, ...]
    allow_terms: tuple[str, ...]
    allow_patterns: tuple[regex.Pattern[str], ...]
    validate: str | None
    context: ContextSpec | None
    redact: RedactSpec | None
    examples: tuple[Example, ...]
    path: Path
    line_of: dict[str, int] = field(default_factory=dict, compare=False)


NAME_RULE_ID = "client-name"


@dataclass(frozen=True, slots=True)
class NameRule:
    """The client-name pseudo-rule: a person's name in a message that also carries personal data.

    It has no rule file (names come from name detection, not patterns); ``policy.yaml``
    ``names:`` sets its severity, threshold and wording, with these defaults.
    """

    severity: Severity = Severity.MEDIUM
    min_score: float = 0.6
    title: str = "Client name next to personal data"
    message_zh: str = "請勿在群內把客戶姓名與其個人資料一併發送。"
    message_en: str = "Do not post a client's name together with their personal data."
    keep: tuple[int, int] = (1, 0)  # the first character stays visible: 陳**, C**** ****
    id: str = NAME_RULE_ID


@dataclass(frozen=True, slots=True)
class Policy:
    """What to do about findings: threshold, actions per category x severity, repeat offenders."""

    min_score: float
    actions: dict[tuple[Category, Severity], tuple[Action, ...]]
    repeat_threshold: int
    repeat_window_seconds: int
    repeat_action: Action
    names: NameRule = field(default_factory=NameRule)

    def actions_for(self, category: Category, severity: Severity) -> tuple[Action, ...]:
        """Actions for one finding; ``log`` is implied for everything."""
        return self.actions.get((category, severity), (Action.LOG,))


@dataclass(frozen=True, slots=True)
class Rulebook:
    """Everything loaded from a rules directory, with a content hash as its version."""

    rules: tuple[Rule, ...]
    aliases: dict[str, str]
    policy: Policy
    version: str
    directory: Path


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


class _Located:
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


def _parse_yaml(path: Path, raw: str, problems: list[Problem]) -> _Located | None:
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
    return _Located(node)


class _RuleReader:
    """Reads one rule file's fields, recording problems instead of stopping at the first."""

    def __init__(self, path: Path, doc: _Located, problems: list[Problem]) -> None:
        self.path = path
        self.doc = doc
        self.problems = problems
        self.ok = True

    def fail(self, message: str, *path: str | int) -> None:
        self.problems.append(Problem(self.path, self.doc.line(*path), message))
        self.ok = False

    def text(self, value: Any, *path: str | int, required: bool = True) -> str:
        if value is None and not required:
            return ""
        if (
            not isinstance(value, str | int | float)
            or isinstance(value, bool)
            or not str(value).strip()
        ):
            self.fail(f"{'.'.join(map(str, path))} must be non-empty text", *path)
            return ""
        return str(value)

    def texts(self, value: Any, *path: str | int) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(f"{'.'.join(map(str, path))} must be a list", *path)
            return ()
        return tuple(self.text(v, *path, i) for i, v in enumerate(value))

    def number(
        self, value: Any, default: float, low: float, high: float, *path: str | int
    ) -> float:
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            self.fail(f"{'.'.join(map(str, path))} must be a number from {low} to {high}", *path)
            return default
        return float(value)

    def compile(self, source: str, *path: str | int) -> regex.Pattern[str] | None:
        try:
            return regex.compile(fold_pattern_script(latin_word_boundaries(source)), REGEX_FLAGS)
        except (regex.error, ValueError, OverflowError) as error:
            self.fail(f"regex does not compile: {error}", *path)
            return None

    def mapping(self, value: Any, *path: str | int) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(f"{'.'.join(map(str, path))} must be a mapping", *path)
            return {}
        return value


def _load_rule(path: Path, raw: str, problems: list[Problem]) -> Rule | None:
    doc = _parse_yaml(path, raw, problems)
    if doc is None:
        return None
    if not isinstance(doc.data, dict):
        problems.append(Problem(path, 1, "a rule file must be a mapping of fields"))
        return None
    data: dict[str, Any] = doc.data
    reader = _RuleReader(path, doc, problems)
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
    patterns = _read_patterns(reader, data.get("patterns"), score)
    if not terms and not patterns:
        reader.fail("a rule needs at least one of terms or patterns", "id")

    near = _read_near(reader, data.get("near"))
    excludes = _read_excludes(reader, data.get("exclude"))
    allow_terms, allow_patterns = _read_allow(reader, data.get("allow"))

    validate = data.get("validate")
    if validate is not None and validate not in VALIDATORS:
        reader.fail(
            f"unknown validate {validate!r}; known: {', '.join(sorted(VALIDATORS))}", "validate"
        )
        validate = None

    context = _read_context(reader, data.get("context"))
    redact = _read_redact(reader, data.get("redact"))
    examples = _read_examples(reader, data)
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


def _read_patterns(
    reader: _RuleReader, value: Any, default_score: float
) -> tuple[PatternSpec, ...]:
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


def _read_near(reader: _RuleReader, value: Any) -> NearSpec | None:
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


def _read_excludes(reader: _RuleReader, value: Any) -> tuple[ExcludeSpec, ...]:
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


def _read_allow(
    reader: _RuleReader, value: Any
) -> tuple[tuple[str, ...], tuple[regex.Pattern[str], ...]]:
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


def _read_context(reader: _RuleReader, value: Any) -> ContextSpec | None:
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


def _read_redact(reader: _RuleReader, value: Any) -> RedactSpec | None:
    if value is None or value is False:
        return None
    if value is True or value == "mask":
        return RedactSpec(0, 0)
    data = reader.mapping(value, "redact")
    keep_start = int(reader.number(data.get("keep_start"), 0, 0, 20, "redact", "keep_start"))
    keep_end = int(reader.number(data.get("keep_end"), 0, 0, 20, "redact", "keep_end"))
    return RedactSpec(keep_start, keep_end)


def _read_examples(reader: _RuleReader, data: dict[str, Any]) -> tuple[Example, ...]:
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


def _load_aliases(path: Path, problems: list[Problem], digest: Any) -> dict[str, str]:
    if not path.exists():
        return {}
    raw = _read(path, problems)
    if raw is None:
        return {}
    digest.update(raw.encode())
    doc = _parse_yaml(path, raw, problems)
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
    doc = _parse_yaml(path, raw, problems)
    if doc is None or not isinstance(doc.data, dict):
        if doc is not None:
            problems.append(Problem(path, 1, "policy.yaml must be a mapping"))
        return None
    reader = _RuleReader(path, doc, problems)
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


def _read_name_rule(reader: _RuleReader, data: dict[str, Any]) -> NameRule:
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
