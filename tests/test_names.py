"""Person names: spaCy for English, lexicons for Chinese and romanised Cantonese."""

from __future__ import annotations

import pytest

import bot.names
from bot.names import NameFinder
from bot.screening import Screener


@pytest.fixture(scope="module")
def finder() -> NameFinder:
    return NameFinder.load()


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("陳大文 HKID A123456(3)", "陳大文"),
        ("陳生電話 9123 4567", "陳生"),
        ("黃小姐 想改地址", "黃小姐"),
        ("李太個身份證喺我度", "李太"),
        ("歐陽小姐嘅戶口", "歐陽小姐"),
        ("司徒先生今日嚟開戶", "司徒先生"),
        ("客户张伟身份证", "张伟"),
        ("王小明电话13812345678", "王小明"),
        ("Chan Tai Man HKID A123456(3)", "Chan Tai Man"),
        ("Wong Siu Ming, mobile 9123 4567", "Wong Siu Ming"),
        ("Mr Wong called about the account", "Mr Wong"),
        ("Peter Chan HKID A123456(3)", "Peter Chan"),
        ("Client John Smith wants a call back", "John Smith"),
    ],
)
def test_finds_the_name_with_offsets_in_the_original(
    finder: NameFinder, text: str, name: str
) -> None:
    found = [text[s.start : s.end] for s in finder.find(text)]
    assert name in found


@pytest.mark.parametrize(
    "text",
    [
        "黃金價格上升",
        "陳述如下",
        "周末愉快",
        "马上买入",
        "李宁股价大跌",
        "高兴见到你",
        "Tencent up 3% today",
        "HSBC buyback continues",
        "0700.HK closed at 385",
        "Hang Seng index down",
        "Signal me later",
        "See you in March",
    ],
)
def test_ordinary_words_are_not_names(finder: NameFinder, text: str) -> None:
    assert finder.find(text) == []


def test_spacy_span_stops_at_the_name(finder: NameFinder) -> None:
    # spaCy alone reads "Peter Chan HKID A123456(3" as one PERSON entity.
    text = "Please call Mary Lee HKID A123456(3)"
    assert [text[s.start : s.end] for s in finder.find(text)] == ["Mary Lee"]


def test_find_many_equals_find(finder: NameFinder) -> None:
    texts = ["Client John Smith 9123 4567", "陳大文 HKID", "nothing here", "Mr Lau and Ms Cheung"]
    assert finder.find_many(texts) == [finder.find(t) for t in texts]


def test_works_without_the_spacy_model_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.names, "MODEL_NAME", "no_such_model_installed")
    finder = NameFinder.load()
    assert not finder.spacy_available
    assert "not installed" in finder.status
    assert [s.why for s in finder.find("John Smith called")] == []  # spaCy-only name: not found
    assert finder.find("陳大文 HKID")[0].start == 0  # lexicons still work


def test_a_name_alone_is_not_flagged_but_a_name_with_an_identifier_is(
    shipped_screener: Screener, finder: NameFinder
) -> None:
    screener = Screener(shipped_screener.rulebook, finder, shipped_screener.lexicon)
    assert screener.screen("陳大文 joined the call").findings == ()
    verdict = screener.screen("陳大文 HKID CA182361(1)")
    assert {f.rule_id for f in verdict.findings} == {"client-name", "hkid"}
    assert verdict.redacted == "陳** HKID CA18****(*)"
