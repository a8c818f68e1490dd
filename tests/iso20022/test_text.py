"""Transliteration, cutting and phone numbers for ISO 20022 text fields."""

from __future__ import annotations

import pytest

from iso20022.text import clean_text, format_phone, to_ascii


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Đặng Thị Hồng Nhung", "Dang Thi Hong Nhung"),
        ("Müller-Lüdenscheidt", "Muller-Ludenscheidt"),
        ("Straße", "Strasse"),
        ("Øster Łukasz Æsir Þór", "Oster Lukasz AEsir THor"),
        ("Nguyễn Văn Ước", "Nguyen Van Uoc"),
        ("İstanbul Şişli", "Istanbul Sisli"),
        ("O’Brien “Jr” – CEO", 'O\'Brien "Jr" - CEO'),
        ("Ｆｕｌｌ ｗｉｄｔｈ", "Full width"),
        ("王小明 Budi", "Budi"),
        ("Budi 😀 Santoso", "Budi Santoso"),
        ("Budi\u200dSantoso\u00ad", "BudiSantoso"),  # zero-width joiner, soft hyphen
        ("Tab\tand\nnewline\x00", "Tab and newline"),
        ("  spaced   out  ", "spaced out"),
        ("👨‍👩‍👧", ""),
        ("a\ud83db", "a b"),  # lone surrogate
    ],
)
def test_to_ascii(raw, expected):
    assert to_ascii(raw) == expected


def test_clean_text_cuts_without_trailing_space():
    assert clean_text("abc def", 4) == "abc"
    assert clean_text("Đặng" * 50, 35) == "Dang" * 8 + "Dan"


def test_clean_text_falls_back_only_when_nothing_is_left():
    assert clean_text("王小明", 70, fallback="NOTPROVIDED") == "NOTPROVIDED"
    assert clean_text("", 70) is None
    assert clean_text(None, 70, fallback="X") == "X"
    with pytest.raises(ValueError):
        clean_text("", 3, fallback="NOTPROVIDED")


def test_cutting_never_splits_a_character():
    # Each emoji is one code point (two UTF-16 units): they are dropped before the cut, never halved.
    text = clean_text("😀A" * 100, 35)
    assert text == " ".join(["A"] * 18)[:35].rstrip()
    text.encode("ascii")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+62 812-3456-7890", "+62-81234567890"),
        ("+6281234567890", "+62-81234567890"),
        ("0060 12-345 6789", "+60-123456789"),
        ("+1 (415) 555-0100", "+1-4155550100"),
        ("+84 90 123 4567", "+84-901234567"),
        ("+673 712 3456", "+673-7123456"),  # Brunei: a three-digit code
        ("081234567890", None),  # no country code: left out, not guessed
        ("+62 812 ext 5", None),
        ("+", None),
        ("", None),
        (None, None),
        ("+0 123456", None),
        ("+" + "1" * 16, None),
    ],
)
def test_format_phone(raw, expected):
    assert format_phone(raw) == expected
