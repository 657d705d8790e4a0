# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readers and writers of IRQ affinity and kernel-thread placement under a ``root``.

Plain functions over ``<root>/proc``: the module ``inferfleet.gpu.irq_affinity``
passes ``/``, the tests pass a tree in a temporary directory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import (
    CpuListError, format_cpulist, format_cpumask, parse_cpulist, parse_cpumask)

# include/linux/sched.h
PF_KTHREAD = 0x00200000
PF_NO_SETAFFINITY = 0x04000000

_STAT = re.compile(r"^\d+ \((.*)\) (\S) (.*)$", re.S)


def proc_path(root, *parts):
    return os.path.join(root, "proc", *parts)


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def read_default_affinity(root):
    """The CPUs of ``/proc/irq/default_smp_affinity`` (a set), or None when it cannot be read."""
    text = _read(proc_path(root, "irq", "default_smp_affinity"))
    if text is None:
        return None
    try:
        return parse_cpumask(text)
    except CpuListError:
        return None


def write_default_affinity(root, cpus):
    """Write ``cpus`` as a mask to ``/proc/irq/default_smp_affinity`` (a plain write: procfs)."""
    with open(proc_path(root, "irq", "default_smp_affinity"), "w") as handle:
        handle.write(format_cpumask(cpus) + "\n")


def read_irqs(root):
    """Every IRQ with an affinity file: ``[{"irq": n, "affinity": set, "actions": [names]}]`` by number.

    The actions are the handler names (the sub-directories the kernel makes per
    requested handler, e.g. ``virtio0-requests``, ``nvme0q1``).
    """
    base = proc_path(root, "irq")
    try:
        names = os.listdir(base)
    except (IOError, OSError):
        return []
    result = []
    for name in names:
        if not name.isdigit():
            continue
        text = _read(os.path.join(base, name, "smp_affinity_list"))
        if text is None:
            continue
        try:
            affinity = parse_cpulist(text)
        except CpuListError:
            continue
        try:
            actions = sorted(a for a in os.listdir(os.path.join(base, name))
                             if os.path.isdir(os.path.join(base, name, a)))
        except (IOError, OSError):
            actions = []
        result.append({"irq": int(name), "affinity": affinity, "actions": actions})
    result.sort(key=lambda item: item["irq"])
    return result


def write_irq_affinity(root, irq, cpus):
    """Write ``cpus`` to ``/proc/irq/<irq>/smp_affinity_list``; the kernel refuses some (EIO for managed IRQs)."""
    with open(proc_path(root, "irq", str(irq), "smp_affinity_list"), "w") as handle:
        handle.write(format_cpulist(cpus) + "\n")


def read_irq_affinity(root, irq):
    text = _read(proc_path(root, "irq", str(irq), "smp_affinity_list"))
    try:
        return parse_cpulist(text) if text is not None else None
    except CpuListError:
        return None


def thread_kind(comm):
    """``ksoftirqd/3`` -> ``ksoftirqd/N``, ``kworker/3:1H-kblockd`` -> ``kworker/N:NH-kblockd``."""
    return re.sub(r"\d+", "N", comm)


def kernel_threads_on(root, cpus):
    """Kernel threads whose affinity includes any of ``cpus``, grouped by kind.

    Returns ``{"pinned": {kind: count}, "unbound": {kind: count}}``: ``pinned``
    are threads bound to CPUs within ``cpus`` or marked PF_NO_SETAFFINITY
    (ksoftirqd, migration, cpuhp, per-CPU kworkers: the kernel does not let
    them move); ``unbound`` are threads allowed on ``cpus`` and others (rcu,
    kthreadd, khugepaged): left where the kernel runs them.
    """
    cpus = set(cpus)
    pinned, unbound = {}, {}
    try:
        pids = [p for p in os.listdir(proc_path(root)) if p.isdigit()]
    except (IOError, OSError):
        pids = []
    for pid in pids:
        stat = _read(proc_path(root, pid, "stat"))
        match = _STAT.match(stat or "")
        if not match:
            continue
        fields = match.group(3).split()
        try:
            flags = int(fields[5])  # stat field 9: ppid pgrp session tty_nr tpgid flags
        except (IndexError, ValueError):
            continue
        if not flags & PF_KTHREAD:
            continue
        allowed = None
        for line in (_read(proc_path(root, pid, "status")) or "").splitlines():
            key, _sep, value = line.partition(":")
            if key == "Cpus_allowed_list":
                try:
                    allowed = parse_cpulist(value)
                except CpuListError:
                    allowed = None
                break
        if not allowed or not allowed & cpus:
            continue
        bucket = pinned if (allowed <= cpus or flags & PF_NO_SETAFFINITY) else unbound
        kind = thread_kind(match.group(1))
        bucket[kind] = bucket.get(kind, 0) + 1
    return {"pinned": pinned, "unbound": unbound}


__all__ = ["PF_KTHREAD", "PF_NO_SETAFFINITY", "kernel_threads_on", "read_default_affinity", "read_irq_affinity",
           "read_irqs", "thread_kind", "write_default_affinity", "write_irq_affinity"]
