"""Rule files that are wrong are reported with file and line, never half-loaded."""

import shutil
from pathlib import Path

import pytest

from bot.engine.rulebook.loader import load_rulebook
from bot.engine.rulebook.model import RulebookError
from tests.engine.conftest import line_of


def problems_of(rules: Path) -> list[str]:
    with pytest.raises(RulebookError) as caught:
        load_rulebook(rules)
    return [str(p) for p in caught.value.problems]


def test_bad_regex_names_file_and_line(rules: Path) -> None:
    path = rules / "pii" / "hkid.yaml"
    path.write_text(
        path.read_text().replace(r"regex: '(?<![a-z\d])", "regex: '(?<![a-z\\d]"), encoding="utf-8"
    )
    found = problems_of(rules)
    assert found[0].startswith(f"{path}:{line_of(path, 'regex:')}: regex does not compile"), found


def test_invalid_yaml_names_the_line(rules: Path) -> None:
    path = rules / "advice" / "buy-recommendation.yaml"
    path.write_text("id: buy-recommendation\nterms: [a, b\nseverity: low\n", encoding="utf-8")
    (problem,) = problems_of(rules)
    assert problem.startswith(f"{path}:")
    assert "not valid YAML" in problem


def test_unknown_field_is_a_typo_not_ignored(rules: Path) -> None:
    path = rules / "pii" / "hk-phone.yaml"
    path.write_text(
        path.read_text().replace("validate: hk_phone", "validdate: hk_phone"), encoding="utf-8"
    )
    (problem,) = problems_of(rules)
    assert problem.startswith(f"{path}:{line_of(path, 'validdate')}: unknown field 'validdate'")


def test_id_must_equal_file_name_and_be_unique(rules: Path) -> None:
    shutil.copy(rules / "pii" / "hkid.yaml", rules / "advice" / "hkid.yaml")
    (rules / "pii" / "hk-phone.yaml").rename(rules / "pii" / "phone.yaml")
    found = problems_of(rules)
    assert any("duplicate rule id 'hkid'" in p for p in found)
    assert any("id 'hk-phone' must equal the file name 'phone'" in p for p in found)


def test_missing_examples_and_unknown_validator(rules: Path) -> None:
    path = rules / "pii" / "hkid.yaml"
    text = path.read_text().replace("validate: hkid", "validate: hkidd")
    path.write_text(text.split("examples:")[0], encoding="utf-8")
    found = problems_of(rules)
    assert any("unknown validate 'hkidd'" in p for p in found)
    assert any("examples.match needs at least one example" in p for p in found)


def test_policy_with_unknown_action_is_rejected(rules: Path) -> None:
    path = rules / "policy.yaml"
    path.write_text(
        path.read_text().replace("high: [warn, escalate]", "high: [warn, shout]", 1),
        encoding="utf-8",
    )
    (problem,) = problems_of(rules)
    assert "'shout' is not a valid Action" in problem
    assert problem.startswith(f"{path}:")


def test_version_changes_with_content(rules: Path) -> None:
    before = load_rulebook(rules).version
    path = rules / "advice" / "guaranteed-return.yaml"
    path.write_text(path.read_text().replace("穩賺, ", "穩賺, 包賺, "), encoding="utf-8")
    assert load_rulebook(rules).version != before
