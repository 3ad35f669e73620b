import pytest

from bot.engine.normalize import AliasTable, NormalizedText
from bot.engine.screener import Screener


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＷｈａｔｓＡｐｐ １２３", "whatsapp 123"),  # full-width letters and digits
        ("what\u200bs\u200dapp", "whatsapp"),  # zero-width characters
        ("穩賺  不賠", "稳赚 不赔"),  # Traditional folded to Simplified, spaces collapsed
        ("身份証", "身份证"),  # variant character
        ("  hi\tthere\n", "hi there"),
        ("a\x00b\x07c", "abc"),  # control characters dropped
        ("", ""),
        ("😀😀", "😀😀"),
    ],
)
def test_normalised_view(raw: str, expected: str) -> None:
    assert NormalizedText.build(raw).text == expected


def test_offsets_map_back_to_original_text() -> None:
    raw = "加我 ＷｈａｔｓＡｐｐ\u200b！"
    norm = NormalizedText.build(raw)
    start = norm.text.index("whatsapp")
    original = norm.to_original(start, start + len("whatsapp"))
    assert raw[original[0] : original[1]] == "ＷｈａｔｓＡｐｐ"


def test_alias_folded_as_whole_word_only() -> None:
    aliases = AliasTable({"vx": "微信", "v信": "微信"})
    assert NormalizedText.build("加我VX啦", aliases).text == "加我微信啦"
    assert NormalizedText.build("加我V信啦", aliases).text == "加我微信啦"
    assert NormalizedText.build("vxx is a ticker", aliases).text == "vxx is a ticker"


def test_alias_span_maps_to_the_alias_in_the_original() -> None:
    raw = "pls add my VX now"
    norm = NormalizedText.build(raw, AliasTable({"vx": "微信"}))
    start = norm.text.index("微信")
    s, e = norm.to_original(start, start + 2)
    assert raw[s:e] == "VX"


def test_compact_view_drops_separators_and_reads_stand_ins() -> None:
    assert NormalizedText.build("W h a t s A p p").compact == "whatsapp"
    assert NormalizedText.build("wh@ts app").compact == "whatsapp"


@pytest.mark.parametrize(
    "text",
    [
        "we have a lot in common ❤️ may I have your WhatsApp?",  # U+FE0F after the heart
        "\u034b+852 9123 4567 \ufeff>C梘微信",  # a combining mark first
        "Jose\u0301 said let's move this to WhatsApp",  # é typed as two code points
    ],
)
def test_compact_view_maps_back_when_marks_are_in_the_text(
    fixture_screener: Screener, text: str
) -> None:
    norm = NormalizedText.build(text)
    positions = norm._compact_positions()
    assert len(positions) == len(norm.compact)
    assert all(
        norm.text.translate({64: "a", 36: "s"})[p] == c
        for p, c in zip(positions, norm.compact, strict=True)
    )
    fixture_screener.screen(text)  # used to raise IndexError in the compact view
