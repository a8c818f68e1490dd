"""Public ids: prefix, 24 base62 characters from the OS CSPRNG, every character equally likely."""

import re
from collections import Counter

import pytest

from paytrust.ids import _ALPHABET, _LENGTH, new_id


def test_format_and_uniqueness():
    ids = [new_id("inv") for _ in range(10_000)]
    assert all(re.fullmatch(r"inv_[0-9A-Za-z]{24}", value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_every_character_is_equally_likely():
    """A plain `byte % 62` would make the first 8 symbols ~23 % likelier: rejected bytes keep it uniform."""
    counts = Counter("".join(new_id("evt")[4:] for _ in range(10_000)))
    expected = 10_000 * _LENGTH / len(_ALPHABET)  # 3,871 per symbol; one standard deviation is ~62
    assert set(counts) == set(_ALPHABET)
    assert all(abs(count - expected) < expected * 0.1 for count in counts.values()), counts


def test_unknown_prefix_is_refused():
    with pytest.raises(ValueError):
        new_id("xyz")
