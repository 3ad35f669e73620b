"""Deterministic, seeded generator of mixed English/Chinese/Cantonese chat lines for benchmarks."""

from __future__ import annotations

import random
import string
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import regex

DEFAULT_SEED = 20261123
RISKY_SHARE = 0.15
LANGS = ("en", "yue", "zh-Hans", "mixed")  # English, Cantonese (Traditional), Simplified, mixed
LANG_WEIGHTS = (0.38, 0.27, 0.15, 0.20)
RISKS = ("advice", "pii", "off_channel")
RISK_WEIGHTS = (0.35, 0.40, 0.25)

_SLOT = regex.compile(r"\{(\w+)\}")
_LATIN_WORD = regex.compile(r"[\p{Latin}\d][\p{Latin}\d'.,@/$%:+#-]*")
_HAN = regex.compile(r"\p{Han}")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One generated message with its language and the risk it was built to carry ("" = none)."""

    text: str
    lang: str
    risk: str


def word_count(text: str) -> int:
    """Words as a reader counts them: Latin tokens, plus one word per two Han characters."""
    han = len(_HAN.findall(text))
    return len(_LATIN_WORD.findall(text)) + (han + 1) // 2


# -- identifiers with valid checksums ---------------------------------------------------------
def hkid(rng: random.Random, *, brackets: bool | None = None) -> str:
    """A Hong Kong identity card number with a correct check digit."""
    prefix = rng.choice(string.ascii_uppercase)
    if rng.random() < 0.1:
        prefix = rng.choice("WX") + prefix
    digits = "".join(rng.choice(string.digits) for _ in range(6))
    values = [36] if len(prefix) == 1 else []
    values += [ord(c) - 55 for c in prefix] + [int(d) for d in digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True))
    remainder = total % 11
    check = "0" if remainder == 0 else "A" if remainder == 1 else str(11 - remainder)
    if brackets is None:
        brackets = rng.random() < 0.7
    return f"{prefix}{digits}({check})" if brackets else f"{prefix}{digits}{check}"


def cn_id(rng: random.Random) -> str:
    """A mainland resident identity number (18 characters) with a correct check character."""
    area = rng.choice(["110101", "310104", "440305", "440106", "330106", "510107", "320102"])
    birth = f"{rng.randint(1955, 2003)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = area + birth + f"{rng.randint(0, 999):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def _luhn_complete(partial: str) -> str:
    total = 0
    for position, char in enumerate(reversed(partial)):
        digit = int(char)
        if position % 2 == 0:  # doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return partial + str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    """A payment card number (Visa, Mastercard or UnionPay shape) passing the Luhn check."""
    start = rng.choice(["4", "51", "53", "55", "62"])
    length = 16
    body = start + "".join(rng.choice(string.digits) for _ in range(length - 1 - len(start)))
    number = _luhn_complete(body)
    style = rng.random()
    if style < 0.6:
        return " ".join(number[i : i + 4] for i in range(0, 16, 4))
    if style < 0.8:
        return "-".join(number[i : i + 4] for i in range(0, 16, 4))
    return number


def iban(rng: random.Random) -> str:
    """An IBAN with a correct mod-97 check (UK, German or French shape)."""
    country, bban_len, bank = rng.choice(
        [("GB", 18, "HSBC"), ("GB", 18, "BARC"), ("DE", 18, ""), ("FR", 23, "")]
    )
    bban = bank + "".join(rng.choice(string.digits) for _ in range(bban_len - len(bank)))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    value = f"{country}{check:02d}{bban}"
    if rng.random() < 0.6:
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def hk_mobile(rng: random.Random) -> str:
    """A Hong Kong mobile number, written as people type it."""
    digits = rng.choice("569") + "".join(rng.choice(string.digits) for _ in range(7))
    return _hk_style(rng, digits)


def hk_landline(rng: random.Random) -> str:
    """A Hong Kong fixed-line number (offices, hotlines)."""
    digits = rng.choice("23") + "".join(rng.choice(string.digits) for _ in range(7))
    return _hk_style(rng, digits)


def _hk_style(rng: random.Random, digits: str) -> str:
    style = rng.random()
    if style < 0.45:
        return f"{digits[:4]} {digits[4:]}"
    if style < 0.65:
        return f"{digits[:4]}-{digits[4:]}"
    return digits


def cn_mobile(rng: random.Random) -> str:
    """A mainland mobile number, sometimes with +86."""
    number = "1" + rng.choice("3456789") + "".join(rng.choice(string.digits) for _ in range(9))
    style = rng.random()
    if style < 0.2:
        return "+86 " + number
    if style < 0.4:
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    return number


# -- vocabulary -----------------------------------------------------------------------------------
EN_FIRST = [
    "Peter", "Mary", "David", "Karen", "Jason", "Emily", "Tony", "Grace", "Kevin", "Alice",
    "Michael", "Winnie", "Raymond", "Cindy", "Samuel", "Joyce", "Alan", "Vivian", "Eric", "Fiona",
]  # fmt: skip
EN_LAST = [
    "Chan", "Wong", "Lee", "Lau", "Ng", "Cheung", "Leung", "Ho", "Tsang", "Yip", "Lam", "Cheng",
    "Kwok", "Tang", "Mak", "Fung", "Smith", "Taylor", "Patel", "Fischer",
]  # fmt: skip
HK_ROMANISED = ["Chan Tai Man", "Wong Siu Ming", "Lee Ka Yan", "Cheung Wing Sze", "Lam Chi Keung"]
ZH_NAMES = ["陳大文", "李小明", "黃志強", "張美玲", "劉德明", "何家欣", "梁偉業", "吳淑儀"]
ZS_NAMES = ["王伟", "李娜", "张敏", "刘洋", "陈静", "杨帆", "赵磊", "周婷"]
MAIL_DOMAINS = [
    "gmail.com", "yahoo.com.hk", "outlook.com", "hotmail.com", "163.com", "qq.com",
    "netvigator.com", "icloud.com",
]  # fmt: skip
TICKERS = [
    "0700.HK", "9988.HK", "0005.HK", "1299.HK", "3690.HK", "0388.HK", "2318.HK", "0941.HK",
    "1810.HK", "0883.HK", "2800.HK", "0001.HK", "1211.HK", "9618.HK",
]  # fmt: skip
COMPANIES_EN = [
    "Tencent", "Alibaba", "HSBC", "AIA", "Meituan", "HKEX", "Ping An", "China Mobile",
    "Xiaomi", "CNOOC", "BYD", "JD.com", "Link REIT", "CK Hutchison",
]  # fmt: skip
COMPANIES_YUE = ["騰訊", "阿里", "匯豐", "友邦", "美團", "港交所", "平保", "小米", "比亞迪"]
COMPANIES_ZS = ["腾讯", "阿里巴巴", "汇丰", "友邦", "美团", "港交所", "中国平安", "小米", "比亚迪"]


def _name_en(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return rng.choice(HK_ROMANISED)
    return f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}"


def _email(rng: random.Random) -> str:
    first, last = rng.choice(EN_FIRST).lower(), rng.choice(EN_LAST).lower()
    local = rng.choice(
        [f"{first}.{last}", f"{first}{last}{rng.randint(1, 99)}", f"{first[0]}{last}"]
    )
    return f"{local}@{rng.choice(MAIL_DOMAINS)}"


def _price(rng: random.Random) -> str:
    return f"{rng.uniform(1, 600):.2f}"


def _pct(rng: random.Random) -> str:
    return f"{rng.choice([rng.uniform(0.1, 4.0), rng.randint(5, 30)]):.1f}%".replace(".0%", "%")


def _date(rng: random.Random) -> str:
    day, month = rng.randint(1, 28), rng.randint(1, 12)
    return rng.choice(
        [f"{day}/{month}", f"2026-{month:02d}-{day:02d}", f"{day} Nov", f"{day}.{month}.2026"]
    )


def _date_zh(rng: random.Random) -> str:
    return f"{rng.randint(1, 12)}月{rng.randint(1, 28)}號"


def _date_zs(rng: random.Random) -> str:
    return f"{rng.randint(1, 12)}月{rng.randint(1, 28)}日"


def _time(rng: random.Random) -> str:
    return rng.choice(["9:30", "10am", "11:15", "2pm", "3:30pm", "4pm", "17:00"])


def _order(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return f"#{rng.randint(10_000_000, 99_999_999)}"  # bare 8 digits: a phone look-alike
    if kind < 0.7:
        return f"ORD-{rng.randint(100_000, 999_999)}"
    return f"{rng.randint(2026_000_000, 2026_999_999)}"


SLOTS: dict[str, Callable[[random.Random], str]] = {
    "hkid": hkid,
    "cnid": cn_id,
    "card": card,
    "iban": iban,
    "mobile": hk_mobile,
    "office": hk_landline,
    "cnmobile": cn_mobile,
    "email": _email,
    "name": _name_en,
    "name_yue": lambda r: r.choice(ZH_NAMES),
    "name_zs": lambda r: r.choice(ZS_NAMES),
    "first": lambda r: r.choice(EN_FIRST),
    "ticker": lambda r: r.choice(TICKERS),
    "co": lambda r: r.choice(COMPANIES_EN),
    "co_yue": lambda r: r.choice(COMPANIES_YUE),
    "co_zs": lambda r: r.choice(COMPANIES_ZS),
    "price": _price,
    "pct": _pct,
    "date": _date,
    "date_zh": _date_zh,
    "date_zs": _date_zs,
    "time": _time,
    "order": _order,
    "room": lambda r: f"{r.randint(8, 42)}{r.randint(1, 20):02d}",
    "ext": lambda r: str(r.randint(1000, 8999)),
    "amount": lambda r: f"{r.randint(1, 900) * 10_000:,}",
    "lot": lambda r: str(r.choice([100, 200, 500, 1000, 2000])),
    "n": lambda r: str(r.randint(2, 12)),
    "exp": lambda r: f"{r.randint(1, 12):02d}/{r.randint(27, 31)}",
    "fx": lambda r: f"7.{r.randint(7750, 7850)}",
    "updown": lambda r: r.choice(["up", "down", "off", "higher by", "lower by"]),
    "updown_zh": lambda r: r.choice(["升咗", "跌咗", "上升", "下跌"]),
    "period": lambda r: r.choice(["a year", "p.a.", "per annum", "in 3 months", "monthly"]),
}

# -- benign fragments (many carry look-alikes: tickers, prices, dates, order numbers) -------------
BENIGN: dict[str, list[str]] = {
    "en": [
        "morning all", "noted, thanks", "will do", "ok sounds good", "thx, received",
        "HSI {updown} {pct} at the open, property names leading",
        "{ticker} closed at {price}, volume was light today",
        "can someone resend the deck for the {time} call",
        "client meeting moved to {date} at {time}",
        "pls check order {order}, it shows partially filled",
        "settlement for trade ref {order} is T+2",
        "IT helpdesk hotline is {office} if Bloomberg is down again",
        "room {room} is booked for the IPO debrief",
        "the research note on {co} is on the shared drive",
        "NAV of the fund was {price} as of {date}",
        "lunch at 12:30? dim sum downstairs",
        "who is covering the desk tomorrow",
        "USD/HKD at {fx} this morning",
        "reminder: finish the AML e-learning by {date}",
        "HK$ {amount} subscription received, pending KYC",
        "{name} is out of office until {date}",
        "please update the CRM after each client call",
        "typhoon signal 8 may go up this afternoon, office closes if so",
        "market data feed lagging by {n} seconds",
        "board lot for {ticker} is {lot} shares",
        "sell-side target on {co} is {price}, fyi only, not our view",
        "can you print the Q3 review, {n} copies",
        "returns are not guaranteed and past performance is no guide to the future",
        "please do not use WeChat for client instructions, use this group",
        "dividend ex-date for {ticker} is {date}",
        "my extension is {ext}",
        "the {co} results call starts at {time}, dial-in in the invite",
        "risk disclosure statement updated, please read before {date}",
        "can you book a taxi to Central for {time}",
        "coffee anyone? heading to Pacific Place",
        "{first}, did the client sign the suitability form",
        "fund factsheet for {date} is out, performance {updown} {pct}",
        "our office number is {office}, general enquiries only",
        "trade confirm for {order} sent to ops",
        "quarter end is close, please submit expense claims by {date}",
        "the MPF switch form needs a wet signature",
        "we are closed on {date} for the public holiday",
        "could you forward the signed mandate to compliance",
        "just checked, {ticker} is {updown} {pct} since the results",
        "price at {price} with a stop at {price}, per the model portfolio sheet",
    ],
    "yue": [
        "早晨", "收到，唔該", "唔該晒", "OK冇問題", "好呀", "搞掂",
        "今日恒指{updown_zh}{pct}，地產股帶頭",
        "{co_yue}收市{price}蚊，成交好少",
        "聽日{time}開會，記得帶份報告",
        "我遲少少到，塞緊車",
        "今晚食咩好呀",
        "{name_yue}今日放假，有嘢搵我",
        "客戶話下星期先覆",
        "落單編號{order}，幫我check吓",
        "部印表機又壞咗",
        "IT熱線{office}，有事直接打去問",
        "{date_zh}除淨，記得通知客",
        "個市好靜，冇乜成交",
        "三號風球，今日可能早啲走",
        "記得做KYC更新",
        "個基金今日淨值係{price}",
        "會議室{room}已經book咗",
        "份報告喺shared drive度",
        "{ticker}一手{lot}股",
        "投資涉及風險，過往表現唔代表將來",
        "公司規定唔可以用微信同客戶傾生意",
        "今個月尾要交expense claim",
        "樓下茶記食唔食",
        "佢哋個系統好似死咗",
        "幫我約{name_yue}{date_zh}見面",
    ],
    "zh-Hans": [
        "大家早上好", "收到，谢谢", "好的没问题", "辛苦了",
        "今天恒指下跌{pct}，科技股领跌",
        "{co_zs}收盘{price}元",
        "明天{time}开会，请带上报告",
        "请把合同发给客户",
        "{name_zs}今天请假",
        "订单号{order}，请核对一下",
        "客户说下周再回复",
        "记得完成反洗钱培训",
        "会议室{room}已预订",
        "基金净值{price}",
        "IT热线{office}",
        "{date_zs}派息，请通知客户",
        "投资有风险，入市需谨慎",
        "系统维护到晚上十点",
        "请更新客户风险评估问卷",
        "港股通额度今天还很充足",
    ],
    "mixed": [
        "份report我send咗去你email",
        "個meeting postpone到{date}",
        "{ticker}今日好strong",
        "check吓個order {order}",
        "呢個deal要等compliance approve先",
        "client想要個quote，today得唔得",
        "sorry我late咗少少",
        "個deck update咗未",
        "FYI {co}個results call改咗{time}",
        "幫我book個room，{n}個人",
        "今日個market好quiet",
        "個term sheet OK，等legal睇埋",
        "d data lag咗{n}秒",
        "{name}話個KYC仲未搞掂",
        "Friday前要submit個form",
        "今日HSI {updown} {pct}, 冇乜news",
    ],
}  # fmt: skip

# -- risky fragments ----------------------------------------------------------------------------
RISKY: dict[str, dict[str, list[str]]] = {
    "advice": {
        "en": [
            "we guarantee {pct} {period}, no risk at all",
            "this note is a guaranteed return, tell the client it cannot lose",
            "it's risk-free, you literally can't lose money on {ticker}",
            "principal protected and guaranteed {pct} {period}",
            "buy now, {ticker} is going to fly after results",
            "load up on {co} before the announcement",
            "strong buy on {co}, target {price}, tell all your clients",
            "tell your clients to sell {ticker} today before the news is out",
            "all in on {ticker}, easy money",
            "dump {ticker} before the placement is announced",
            "heard from a friend at {co} the results will beat, keep it quiet",
            "insider tip: {co} is announcing a takeover next week",
            "don't tell anyone but {co} is getting acquired",
            "sure win, buy {ticker} now and double your money",
            "guaranteed profit if you buy {co} this week",
        ],
        "yue": [
            "呢隻穩賺㗎，快啲入貨",
            "保證回報{pct}，冇風險",
            "{co_yue}快啲買入，聽日一定升",
            "包賺唔賠，放心",
            "內幕消息：{co_yue}下星期宣布收購，唔好講出去",
            "即刻沽晒{ticker}，有大鑊",
            "一定升，叫客全部買入",
            "{co_yue}穩升，而家入貨啱晒",
            "保本保息，年息{pct}",
        ],
        "zh-Hans": [
            "稳赚不赔，赶紧买入",
            "保证回报{pct}，零风险",
            "内幕消息，{co_zs}要被收购了",
            "马上买入{co_zs}，明天必涨",
            "保本保息，年化{pct}",
            "这只股票稳赚，抓紧建仓",
        ],
        "mixed": [
            "{ticker}一定升，buy now",
            "呢隻guaranteed return {pct}",
            "快啲入貨{co}，insider話會有deal",
            "all in {co_yue}啦，穩賺",
        ],
    },
    "pii": {
        "en": [
            "my HKID is {hkid}",
            "client's ID card no. {hkid}, please open the account",
            "call me on {mobile}",
            "his mobile is +852 {mobile}",
            "{name} - {mobile}, call her after 6",
            "card number {card}, exp {exp}",
            "pls transfer to IBAN {iban}",
            "her email is {email}",
            "mainland ID {cnid} for the new account",
            "passport copy and HKID {hkid} attached for {name}",
            "client {name}, tel {mobile}, email {email}",
            "his China number is {cnmobile}",
            "account holder {name}, HKID {hkid}",
            "use card {card} for the subscription",
        ],
        "yue": [
            "身份證號碼{hkid}",
            "{name_yue}電話{mobile}",
            "客戶手機+852 {mobile}",
            "佢張卡{card}",
            "內地身份證{cnid}",
            "email佢：{email}",
            "{name_yue}個身份證係{hkid}，幫手開戶",
        ],
        "zh-Hans": [
            "身份证号{cnid}",
            "手机{cnmobile}",
            "客户电话{cnmobile}，姓名{name_zs}",
            "银行卡号{card}",
            "{name_zs}的身份证{cnid}",
        ],
        "mixed": [
            "個client HKID {hkid}",
            "call {name}，佢mobile {mobile}",
            "張card {card}，exp {exp}",
            "email我 {email}",
        ],
    },
    "off_channel": {
        "en": [
            "add me on WeChat, easier to talk there",
            "WhatsApp me at {mobile}",
            "let's move this to Signal",
            "send it to my gmail instead",
            "ping me on Telegram, not here",
            "text me on my personal phone later",
            "W e C h a t me tonight",
            "DM me on wechat after the close",
            "delete this chat after reading",
            "don't put this in the group, call my own number",
        ],
        "yue": [
            "加我微信傾",
            "加我VX",
            "用WhatsApp講啦",
            "私人電話再傾",
            "轉去微信講",
            "微 信 聯絡",
            "唔好喺度講，打我私人手機",
        ],
        "zh-Hans": [
            "加我微信详聊",
            "我们微信上说",
            "加v信",
            "用电报联系",
            "私聊发你",
        ],
        "mixed": [
            "wechat傾啦",
            "send去我私人email",
            "我哋whatsapp講",
            "加我wechat先",
        ],
    },
}


def fill(template: str, rng: random.Random) -> str:
    """Replace ``{slot}`` markers with freshly generated values."""
    return _SLOT.sub(lambda m: SLOTS[m.group(1)](rng), template)


def _joiner(lang: str, left: str, right: str, rng: random.Random) -> str:
    if lang == "en":
        return rng.choice([". ", ", ", " - ", "; ", " "])
    if left[-1:].isascii() and right[:1].isascii():
        return rng.choice([", ", ". ", " "])  # never glue two Latin words together
    return rng.choice(["，", "。", " ", "！", ""])


def _target_words(rng: random.Random) -> int:
    # Chat lines are mostly short; a tail of longer ones reaches 40 words.
    return max(5, min(40, round(rng.triangular(5, 40, 9))))


def _message(rng: random.Random, lang: str, risk: str) -> ChatMessage:
    target = _target_words(rng)
    pieces: list[str] = []
    if risk:
        pieces.append(fill(rng.choice(RISKY[risk][lang]), rng))
    filler_langs = {"mixed": ("mixed", "yue", "en")}.get(lang, (lang,))
    used: set[str] = set()
    for _attempt in range(12):
        if word_count(" ".join(pieces)) >= target:
            break
        template = rng.choice(BENIGN[rng.choice(filler_langs)])
        if template in used:
            continue
        candidate = fill(template, rng)
        if pieces and word_count(" ".join([*pieces, candidate])) > 40:
            continue
        used.add(template)
        pieces.insert(rng.randint(0, len(pieces)), candidate)
    text = pieces[0]
    for piece in pieces[1:]:
        text += _joiner(lang, text, piece, rng) + piece
    return ChatMessage(text, lang, risk)


def generate(
    n: int,
    *,
    seed: int = DEFAULT_SEED,
    langs: Sequence[str] = LANGS,
    risky_share: float = RISKY_SHARE,
) -> list[ChatMessage]:
    """``n`` messages, the same for the same arguments; about ``risky_share`` carry a risk."""
    rng = random.Random(seed)
    weights = [LANG_WEIGHTS[LANGS.index(lang)] for lang in langs]
    out = []
    for _ in range(n):
        lang = rng.choices(langs, weights)[0]
        risk = rng.choices(RISKS, RISK_WEIGHTS)[0] if rng.random() < risky_share else ""
        out.append(_message(rng, lang, risk))
    return out


def english(n: int, *, seed: int = DEFAULT_SEED) -> list[ChatMessage]:
    """``n`` English-only messages (for peers that only read English)."""
    return generate(n, seed=seed, langs=("en",))


def describe(messages: Sequence[ChatMessage]) -> str:
    """One line: counts by language and risk, and the word-count range."""
    langs = Counter(m.lang for m in messages)
    risks = Counter(m.risk or "none" for m in messages)
    counts = [word_count(m.text) for m in messages]
    risky = sum(1 for m in messages if m.risk)
    return (
        f"{len(messages)} messages; langs {dict(sorted(langs.items()))}; "
        f"risky {risky / max(1, len(messages)):.1%} {dict(sorted(risks.items()))}; "
        f"words {min(counts)}-{max(counts)} (mean {sum(counts) / len(counts):.1f})"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    sample = generate(count)
    for message in sample:
        print(f"[{message.lang:7} {message.risk or '-':11}] {message.text}")
    print(describe(generate(max(count, 5000))))
