# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readers of a Linux host's topology from sysfs and procfs: the ``gpu_topology`` fact.

Every function takes ``root``: ``/`` for the live machine, or a captured
tree (hwloc-gather-topology, a sosreport, the test fixtures) that holds
``sys/`` and ``proc/``. Only the Python standard library is used; nothing is
ever written. Oddities of the tree (a ``numa_node`` of -1, node cpulists that
overlap or name offline CPUs, ...) are appended to a ``warnings`` list given
by the caller rather than raised, so a facts module can report them with
``module.warn()``. Only a root that is not a Linux sysfs tree raises
:class:`TopologyError`.

:func:`gather` assembles the parts, one file per seam:
``topology_cpus`` (online CPUs, SMT siblings), ``topology_cgroup`` (the
cpuset and affinity the reader may use), ``topology_numa`` (nodes, memory),
``topology_pci`` (PCI devices and their locality), ``topology_gpus`` (one
dict per GPU), ``topology_block`` (disks). File access is ``sysfs``; PCI ids
are ``pci``; block-device kinds are ``blockdev``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.inferfleet.gpu.plugins.module_utils import sysfs
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import format_cpulist
from ansible_collections.inferfleet.gpu.plugins.module_utils.nvidia_proc import apply_information, read_gpu_information
from ansible_collections.inferfleet.gpu.plugins.module_utils.topology_block import read_block_devices
from ansible_collections.inferfleet.gpu.plugins.module_utils.topology_cgroup import read_allowed
from ansible_collections.inferfleet.gpu.plugins.module_utils.topology_cpus import read_cpus
from ansible_collections.inferfleet.gpu.plugins.module_utils.topology_gpus import gpus_from_pci
from ansible_collections.inferfleet.gpu.plugins.module_utils.topology_numa import read_memory_total, read_numa_nodes
from ansible_collections.inferfleet.gpu.plugins.module_utils.topology_pci import read_pci_devices


class TopologyError(Exception):
    """The root given is not something the readers can work with."""


def check_root(root):
    """Raise TopologyError unless ``root`` holds a Linux sysfs tree."""
    if not os.path.isdir(root):
        raise TopologyError("root %r does not exist or is not a directory" % (root,))
    cpu_dir = sysfs.under_root(root, "sys/devices/system/cpu")
    if not os.path.isdir(cpu_dir):
        raise TopologyError(
            "root %r is not a Linux sysfs tree: %s is missing (expected a root "
            "holding sys/ and proc/, such as / or a tree made by hwloc-gather-topology)" % (root, cpu_dir)
        )


def gather(root="/", include_partitions=False, include_virtual=False, warnings=None):
    """The whole ``gpu_topology`` fact (without NVML), and the warnings list.

    Raises TopologyError when ``root`` is not a Linux sysfs tree.
    """
    if warnings is None:
        warnings = []
    check_root(root)
    cpus = read_cpus(root, warnings)
    allowed = read_allowed(root, cpus["online"], warnings)
    numa_nodes = read_numa_nodes(root, cpus["online"], allowed["cpus"], allowed["mems"], warnings)
    pci_devices, nvswitches, locality = read_pci_devices(root, numa_nodes, cpus["online"], warnings)
    gpus = apply_information(gpus_from_pci(pci_devices), read_gpu_information(root, warnings), warnings)
    block_devices = read_block_devices(root, locality, include_partitions, include_virtual)
    memory_total = read_memory_total(root)
    node_memory = [n["memory_bytes"] for n in numa_nodes if n["memory_bytes"] is not None]
    if memory_total is None and node_memory:
        memory_total = sum(node_memory)
    elif memory_total and node_memory and not numa_nodes[0]["implicit"]:
        total_nodes = sum(node_memory)
        if abs(total_nodes - memory_total) > 0.1 * memory_total:
            warnings.append(
                "the NUMA nodes hold %d bytes of memory but /proc/meminfo says MemTotal is %d bytes"
                % (total_nodes, memory_total)
            )
    online = cpus["online"]
    facts = {
        "root": root,
        "cpus": {
            "online": format_cpulist(online),
            "count": len(online),
            "offline": format_cpulist(cpus["offline"]),
            "possible": format_cpulist(cpus["possible"]),
            "allowed": format_cpulist(allowed["cpus"]),
            "allowed_count": len(allowed["cpus"]),
            "allowed_source": allowed["source"],
            "threads_per_core": cpus["threads_per_core"],
            "cores": len(cpus["smt_groups"]),
            "packages": cpus["packages"],
            "smt_siblings": [format_cpulist(group) for group in cpus["smt_groups"]],
        },
        "numa_nodes": numa_nodes,
        "numa_nodes_allowed": allowed["mems"] if allowed["mems"] is None else format_cpulist(allowed["mems"]),
        "memory_total_bytes": memory_total,
        "pci_devices": pci_devices,
        "gpus": gpus,
        "gpu_count": len(gpus),
        "nvswitches": [{"bus_id": s["bus_id"], "device_id": s["device_id"], "numa_node": s["numa_node"]}
                       for s in nvswitches],
        "nvswitch_count": len(nvswitches),
        "block_devices": block_devices,
        "nvml": {"available": False, "error": "not queried"},
    }
    return facts, warnings
