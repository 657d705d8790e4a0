# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCI devices of the classes that matter for inference hosts, with their NUMA locality.

Part of the topology reader (``topology.gather`` assembles the parts). Every
reader takes ``root`` (``/`` or a captured tree) and appends oddities of the
tree to the caller's ``warnings`` list instead of raising.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.inferfleet.gpu.plugins.module_utils import sysfs
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import format_cpulist, parse_cpulist
from ansible_collections.inferfleet.gpu.plugins.module_utils.pci import NVSWITCH_CLASS, class_kind, is_nvswitch, normalize_bus_id, pci_sort_key
from ansible_collections.inferfleet.gpu.plugins.module_utils.topology_cpus import cpus_from_list_or_mask
from ansible_collections.inferfleet.gpu.plugins.module_utils.topology_numa import node_of_cpus


def _pci_numa(path, name, nodes_cpus, online, warnings, report):
    """(numa_node, sysfs numa_node, local CPUs) of one PCI device directory.

    ``report``: add warnings for oddities (only for devices that are reported).
    """
    node_ids = nodes_cpus
    sys_node = sysfs.read_int(os.path.join(path, "numa_node"))
    local = cpus_from_list_or_mask(
        os.path.join(path, "local_cpulist"), os.path.join(path, "local_cpus"),
        warnings if report else None, "PCI %s local_cpus" % name,
    )
    local = (local & online) if local is not None else None
    numa_node = None
    if sys_node is not None and sys_node >= 0:
        if node_ids and sys_node not in node_ids:
            if report:
                warnings.append("PCI %s: numa_node %d names no NUMA node of this host" % (name, sys_node))
        else:
            numa_node = sys_node
            if report and local and nodes_cpus.get(sys_node) and not local <= nodes_cpus[sys_node]:
                warnings.append(
                    "PCI %s: sysfs numa_node is %d but its local CPUs %s are not all on that node"
                    % (name, sys_node, format_cpulist(local))
                )
    if numa_node is None and local:
        numa_node = node_of_cpus(local, nodes_cpus)
        if report and numa_node is None and sys_node is not None and sys_node < 0 and len(node_ids) > 1:
            warnings.append(
                "PCI %s: numa_node is %d and its local CPUs %s span several NUMA nodes; "
                "its locality is unknown" % (name, sys_node, format_cpulist(local))
            )
    if numa_node is None and len(node_ids) == 1 and not (sys_node is not None and sys_node >= 0):
        numa_node = next(iter(node_ids))
    return numa_node, sys_node, local


def read_pci_devices(root, numa_nodes, online, warnings, all_classes=False):
    """PCI devices of the classes that matter for inference hosts.

    Returns ``(devices, nvswitches, locality)``: ``locality(bus_id)`` gives
    the resolved NUMA node of any PCI device (other classes are read only
    when asked, for the controllers of block devices).
    """
    pci_dir = sysfs.under_root(root, "sys/bus/pci/devices")
    online = set(online)
    nodes_cpus = dict((n["id"], set(parse_cpulist(n["cpus"]))) for n in numa_nodes)
    devices, nvswitches, known, others = [], [], {}, {}
    for name in sorted(sysfs.listdir(pci_dir), key=pci_sort_key):
        path = os.path.join(pci_dir, name)
        bus_id = normalize_bus_id(name)
        class_text = sysfs.read(os.path.join(path, "class"))
        try:
            class_code = int(class_text, 16) if class_text else None
        except ValueError:
            class_code = None
        kind = class_kind(class_code)
        maybe_switch = class_code is not None and (class_code >> 8) == NVSWITCH_CLASS
        if not (all_classes or kind is not None or class_code is None or maybe_switch):
            others[bus_id] = (path, name)
            continue
        vendor = sysfs.read(os.path.join(path, "vendor"))
        vendor = vendor.lower() if vendor else None
        switch = is_nvswitch(class_code, vendor)
        listed = all_classes or kind is not None or class_code is None
        if not (listed or switch):
            others[bus_id] = (path, name)
            continue
        numa_node, sys_node, local = _pci_numa(path, name, nodes_cpus, online, warnings, True)
        known[bus_id] = numa_node
        device = sysfs.read(os.path.join(path, "device"))
        entry = {
            "bus_id": bus_id,
            "vendor_id": vendor,
            "device_id": device.lower() if device else None,
            "class_id": "0x%06x" % class_code if class_code is not None else None,
            "kind": kind,
            "numa_node": numa_node,
            "local_cpus": format_cpulist(local) if local is not None else None,
            "sysfs_numa_node": sys_node,
        }
        if switch:
            nvswitches.append(entry)
        if listed:
            devices.append(entry)

    def locality(bus_id):
        if bus_id not in known and bus_id in others:
            path, name = others[bus_id]
            known[bus_id] = _pci_numa(path, name, nodes_cpus, online, warnings, False)[0]
        return known.get(bus_id)

    return devices, nvswitches, locality
