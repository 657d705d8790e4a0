# -*- coding: utf-8 -*-
"""cpulist / cpumask parsing and formatting, with hypothesis round trips."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import (
    CpuListError,
    format_cpulist,
    format_cpumask,
    normalize_cpulist,
    parse_cpulist,
    parse_cpumask,
)


@pytest.mark.parametrize("text, cpus", [
    ("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]),
    ("", []),
    ("\n", []),
    (None, []),
    ("5", [5]),
    ("0-7,16-23\n", list(range(8)) + list(range(16, 24))),
    (" 3 , 1 ", [1, 3]),
    ("0-15:2/4", [0, 1, 4, 5, 8, 9, 12, 13]),
    ("0-5:1/2", [0, 2, 4]),
    ("2,0,1,1", [0, 1, 2]),
    ("0-0", [0]),
])
def test_parse_cpulist(text, cpus):
    parsed = parse_cpulist(text)
    assert isinstance(parsed, set)
    assert parsed == set(cpus)


@pytest.mark.parametrize("text", ["a", "3-1", "1-", "-1", "0-7:0/4", "0-7:5/4", "0-7:2/0", "1,,2", "0x3", "1 2"])
def test_parse_cpulist_rejects(text):
    with pytest.raises(CpuListError) as err:
        parse_cpulist(text)
    assert repr(text) in str(err.value) or text.strip() in str(err.value)


@pytest.mark.parametrize("cpus, text", [
    ([], ""),
    ([0], "0"),
    ([0, 1, 2, 3, 8, 10, 11], "0-3,8,10-11"),
    ({3, 1, 2}, "1-3"),
    ([0, 2, 4], "0,2,4"),
    (range(0, 56), "0-55"),
])
def test_format_cpulist(cpus, text):
    assert format_cpulist(cpus) == text


@pytest.mark.parametrize("mask, cpus", [
    ("0000,000000ff,ffffffff", list(range(40))),
    ("0000,00000000,00000000,00ff00ff", list(range(8)) + list(range(16, 24))),
    ("ffffff", list(range(24))),
    ("0xf", [0, 1, 2, 3]),
    ("00000000", []),
    ("0000,00000011,11111111", [c for c in range(40) if c % 4 == 0]),
    ("", []),
])
def test_parse_cpumask(mask, cpus):
    assert parse_cpumask(mask) == set(cpus)


@pytest.mark.parametrize("mask", ["zz", "0x", ",", "12 34"])
def test_parse_cpumask_rejects(mask):
    with pytest.raises(CpuListError):
        parse_cpumask(mask)


def test_format_cpumask_matches_sysfs_layout():
    assert format_cpumask(range(40)) == "000000ff,ffffffff"
    assert format_cpumask([]) == "00000000"
    assert format_cpumask([0, 16]) == "00010001"


def test_normalize():
    assert normalize_cpulist("3,0-2,7-8,9") == "0-3,7-9"


cpu_sets = st.sets(st.integers(min_value=0, max_value=4095), max_size=300)


@settings(max_examples=300, deadline=None)
@given(cpu_sets)
def test_roundtrip_set_format_parse(cpus):
    text = format_cpulist(cpus)
    assert parse_cpulist(text) == cpus
    # canonical: formatting the parse of a canonical string gives it back
    assert format_cpulist(parse_cpulist(text)) == text
    # no adjacent ranges left unmerged
    if cpus:
        for a, b in zip(text.split(","), text.split(",")[1:]):
            assert int(b.split("-")[0]) > int(a.split("-")[-1]) + 1


@settings(max_examples=300, deadline=None)
@given(cpu_sets)
def test_roundtrip_mask(cpus):
    assert parse_cpumask(format_cpumask(cpus)) == cpus


@st.composite
def cpulist_texts(draw):
    """Arbitrary (unsorted, overlapping) kernel cpulist strings and their expected set."""
    items, expected = [], set()
    for _unused in range(draw(st.integers(min_value=1, max_value=8))):
        start = draw(st.integers(min_value=0, max_value=512))
        kind = draw(st.sampled_from(["single", "range", "stride"]))
        if kind == "single":
            items.append(str(start))
            expected.add(start)
        else:
            end = draw(st.integers(min_value=start, max_value=start + 64))
            if kind == "range":
                items.append("%d-%d" % (start, end))
                expected.update(range(start, end + 1))
            else:
                group = draw(st.integers(min_value=1, max_value=8))
                used = draw(st.integers(min_value=1, max_value=group))
                items.append("%d-%d:%d/%d" % (start, end, used, group))
                for base in range(start, end + 1, group):
                    expected.update(c for c in range(base, base + used) if c <= end)
    return ",".join(items), expected


@settings(max_examples=300, deadline=None)
@given(cpulist_texts())
def test_parse_arbitrary_lists(case):
    text, expected = case
    assert parse_cpulist(text) == expected
    assert parse_cpulist(normalize_cpulist(text)) == expected
