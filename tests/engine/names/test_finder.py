"""NameFinder: spaCy for English, lexicons for Chinese and romanised Cantonese."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import bot.engine.names
from bot.engine.names import NameFinder
from bot.engine.screener import Screener
from bot.policy import decide

NAME_THRESHOLD = 0.6  # rules/policy.yaml names.min_score: what the screener flags


@pytest.fixture(scope="module")
def finder() -> NameFinder:
    found = NameFinder.load()
    # The spaCy tests use the pinned model itself; it is a dependency, so no skipping.
    assert found.spacy_available, found.status
    return found


@pytest.fixture(scope="module")
def lexicon_only() -> NameFinder:
    return NameFinder.load(use_spacy=False)


def names(finder: NameFinder, text: str, minimum: float = NAME_THRESHOLD) -> list[str]:
    return [text[s.start : s.end] for s in finder.find(text) if s.score >= minimum]


# -- positives ---------------------------------------------------------------------------------
CHINESE_POSITIVES = [
    ("陳大文 HKID A123456(3)", "陳大文"),
    ("陳大文嘅電話係 9123 4567", "陳大文"),
    ("陳生電話 9123 4567", "陳生"),
    ("黃小姐 想改地址，電話 6345 1234", "黃小姐"),
    ("李太個身份證喺我度", "李太"),
    ("歐陽小姐嘅戶口", "歐陽小姐"),
    ("司徒先生今日嚟開戶", "司徒先生"),
    ("司徒玉蓮 電話 9123 4567", "司徒玉蓮"),
    ("客戶梁家豪 HKID Y123456(7)", "梁家豪"),
    ("請陳志明先生回電 9123 4567", "陳志明先生"),
    ("陳Sir話佢電話係 9123 4567", "陳Sir"),
    ("阿陳個電話係 9123 4567", "阿陳"),
    ("林生同王生都係我哋客", "林生"),
    ("林生同王生都係我哋客", "王生"),
    ("李寧先生嘅戶口", "李寧先生"),  # the company is a stop word, a title makes it a man
    ("客户王芳 香港身份证 M149829(6)", "王芳"),  # jieba glues 客户王 into one token
    # Simplified
    ("客户张伟身份证", "张伟"),
    ("王小明电话13812345678", "王小明"),
    ("陈伟强的身份证号 110105194912310021", "陈伟强"),
    ("张经理的手机号是13912345678", "张经理"),
    ("刘小姐手机号13612345678", "刘小姐"),
    ("欧阳小姐的账户", "欧阳小姐"),
    ("马先生的银行卡号 6222020200112233445", "马先生"),
]

LATIN_POSITIVES = [
    ("Chan Tai Man HKID A123456(3)", "Chan Tai Man"),
    ("Wong Siu Ming, mobile 9123 4567", "Wong Siu Ming"),
    ("Mr Wong called about the account", "Mr Wong"),
    ("Peter Chan HKID A123456(3)", "Peter Chan"),
    ("CHAN TAI MAN A123456(3)", "CHAN TAI MAN"),
    ("Name: CHAN, Tai Man, HKID A123456(3)", "CHAN, Tai Man"),
    ("Chan Tai-man phone 91234567", "Chan Tai-man"),
    ("Tai Man Chan 9123 4567", "Tai Man Chan"),
    ("Ms Chan Siu Ming account 012-345678-001", "Ms Chan Siu Ming"),
    ("Mrs Lam, HKID CA182361(1), mobile 9123 7654", "Mrs Lam"),
    ("Lau Ka Yan email kayan@example.com", "Lau Ka Yan"),
    ("Ng Chi Keung a/c 123-456789-001", "Ng Chi Keung"),
    ("Mr. John Smith, passport K12345678", "Mr. John Smith"),
    ("pls update chan tai man phone 9123 4567", "chan tai man"),
    ("Michael Wong Ka Ho HKID A123456(3)", "Michael Wong Ka Ho"),
    ("Beneficiary IBAN DE46688146046639554425, name Klaus Meyer", "Klaus Meyer"),
    ("阿 May 個電話 5711 5990", "阿 May"),
    ("Transfer Mrs Ng's 2m from a/c 310-806945-894", "Mrs Ng"),
    ("Ms Fok HKID Z200070(A)", "Ms Fok"),
    ("Ｍｒ　Ｗｏｎｇ 電話 9123 4567", "Ｍｒ　Ｗｏｎｇ"),  # full-width, typed with a Chinese IME
]

SPACY_POSITIVES = [
    ("Client John Smith wants a call back", "John Smith"),
    ("Sarah Johnson phone +1 415 555 0100", "Sarah Johnson"),
    ("Ask Cindy to call 9123 4567", "Cindy"),
]


@pytest.mark.parametrize(("text", "name"), CHINESE_POSITIVES + LATIN_POSITIVES + SPACY_POSITIVES)
def test_finds_the_name_with_offsets_in_the_original(
    finder: NameFinder, text: str, name: str
) -> None:
    assert name in names(finder, text)


@pytest.mark.parametrize(("text", "name"), CHINESE_POSITIVES + LATIN_POSITIVES)
def test_lexicons_find_the_name_when_spacy_is_off(
    lexicon_only: NameFinder, text: str, name: str
) -> None:
    assert name in names(lexicon_only, text)


@pytest.mark.parametrize(
    ("text", "name", "score", "why"),
    [
        ("陳生電話 9123 4567", "陳生", 0.85, "surname 陳 + honorific 生"),
        ("黃小姐", "黃小姐", 0.85, "surname 黃 + honorific 小姐"),
        ("陳大文 HKID A123456(3)", "陳大文", 0.7, "cue 'HKID' nearby"),
        ("陳大文 joined the onboarding call", "陳大文", 0.5, "jieba reads a name"),
        ("李大明嚟咗", "李大明", 0.4, "surname lexicon"),
        ("Chan Tai Man", "Chan Tai Man", 0.75, "romanised surname Chan + 2 syllables"),
        ("Chan Ming", "Chan Ming", 0.45, "romanised surname Chan + 1 syllable"),
        ("Chan Ming 9123 4567", "Chan Ming", 0.7, "cue '9123 4567' nearby"),
        ("Mr Smith", "Mr Smith", 0.8, "title Mr + capitalised Smith"),
    ],
)
def test_scores_follow_the_evidence(
    lexicon_only: NameFinder, text: str, name: str, score: float, why: str
) -> None:
    [span] = lexicon_only.find(text)
    assert (text[span.start : span.end], span.score) == (name, score)
    assert why in span.why


def test_spacy_and_a_lexicon_agreeing_raise_the_score(finder: NameFinder) -> None:
    [span] = finder.find("Peter Chan HKID A123456(3)")
    assert span.score == 0.85
    assert span.why == "English given name Peter + romanised surname Chan; also spaCy PERSON"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # spaCy alone reads "Mary Lee HKID A123456(3" as one PERSON entity ...
        ("Please call Mary Lee HKID A123456(3)", "Mary Lee"),
        # ... and "Call Mrs Yuen" as another.
        ("Call Mrs Yuen and tell her 1211 is going up", "Mrs Yuen"),
    ],
)
def test_spacy_span_is_trimmed_to_the_name(finder: NameFinder, text: str, name: str) -> None:
    assert names(finder, text) == [name]


def test_offsets_index_the_original_text_whatever_comes_before(finder: NameFinder) -> None:
    text = "👋🏻 ＦＹＩ：客戶陳大文（身份證 A123456(3)）同 Mr Wong 傾過"
    found = finder.find(text)
    assert [text[s.start : s.end] for s in found] == ["陳大文", "Mr Wong"]
    assert [(s.start, s.end) for s in found] == [
        (text.index("陳"), text.index("陳") + 3),
        (
            text.index("Mr"),
            text.index("Mr") + 7,
        ),
    ]


# -- negatives -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        # words that begin with a surname character
        "黃金價格上升",
        "金價創新高，客戶想買入",
        "陳述如下",
        "周末愉快",
        "周一開會，每周三次檢討倉位",
        "马上买入",
        "高兴见到你",
        "高風險產品要做適合性評估",
        "萬一跌穿支持位點算",
        "一張支票已經寄出",
        "何解今日咁慢？",
        "如何生存",
        "請於本週內更新風險問卷",
        "余額不足，請入錢",
        "區域經理下午到",
        "等兩個鐘先有結果",
        "顧客服務熱線 2888 8888",
        "朱古力好好食",
        "施工期間暫停服務",
        "王牌產品賣晒",
        "林業股今日升",
        # 李寧 is the listed sportswear company (2331.HK), not a person, in a market chat
        "李宁股价大跌",
        "李寧今日升咗 5%",
        # English, tickers, companies, places, months
        "Tencent up 3% today",
        "HSBC buyback continues",
        "0700.HK closed at 385",
        "Hang Seng index down 200 points",
        "Signal me later",
        "See you in March",
        "Meeting moved to May 5",
        "Li Ning shares fell 8%",
        "Sun Hung Kai Properties results tomorrow",
        "Chow Tai Fook jewellery sales up 5%",
        "Kerry Properties guidance",
        "Ping An Insurance H shares",
        "Office moved to Wong Tai Sin",
        "Meet at Ho Man Tin station exit A",
        "Cheung Sha Wan Road branch",
        "Hong Kong Exchanges and Clearing",
        "Kung Hei Fat Choi everyone",
        "Tai Chi class cancelled",
        "Email compliance for the IM policy",
        "Xiaomi results beat",
        "Man United lost again",
        "Closing auction imbalance on 0388",
        "HSI futures Jun contract at 19,452",
        "Donation to Tung Wah hospital",
        "Tin Ka Ping school open day",
        "Queen Mary hospital visit",
        "Let's move this to Line, my Taiwan clients all use it",
        "Beneficiary IBAN DE46688146046639554425",
    ],
)
def test_ordinary_words_are_not_names(finder: NameFinder, text: str) -> None:
    assert finder.find(text) == []


# -- modes, batching, concurrency --------------------------------------------------------------
def test_spacy_runs_ner_only(finder: NameFinder) -> None:
    assert finder._nlp is not None
    assert finder._nlp.pipe_names == ["ner"]
    assert finder.status == (
        "spaCy en_core_web_sm 3.8.0 (NER only) + Chinese surname lexicon + "
        "romanised Cantonese lexicon"
    )


@pytest.mark.parametrize(
    ("text", "runs"),
    [
        ("陳大文 HKID A123456(3)", False),  # CJK and an acronym
        ("9123 4567", False),
        ("pls call me back", False),
        ("Tencent up 3% today", False),  # listed company, first word
        ("Closing auction imbalance on 0388", False),  # capitalised only as the first word
        ("Peter called", True),  # a listed given name, even first
        ("please ask Klaus to call", True),
        ("CHAN TAI MAN A123456(3)", True),  # a surname in capitals
    ],
)
def test_spacy_runs_only_where_it_could_find_a_name(
    finder: NameFinder, text: str, runs: bool
) -> None:
    assert finder.worth_spacy(text) is runs


def test_lexicon_only_mode_says_english_names_are_not_detected(lexicon_only: NameFinder) -> None:
    assert not lexicon_only.spacy_available
    assert "English names not detected" in lexicon_only.status
    assert lexicon_only.find("Client John Smith called") == []  # spaCy-only name
    assert names(lexicon_only, "陳大文 HKID A123456(3)") == ["陳大文"]


def test_missing_model_is_a_warning_not_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bot.engine.names, "MODEL_NAME", "no_such_model_installed")
    monkeypatch.setattr(bot.engine.names, "_warned", threading.Lock())
    with caplog.at_level(logging.WARNING, logger="bot.engine.names"):
        first = NameFinder.load()
        second = NameFinder.load()
    assert not first.spacy_available
    assert not second.spacy_available
    assert first.status.startswith("spaCy model not installed")
    assert "English names not detected" in first.status
    assert len([r for r in caplog.records if "no_such_model_installed" in r.message]) == 1
    assert names(first, "陳大文 HKID A123456(3)") == ["陳大文"]


def test_find_many_equals_find(finder: NameFinder) -> None:
    long_text = "Trade log. " * 400 + "Client John Smith phone 9123 4567"  # > one spaCy chunk
    texts = [
        "Client John Smith 9123 4567",
        "陳大文 HKID",
        "nothing here",
        "",
        "Mr Lau and Ms Cheung",
        "黃金價格上升",
        long_text,
        *[t for t, _ in CHINESE_POSITIVES + LATIN_POSITIVES + SPACY_POSITIVES],
    ]
    assert finder.find_many(texts) == [finder.find(t) for t in texts]
    assert names(finder, long_text) == ["John Smith"]


def test_concurrent_callers_get_the_same_answers(finder: NameFinder) -> None:
    texts = [t for t, _ in CHINESE_POSITIVES + LATIN_POSITIVES + SPACY_POSITIVES] * 4
    expected = [finder.find(t) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(finder.find, texts)) == expected


# -- the screener ------------------------------------------------------------------------------
def test_a_name_alone_is_not_flagged_but_a_name_with_an_identifier_is(
    shipped_screener: Screener, finder: NameFinder
) -> None:
    screener = Screener(shipped_screener.rulebook, finder, shipped_screener.lexicon)
    assert screener.screen("陳大文 joined the call").findings == ()
    text = "陳大文 HKID CA182361(1)"
    verdict = screener.screen(text)
    assert {f.rule_id for f in verdict.findings} == {"client-name", "hkid"}
    assert decide(verdict, text, screener.policy).masked == "陳** HKID CA18****(*)"
