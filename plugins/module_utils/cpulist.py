# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Linux CPU list ("0-3,8,10-11") and CPU mask ("0000,000000ff") helpers.

Plain functions, no Ansible imports, so the module, the placement filter and
the tests share one parser. The list syntax follows the kernel's
``bitmap_parselist()``: comma separated items, each ``N``, ``N-M`` or
``N-M:used/group`` (for example ``0-15:2/4`` = 0,1,4,5,8,9,12,13).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_ITEM = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+)/(\d+))?)?$")


class CpuListError(ValueError):
    """A cpulist or cpumask string that cannot be parsed."""


def parse_cpulist(text):
    """Return the set of CPU ids named by a cpulist string.

    ``""`` (and whitespace, and ``None``) mean the empty set. A set, so
    callers can use ``&``, ``|``, ``<=``; ``sorted()`` it for an order.
    Raises :class:`CpuListError` naming the offending item.
    """
    if text is None:
        return set()
    text = text.strip()
    if not text:
        return set()
    cpus = set()
    for raw in text.split(","):
        item = raw.strip()
        match = _ITEM.match(item)
        if not match:
            raise CpuListError("invalid cpulist item %r in %r: expected N, N-M or N-M:used/group" % (item, text))
        first = int(match.group(1))
        if match.group(2) is None:
            cpus.add(first)
            continue
        last = int(match.group(2))
        if last < first:
            raise CpuListError("invalid cpulist range %r in %r: end is below start" % (item, text))
        if match.group(3) is None:
            cpus.update(range(first, last + 1))
            continue
        used, group = int(match.group(3)), int(match.group(4))
        if group == 0 or used == 0 or used > group:
            raise CpuListError("invalid cpulist stride %r in %r: need 0 < used <= group" % (item, text))
        for base in range(first, last + 1, group):
            cpus.update(cpu for cpu in range(base, base + used) if cpu <= last)
    return cpus


def format_cpulist(cpus):
    """Format CPU ids as the canonical kernel cpulist (sorted, ranges merged)."""
    ordered = sorted(set(int(cpu) for cpu in cpus))
    if not ordered:
        return ""
    parts = []
    start = prev = ordered[0]
    for cpu in ordered[1:]:
        if cpu == prev + 1:
            prev = cpu
            continue
        parts.append(str(start) if start == prev else "%d-%d" % (start, prev))
        start = prev = cpu
    parts.append(str(start) if start == prev else "%d-%d" % (start, prev))
    return ",".join(parts)


def parse_cpumask(text):
    """Return the set of CPU ids of a hex CPU mask.

    Accepts the sysfs form (32-bit words separated by commas, most
    significant first: ``00000000,000000ff``), a plain hex string
    (``ffffff``) and the ``0x`` prefixed form (``0xf``).
    """
    if text is None:
        return set()
    text = text.strip().lower()
    if not text:
        return set()
    digits = text.replace(",", "").replace("0x", "")
    if not digits or not re.match(r"^[0-9a-f]+$", digits):
        raise CpuListError("invalid cpumask %r: expected hex digits in comma separated words" % text)
    bits = bin(int(digits, 16))[:1:-1]  # least significant bit first
    return set(cpu for cpu, bit in enumerate(bits) if bit == "1")


def format_cpumask(cpus):
    """Format CPU ids as a sysfs style mask (comma separated 32-bit words)."""
    value = 0
    for cpu in set(int(c) for c in cpus):
        value |= 1 << cpu
    words = []
    while True:
        words.append("%08x" % (value & 0xFFFFFFFF))
        value >>= 32
        if not value:
            break
    return ",".join(reversed(words))


def normalize_cpulist(text):
    """Canonical form of a cpulist string (``"3,0-2"`` -> ``"0-3"``)."""
    return format_cpulist(parse_cpulist(text))
