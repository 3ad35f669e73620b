"""The name word lists under models/names/ and the jieba build they are read with."""

import rjieba

from bot.engine.names.lexicon import DATA_DIR, NameLexicon, _entries, fold_cjk


def test_every_traditional_surname_has_its_simplified_form_listed() -> None:
    listed = set(_entries(DATA_DIR / "surnames_zh.txt"))
    assert sorted(w for w in listed if fold_cjk(w) not in listed) == []
    assert 150 <= len({fold_cjk(w) for w in listed}) <= 220


def test_word_lists_are_consistent() -> None:
    lexicon = NameLexicon.load()
    assert lexicon.everyday_surnames_zh <= lexicon.surnames_zh
    # A not-a-name word that does not start with a surname can never matter.
    assert [
        w
        for w in lexicon.not_names_zh
        if w[:2] not in lexicon.surnames_zh and w[0] not in lexicon.surnames_zh
    ] == []
    assert "tai" not in lexicon.surnames_latin  # Tai Po, Tai Koo: see surnames_romanised.txt


def test_jieba_is_the_offline_rust_build() -> None:
    assert rjieba.tag("陈大文") == [("陈大文", "nr")]
