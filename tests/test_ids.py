"""Public ids: prefix, 8 base62 characters of creation time, 16 from the OS CSPRNG (every one equally likely)."""

import re
import time
from collections import Counter

import pytest

from paytrust.ids import _ALPHABET, _RANDOM_LENGTH, _TIME_LENGTH, id_time_ms, new_id


def test_format_and_uniqueness():
    ids = [new_id("inv") for _ in range(10_000)]
    assert all(re.fullmatch(r"inv_[0-9A-Za-z]{24}", value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_every_character_is_equally_likely():
    """A plain `byte % 62` would make the first 8 symbols ~23 % likelier: rejected bytes keep it uniform."""
    counts = Counter("".join(new_id("evt")[4 + _TIME_LENGTH :] for _ in range(10_000)))
    expected = 10_000 * _RANDOM_LENGTH / len(_ALPHABET)  # 2,581 per symbol; one standard deviation is ~50
    assert set(counts) == set(_ALPHABET)
    assert all(abs(count - expected) < expected * 0.1 for count in counts.values()), counts


def test_unknown_prefix_is_refused():
    with pytest.raises(ValueError):
        new_id("xyz")


def test_ids_sort_by_creation_time_and_carry_it():
    before = time.time_ns() // 1_000_000
    ids = []
    for _ in range(5):
        ids.append(new_id("inv"))
        time.sleep(0.002)
    after = time.time_ns() // 1_000_000
    assert sorted(ids) == ids  # byte order, as PostgreSQL's C collation and Python compare them
    assert before <= id_time_ms(ids[0]) <= id_time_ms(ids[-1]) <= after
    assert id_time_ms("inv_00000000" + "z" * 16) == 0
    assert id_time_ms("inv_0000000A" + "0" * 16) == 10


def test_ids_of_one_millisecond_differ_in_their_random_part():
    ids = [new_id("pay") for _ in range(2_000)]
    assert len({value[4 + _TIME_LENGTH :] for value in ids}) == len(ids)
