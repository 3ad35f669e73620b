"""Deterministic generator of realistic identifiers for the independent eval set.

Run it to print a pool of VALID and deliberately INVALID identifiers; the messages in
source.txt were written by hand and the identifiers pasted in from this pool. The same
check-digit functions are used by verify.py to audit every identifier-like string.

Algorithms (see /work/shared/notes/regulation.md):
  HKID        letters A=10..Z=35, single-letter prefix padded with 36, weights 9..2,
              check = 11 - sum % 11 (10 -> 'A', 11 -> '0')
  Mainland ID ISO 7064 MOD 11-2 over 17 digits
  Cards       Luhn
  IBAN        ISO 13616 mod 97
"""

from __future__ import annotations

import random
import string

SEED = 20260611


# ---------------------------------------------------------------- HKID
def hkid_check(prefix: str, digits: str) -> str:
    prefix = prefix.upper()
    vals = [36] if len(prefix) == 1 else []
    vals += [ord(c) - ord("A") + 10 for c in prefix]
    vals += [int(d) for d in digits]
    assert len(vals) == 8, (prefix, digits)
    total = sum(v * w for v, w in zip(vals, range(9, 1, -1)))
    check = 11 - total % 11
    return {10: "A", 11: "0"}.get(check, str(check))


def hkid_valid(s: str) -> bool:
    s = s.upper().replace("(", "").replace(")", "").replace(" ", "")
    if not (8 <= len(s) <= 9):
        return False
    body, check = s[:-1], s[-1]
    prefix = "".join(c for c in body if c.isalpha())
    digits = body[len(prefix) :]
    if not (1 <= len(prefix) <= 2 and len(digits) == 6 and digits.isdigit()):
        return False
    return hkid_check(prefix, digits) == check


# ---------------------------------------------------------------- Mainland ID
_CN_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CN_C = "10X98765432"


def cnid_check(body17: str) -> str:
    return _CN_C[sum(int(d) * w for d, w in zip(body17, _CN_W)) % 11]


def cnid_valid(s: str) -> bool:
    s = s.upper()
    return len(s) == 18 and s[:17].isdigit() and cnid_check(s[:17]) == s[17]


# ---------------------------------------------------------------- Luhn
def luhn_ok(num: str) -> bool:
    digits = [int(c) for c in num if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(partial: str) -> str:
    for c in "0123456789":
        if luhn_ok(partial + c):
            return partial + c
    raise AssertionError


# ---------------------------------------------------------------- IBAN
def _iban_num(s: str) -> int:
    return int("".join(str(int(c, 36)) for c in s))


def iban_valid(s: str) -> bool:
    s = s.replace(" ", "").upper()
    if len(s) < 15 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    return _iban_num(s[4:] + s[:4]) % 97 == 1


def iban_make(country: str, bban: str) -> str:
    check = 98 - _iban_num(bban + country + "00") % 97
    return f"{country}{check:02d}{bban}"


def group4(s: str) -> str:
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4))


# ---------------------------------------------------------------- pool
CN_AREAS = [
    "440305",
    "310115",
    "110105",
    "440106",
    "330106",
    "510107",
    "320102",
    "350203",
    "420106",
]


def main() -> None:
    rng = random.Random(SEED)
    print("# HKID valid")
    for _ in range(40):
        prefix = rng.choice(
            string.ascii_uppercase.replace("I", "")
            .replace("O", "")
            .replace("Q", "")
            .replace("U", "")
        )
        if rng.random() < 0.2:
            prefix = rng.choice(["XA", "WX", "XB", "XC"])
        digits = "".join(rng.choice(string.digits) for _ in range(6))
        c = hkid_check(prefix, digits)
        wrong = rng.choice([d for d in "0123456789A" if d != c])
        print(f"  valid {prefix}{digits}({c})    invalid {prefix}{digits}({wrong})")
    print("# Mainland ID")
    for _ in range(24):
        y, m, d = rng.randint(1958, 2001), rng.randint(1, 12), rng.randint(1, 28)
        body = f"{rng.choice(CN_AREAS)}{y}{m:02d}{d:02d}{rng.randint(10, 999):03d}"
        c = cnid_check(body)
        wrong = rng.choice([x for x in "0123456789X" if x != c])
        print(f"  valid {body}{c}    invalid {body}{wrong}")
    print("# Cards")
    for prefix, n in [
        ("4", 16),
        ("4", 16),
        ("4", 16),
        ("51", 16),
        ("53", 16),
        ("55", 16),
        ("62", 16),
        ("62", 19),
        ("37", 15),
        ("35", 16),
        ("4", 16),
        ("52", 16),
        ("4", 16),
        ("54", 16),
        ("62", 16),
        ("4", 16),
        ("37", 15),
        ("51", 16),
    ]:
        partial = prefix + "".join(rng.choice(string.digits) for _ in range(n - len(prefix) - 1))
        good = luhn_complete(partial)
        bad = good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)
        assert not luhn_ok(bad)
        print(f"  valid {good}    invalid {bad}")
    print("# IBAN")
    for country, fmt in [
        ("GB", "AAAA######~~~~~~~~"),
        ("DE", "##################"),
        ("CH", "#################"),
        ("FR", "#######################"),
        ("LU", "###~~~~~~~~~~~~~"),
        ("AE", "###################"),
        ("GB", "AAAA######~~~~~~~~"),
        ("DE", "##################"),
        ("NL", "AAAA##########"),
        ("GB", "AAAA######~~~~~~~~"),
    ]:
        bban = ""
        for ch in fmt:
            if ch == "A":
                bban += rng.choice(string.ascii_uppercase)
            else:
                bban += rng.choice(string.digits)
        good = iban_make(country, bban)
        bad = good[:2] + f"{(int(good[2:4]) + 7) % 100:02d}" + good[4:]
        assert iban_valid(good) and not iban_valid(bad)
        print(f"  valid {group4(good)}    invalid {group4(bad)}")
    print("# HK mobiles / CN mobiles")
    for _ in range(30):
        hk = rng.choice("5679") + "".join(rng.choice(string.digits) for _ in range(7))
        cn = "1" + rng.choice("3456789") + "".join(rng.choice(string.digits) for _ in range(9))
        print(f"  hk {hk[:4]} {hk[4:]}    cn {cn}")
    print("# HK bank accounts (no public check digit; format only)")
    for _ in range(16):
        a = f"{rng.randint(100, 899)}-{rng.randint(100000, 999999)}-{rng.randint(1, 899):03d}"
        b = f"012-{rng.randint(100, 999)}-{rng.randint(0, 9)}-{rng.randint(100000, 999999)}"
        print(f"  {a}    {b}")


if __name__ == "__main__":
    main()
