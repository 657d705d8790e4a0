# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPUs: the NVIDIA display-class PCI devices, one dict per GPU (NVML adds to them later).

Part of the topology reader (``topology.gather`` assembles the parts). Every
reader takes ``root`` (``/`` or a captured tree) and appends oddities of the
tree to the caller's ``warnings`` list instead of raising.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inferfleet.gpu.plugins.module_utils.pci import NVIDIA_VENDOR_ID, pci_sort_key


def gpus_from_pci(pci_devices):
    """NVIDIA display-class devices, numbered in PCI bus id order (as NVML/CUDA do)."""
    gpus = []
    for dev in sorted(pci_devices, key=lambda d: pci_sort_key(d["bus_id"])):
        if dev["vendor_id"] != NVIDIA_VENDOR_ID or not dev["class_id"] or not dev["class_id"].startswith("0x03"):
            continue
        gpus.append({
            "index": len(gpus),
            "bus_id": dev["bus_id"],
            "device_id": dev["device_id"],
            "numa_node": dev["numa_node"],
            "local_cpus": dev["local_cpus"],
            "name": None,
            "uuid": None,
            "minor": None,
            "memory_total_bytes": None,
            "nvml_numa_node": None,
            "nvlink_peers": [],
            "mig_mode": None,
        })
    return gpus
