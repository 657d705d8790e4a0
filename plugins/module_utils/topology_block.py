# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Block devices: whole disks (and partitions when asked) with kind, queue and NUMA locality.

Part of the topology reader (``topology.gather`` assembles the parts). Every
reader takes ``root`` (``/`` or a captured tree) and appends oddities of the
tree to the caller's ``warnings`` list instead of raising.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.inferfleet.gpu.plugins.module_utils import sysfs
from ansible_collections.inferfleet.gpu.plugins.module_utils.blockdev import VIRTUAL_KINDS, kind_of
from ansible_collections.inferfleet.gpu.plugins.module_utils.pci import pci_ancestor


def read_block_devices(root, locality, include_partitions=False, include_virtual=False):
    """Whole disks under /sys/block (NVMe, SCSI, virtio...), with locality.

    ``locality(bus_id)`` returns the NUMA node of a PCI device (see
    :func:`read_pci_devices`).
    """
    block_dir = sysfs.under_root(root, "sys/block")
    disks = []
    for name in sorted(sysfs.listdir(block_dir)):
        link = os.path.join(block_dir, name)
        try:
            target = os.readlink(link)
        except (IOError, OSError):
            target = ""
        target = os.path.normpath(os.path.join(block_dir, target)) if target else link
        kind = kind_of(name)
        virtual = "/devices/virtual/" in target or kind in VIRTUAL_KINDS
        if virtual and not include_virtual:
            continue
        active, available = sysfs.read_choice(os.path.join(link, "queue", "scheduler"))
        rotational = sysfs.read(os.path.join(link, "queue", "rotational"))
        sectors = sysfs.read_int(os.path.join(link, "size"))
        removable = sysfs.read(os.path.join(link, "removable"))
        model = sysfs.read(os.path.join(link, "device", "model"))
        bus_id = pci_ancestor(target)
        disk = {
            "name": name,
            "kind": kind,
            "virtual": virtual,
            "rotational": None if rotational is None else rotational == "1",
            "scheduler": active,
            "schedulers": available,
            "numa_node": locality(bus_id) if bus_id else None,
            "pci_bus_id": bus_id,
            "model": model or None,
            "size_bytes": None if sectors is None else sectors * 512,
            "removable": None if removable is None else removable == "1",
            "partitions": [],
        }
        parts = []
        for child in sorted(sysfs.listdir(link)):
            if child.startswith(name) and os.path.exists(os.path.join(link, child, "partition")):
                parts.append(child)
        disk["partitions"] = parts
        disks.append(disk)
        if include_partitions:
            for part in parts:
                psectors = sysfs.read_int(os.path.join(link, part, "size"))
                disks.append({
                    "name": part,
                    "kind": "partition",
                    "parent": name,
                    "virtual": virtual,
                    "rotational": disk["rotational"],
                    "scheduler": active,
                    "schedulers": available,
                    "numa_node": disk["numa_node"],
                    "pci_bus_id": bus_id,
                    "model": disk["model"],
                    "size_bytes": None if psectors is None else psectors * 512,
                    "removable": disk["removable"],
                    "partitions": [],
                })
    return disks
