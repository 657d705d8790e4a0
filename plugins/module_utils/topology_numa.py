# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NUMA nodes: their CPUs, memory and distances, and the host memory of /proc/meminfo.

Part of the topology reader (``topology.gather`` assembles the parts). Every
reader takes ``root`` (``/`` or a captured tree) and appends oddities of the
tree to the caller's ``warnings`` list instead of raising.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.inferfleet.gpu.plugins.module_utils import sysfs
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import format_cpulist
from ansible_collections.inferfleet.gpu.plugins.module_utils.topology_cpus import cpus_from_list_or_mask

_NODE_DIR = re.compile(r"^node(\d+)$")
_MEMTOTAL = re.compile(r"MemTotal:\s+(\d+)")
_MEMINFO_KB = re.compile(r"^(?:Node\s+\d+\s+)?(\w+):\s+(\d+)(?:\s+kB)?\s*$")


def parse_meminfo(text):
    """``{key: bytes}`` from /proc/meminfo or a node's meminfo (kB lines)."""
    values = {}
    for line in (text or "").splitlines():
        match = _MEMINFO_KB.match(line.strip())
        if match:
            values[match.group(1)] = int(match.group(2)) * 1024
    return values


def read_numa_nodes(root, online, allowed_cpus, allowed_mems, warnings):
    """NUMA nodes: ``[{id, cpus, cpu_ids, memory_bytes, distances, allowed, cpus_allowed}]``.

    ``cpus`` holds only online CPUs ("" for a CPU-less node). A kernel without
    NUMA (no node directory) is reported as a single node 0 holding every
    online CPU, as hwloc does.
    """
    node_dir = sysfs.under_root(root, "sys/devices/system/node")
    online = set(online)
    allowed_cpus = set(allowed_cpus)
    ids = []
    for name in sysfs.listdir(node_dir):
        match = _NODE_DIR.match(name)
        if match:
            ids.append(int(match.group(1)))
    ids.sort()
    nodes = []
    if not ids:
        meminfo = parse_meminfo(sysfs.read(sysfs.under_root(root, "proc/meminfo")))
        nodes.append({
            "id": 0,
            "cpu_ids": sorted(online),
            "memory_bytes": meminfo.get("MemTotal"),
            "distances": [10],
            "implicit": True,
        })
    has_cpulist = bool(ids) and os.path.exists(os.path.join(node_dir, "node%d" % ids[0], "cpulist"))
    for node in ids:
        path = os.path.join(node_dir, "node%d" % node)
        listed = cpus_from_list_or_mask(
            os.path.join(path, "cpulist" if has_cpulist else "cpumap"),
            os.path.join(path, "cpumap" if has_cpulist else "cpulist"),
            warnings, "NUMA node %d cpulist" % node, second_is_list=not has_cpulist,
        )
        listed = listed or set()
        offline_listed = listed - online
        if offline_listed:
            warnings.append(
                "NUMA node %d lists CPUs %s that are not online; they are left out"
                % (node, format_cpulist(offline_listed))
            )
        distances = []
        text = sysfs.read(os.path.join(path, "distance"))
        if text:
            try:
                distances = [int(d) for d in text.split()]
            except ValueError:
                distances = []
        match = _MEMTOTAL.search(sysfs.read(os.path.join(path, "meminfo")) or "")
        nodes.append({
            "id": node,
            "cpu_ids": sorted(listed & online),
            "memory_bytes": int(match.group(1)) * 1024 if match else None,
            "distances": distances,
            "implicit": False,
        })

    owner = {}
    overlaps = {}
    for entry in nodes:
        for cpu in entry["cpu_ids"]:
            if cpu in owner:
                overlaps.setdefault((owner[cpu], entry["id"]), []).append(cpu)
            else:
                owner[cpu] = entry["id"]
    for (first, second), shared in sorted(overlaps.items()):
        warnings.append(
            "NUMA nodes %d and %d both list CPUs %s (overlapping cpulists); placement counts them in node %d"
            % (first, second, format_cpulist(shared), first)
        )
    mems = None if allowed_mems is None else set(allowed_mems)
    result = []
    for entry in nodes:
        cpu_ids = entry["cpu_ids"]
        result.append({
            "id": entry["id"],
            "cpus": format_cpulist(cpu_ids),
            "cpu_count": len(cpu_ids),
            "memory_bytes": entry["memory_bytes"],
            "distances": entry["distances"],
            "allowed": True if mems is None else entry["id"] in mems,
            "cpus_allowed": format_cpulist(set(cpu_ids) & allowed_cpus),
            "implicit": entry["implicit"],
        })
    return result


def node_of_cpus(cpus, nodes_cpus):
    """The one node whose CPUs contain all of ``cpus``, else None."""
    if not cpus:
        return None
    hits = [node for node, node_cpus in nodes_cpus.items() if cpus & node_cpus]
    if len(hits) == 1 and cpus <= nodes_cpus[hits[0]]:
        return hits[0]
    return None


def read_memory_total(root):
    """Host memory in bytes from /proc/meminfo, or None."""
    return parse_meminfo(sysfs.read(sysfs.under_root(root, "proc/meminfo"))).get("MemTotal")
