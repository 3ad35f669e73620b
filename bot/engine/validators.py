"""Named checksums rules reference with ``validate:`` (HKID, mainland ID, Luhn, IBAN, phones)."""

from __future__ import annotations

import string
from collections.abc import Callable

import regex

_LETTER_VALUES = {letter: 10 + i for i, letter in enumerate(string.ascii_uppercase)}
_HKID_SHAPE = regex.compile(r"([A-Z]{1,2})(\d{6})\(?([0-9A])\)?")
_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"


def _alnum_upper(value: str) -> str:
    return "".join(c for c in value if c.isalnum()).upper()


def hkid(value: str) -> bool:
    """Hong Kong identity card: letters A=10..Z=35, a lone prefix letter padded with 36.

    Weights 9..2 over the 8 positions; r = sum mod 11; check 0 if r = 0, 'A' if r = 1,
    else 11 - r (regulation.md).
    """
    compact = "".join(c for c in value.upper() if c.isalnum() or c in "()")
    match = _HKID_SHAPE.fullmatch(compact.replace("(", "").replace(")", ""))
    if match is None:
        return False
    prefix, digits, check = match.groups()
    values = [36] if len(prefix) == 1 else []
    values += [_LETTER_VALUES[c] for c in prefix] + [int(d) for d in digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True))
    remainder = total % 11
    expected = "0" if remainder == 0 else "A" if remainder == 1 else str(11 - remainder)
    return check == expected


def cn_resident_id(value: str) -> bool:
    """Mainland resident identity card (GB 11643): ISO 7064 MOD 11-2 and a plausible birth date."""
    compact = _alnum_upper(value)
    if len(compact) != 18 or not compact[:17].isdigit():
        return False
    year, month, day = int(compact[6:10]), int(compact[10:12]), int(compact[12:14])
    if not (1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    total = sum(int(d) * w for d, w in zip(compact[:17], _CN_ID_WEIGHTS, strict=True))
    return _CN_ID_CHECK[total % 11] == compact[17]


def luhn(value: str) -> bool:
    """Payment card numbers: 13-19 digits passing the Luhn check, not all one digit."""
    digits = [int(c) for c in value if c.isdigit()]
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban(value: str) -> bool:
    """International bank account number: ISO 13616 mod-97 == 1."""
    compact = _alnum_upper(value)
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(_LETTER_VALUES[c]) if c.isalpha() else c for c in rearranged)
    return int(number) % 97 == 1


def hk_phone(value: str) -> bool:
    """Hong Kong subscriber numbers: 8 digits; fixed lines 2/3, mobiles 4-9 (not 999/112)."""
    digits = "".join(c for c in value if c.isdigit())
    if len(digits) == 11 and digits.startswith("852"):
        digits = digits[3:]
    if len(digits) != 8 or digits[0] not in "23456789":
        return False
    # A run of one digit ("88888888") is a placeholder or a vanity hotline, not a person.
    return len(set(digits)) > 1


def cn_mobile(value: str) -> bool:
    """Mainland mobile numbers: 1[3-9] followed by 9 digits, optional +86 prefix."""
    digits = "".join(c for c in value if c.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789"


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "hkid": hkid,
    "cn_resident_id": cn_resident_id,
    "luhn": luhn,
    "iban": iban,
    "hk_phone": hk_phone,
    "cn_mobile": cn_mobile,
}

# Shape checks, not checksums: a pass makes a match plausible but is no proof, so the
# score is kept (and context can still lower it) instead of being raised to 1.0.
WEAK_VALIDATORS = frozenset({"hk_phone", "cn_mobile"})
