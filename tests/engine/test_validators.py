import pytest

from bot.engine.validators import cn_mobile, cn_resident_id, hk_phone, hkid, iban, luhn


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("A123456(3)", True),
        ("A1234563", True),
        ("a123456(3)", True),
        ("CA182361(1)", True),
        ("A123456(4)", False),
        ("A12345(3)", False),
        ("123456(3)", False),
    ],
)
def test_hkid_check_digit(value: str, valid: bool) -> None:
    assert hkid(value) is valid


def test_hkid_check_character_a_when_remainder_is_one() -> None:
    # Find a number whose check character is 'A' and confirm only 'A' validates.
    for n in range(1000):
        digits = f"{n:06d}"
        if hkid(f"B{digits}A"):
            assert not any(hkid(f"B{digits}{c}") for c in "0123456789")
            return
    pytest.fail("no HKID with check character A found in 1000 candidates")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("11010519491231002X", True),
        ("11010519491231002x", True),
        ("110105194912310021", False),
        ("110105194913310028", False),
        ("1101051949123100", False),
    ],
)
def test_cn_resident_id_iso7064(value: str, valid: bool) -> None:
    assert cn_resident_id(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("4111 1111 1111 1111", True),
        ("5500-0000-0000-0004", True),
        ("4111 1111 1111 1112", False),
        ("0000 0000 0000 0000", False),
        ("4111", False),
    ],
)
def test_luhn(value: str, valid: bool) -> None:
    assert luhn(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("GB82 WEST 1234 5698 7654 32", True),
        ("DE89370400440532013000", True),
        ("GB82 WEST 1234 5698 7654 33", False),
        ("GB82", False),
    ],
)
def test_iban_mod97(value: str, valid: bool) -> None:
    assert iban(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("9123 4567", True),
        ("+852 2123-4567", True),
        ("85261234567", True),
        ("1234 5678", False),
        ("8888 8888", False),
        ("912345", False),
    ],
)
def test_hk_phone_shape(value: str, valid: bool) -> None:
    assert hk_phone(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [("13812345678", True), ("+86 138 1234 5678", True), ("12812345678", False)],
)
def test_cn_mobile_shape(value: str, valid: bool) -> None:
    assert cn_mobile(value) is valid
