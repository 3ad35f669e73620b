"""Features: units for Chinese and English alike, digits as one shape, windows to the very end."""

from __future__ import annotations

from bot.engine.intent import features
from bot.engine.intent.features import WINDOW_UNITS, extract


def feature_names(text: str) -> set[int]:
    return set(extract(text).windows[0].indices)


def test_chinese_characters_and_english_words_are_units() -> None:
    units = [u.text for u in features._units("呢隻實升 go go 🚀")]
    assert units == ["呢", "隻", "實", "升", "go", "go", "🚀"]


def test_digits_are_one_shape_so_no_number_is_learnt_by_heart() -> None:
    assert feature_names("call 9123 4567") == feature_names("call 2888 1234")
    assert feature_names("target 80") == feature_names("target 450")


def test_hashing_is_stable_across_calls_and_processes() -> None:
    # crc32, not Python's salted hash(): a model trained in one process works in another.
    assert features._hash("1:double") == features._hash("1:double") == 206298  # a fixed value
    assert 0 <= features._hash("2:any thing") < features.HASH_SIZE


def test_every_feature_remembers_where_it_came_from() -> None:
    text = "load the boat"
    window = extract(text).windows[0]
    spans = {text[s:e] for s, e in window.spans if e > s}
    assert {"load", "the", "boat", "load the", "the boat", "load the boat"} <= spans


def test_empty_and_emoji_only_messages_have_one_window() -> None:
    for text in ("", "   ", "😀🚀📈"):
        extraction = extract(text)
        assert len(extraction.windows) == 1
        assert not extraction.truncated


def test_a_long_message_is_windowed_and_the_last_window_reaches_its_end() -> None:
    filler = " ".join(["lunch"] * 5_000)
    text = f"{filler} ping me on my other number"
    extraction = extract(text)
    assert len(extraction.windows) > 1
    last = extraction.windows[-1]
    assert max(e for _, e in last.spans) == len(text)  # the cue at the end is modelled
    assert all(len(w.indices) <= 6 * WINDOW_UNITS for w in extraction.windows)


def test_windows_stop_at_the_limit_and_say_so() -> None:
    text = "x " * (WINDOW_UNITS + features.WINDOW_STRIDE * (features.MAX_WINDOWS + 5))
    extraction = extract(text)
    assert len(extraction.windows) == features.MAX_WINDOWS
    assert extraction.truncated
