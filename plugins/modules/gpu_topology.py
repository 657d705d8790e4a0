#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: gpu_topology
short_description: Gather CPU, NUMA, PCI, GPU and block device topology facts
version_added: "0.1.0"
description:
  - Reads C(/sys) and C(/proc) of a Linux host (or of a captured tree under O(root))
    and returns the fact C(gpu_topology) that the rest of the collection relies on
    to place model servers on CPUs, NUMA nodes and GPUs.
  - Uses only the Python standard library. When nvidia-ml-py (import name C(pynvml))
    is importable on the target and O(root=/), NVML adds GPU names, UUIDs, memory,
    NUMA node, NVLink peers and MIG mode; its absence is reported in
    C(gpu_topology.nvml), not as an error. psutil is used, when present, only as a
    fallback for the host memory size.
  - Never changes anything; C(changed) is always V(false).
  - Fails only when O(root) is not a Linux sysfs tree. Oddities of the machine
    (a PCI C(numa_node) of -1, overlapping node cpulists, offline CPUs listed in a
    node) are returned as warnings.
author:
  - inferfleet engineers (@inferfleet)
options:
  root:
    description:
      - Directory that holds the C(sys/) and C(proc/) trees to read.
      - V(/) reads the running machine. Any other path reads a capture, for example
        one made by C(hwloc-gather-topology) or a sosreport.
    type: path
    default: /
  include_partitions:
    description:
      - Also list the partitions of every disk in C(block_devices) (with C(kind=partition)).
    type: bool
    default: false
  include_virtual_block_devices:
    description:
      - Also list loop, ram, zram, device-mapper, md and optical devices in C(block_devices).
    type: bool
    default: false
  nvml:
    description:
      - Query NVML through nvidia-ml-py when O(root=/).
      - With another O(root) NVML is never queried (it would describe the live machine, not the tree).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode returns the same facts.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  facts:
    support: full
    description: Sets C(ansible_facts.gpu_topology).
  platform:
    support: full
    platforms: [posix]
    description: Linux only (reads sysfs and procfs).
notes:
  - GPUs are numbered in PCI bus id order, which is how NVML numbers them and how
    CUDA numbers them with C(CUDA_DEVICE_ORDER=PCI_BUS_ID).
  - The placement filter P(inferfleet.gpu.placement#filter) turns this fact into
    per-instance CPU, NUMA and GPU assignments.
  - The full fact schema and the placement contract are in the collection's C(docs/gpu_topology.md).
seealso:
  - plugin: inferfleet.gpu.placement
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Gather the topology of the managed host
  inferfleet.gpu.gpu_topology:

- name: Show the NUMA nodes and the GPUs
  ansible.builtin.debug:
    msg: "{{ ansible_facts.gpu_topology.numa_nodes }} / {{ ansible_facts.gpu_topology.gpus }}"

- name: Read a captured tree instead of the running machine
  inferfleet.gpu.gpu_topology:
    root: /srv/captures/hgx-h100
  delegate_to: localhost

- name: Plan one vLLM instance per 2 GPUs
  ansible.builtin.set_fact:
    vllm_plan: "{{ ansible_facts.gpu_topology | inferfleet.gpu.placement(gpus_per_instance=2) }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    gpu_topology:
      description: The host topology. See docs/gpu_topology.md for every key.
      returned: always
      type: dict
      contains:
        root:
          description: The root that was read.
          type: str
          sample: /
        cpus:
          description:
            - C(online) (cpulist), C(count), C(allowed) (online CPUs the cgroup cpuset and the
              process affinity allow), C(allowed_count), C(offline), C(possible),
              C(threads_per_core), C(cores), C(packages), and C(smt_siblings), one cpulist per
              physical core (online CPUs only).
          type: dict
          sample:
            online: "0-223"
            count: 224
            allowed: "0-223"
            threads_per_core: 2
            smt_siblings: ["0,112", "1,113"]
        numa_nodes:
          description:
            - One entry per NUMA node. C(cpus) holds only online CPUs and is V("") for a
              CPU-less node. Node ids can be sparse. C(allowed) is false for a node the
              cpuset forbids; C(cpus_allowed) is C(cpus) within C(cpus.allowed).
          type: list
          elements: dict
          sample:
            - {id: 0, cpus: "0-55,112-167", cpu_count: 112, memory_bytes: 1081101176832,
               distances: [10, 21], allowed: true, cpus_allowed: "0-55,112-167", implicit: false}
        numa_nodes_allowed:
          description: Nodes the cpuset allows (cpulist syntax), or null when unrestricted.
          type: str
        memory_total_bytes:
          description: MemTotal of the host, in bytes.
          type: int
        pci_devices:
          description:
            - Storage, network, display, co-processor and accelerator PCI devices with
              C(bus_id), C(vendor_id), C(device_id), C(class_id) (24-bit, C(0x030200)),
              C(kind), C(numa_node) (null when unknown), C(local_cpus) and the raw C(sysfs_numa_node).
          type: list
          elements: dict
        gpus:
          description:
            - NVIDIA GPUs in NVML/CUDA order with C(index), C(bus_id), C(device_id), C(numa_node),
              C(local_cpus), C(uuid) and C(minor) (the N of C(/dev/nvidiaN)) from the loaded
              driver's C(/proc/driver/nvidia/gpus/BUS/information) and from NVML (NVML's value wins, a
              difference is a warning; both null while the driver is not loaded) and, from NVML, C(name), C(memory_total_bytes),
              C(nvml_numa_node), C(nvlink_peers) (GPU indices) and C(mig_mode)
              (C({current, pending}) or null).
          type: list
          elements: dict
        gpu_count:
          description: Number of GPUs.
          type: int
        nvswitches:
          description: NVIDIA NVSwitch bridges (PCI class 0x0680) with C(bus_id), C(device_id), C(numa_node).
          type: list
          elements: dict
        nvswitch_count:
          description: Number of NVSwitches; non-zero means the fabric manager is needed.
          type: int
        block_devices:
          description:
            - Whole disks with C(name), C(kind) (nvme, scsi, virtio, mmc, xen, other), C(rotational),
              C(scheduler), C(schedulers), C(numa_node), C(pci_bus_id), C(model), C(size_bytes),
              C(removable), C(virtual) and C(partitions).
          type: list
          elements: dict
        nvml:
          description: C(available), C(error) and C(driver_version) of the NVML query.
          type: dict
          sample: {available: false, error: "nvidia-ml-py (import name pynvml) is not installed on the target"}
        psutil:
          description: C(available) tells whether psutil could be imported on the target.
          type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.inferfleet.gpu.plugins.module_utils.nvml import load_pynvml, merge_nvml, query_nvml
from ansible_collections.inferfleet.gpu.plugins.module_utils.topology import TopologyError, gather

try:
    import psutil

    HAS_PSUTIL = True
except ImportError:
    HAS_PSUTIL = False


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", default="/"),
            include_partitions=dict(type="bool", default=False),
            include_virtual_block_devices=dict(type="bool", default=False),
            nvml=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )


def collect(root, include_partitions=False, include_virtual=False, use_nvml=True, nvml_module=None):
    """The fact and its warnings. ``nvml_module`` overrides the pynvml import (tests)."""
    facts, warnings = gather(root, include_partitions=include_partitions, include_virtual=include_virtual)
    live = root.rstrip("/") == ""
    if not use_nvml:
        facts["nvml"] = {"available": False, "error": "NVML query disabled (nvml=false)", "driver_version": None}
    elif not live:
        facts["nvml"] = {"available": False, "error": "NVML is only queried when root is /", "driver_version": None}
    else:
        nvml, reason = (nvml_module, None) if nvml_module is not None else load_pynvml()
        if nvml is None:
            facts["nvml"] = {"available": False, "error": reason, "driver_version": None}
        else:
            answer = query_nvml(nvml)
            facts["nvml"] = {"available": answer["available"], "error": answer["error"],
                             "driver_version": answer["driver_version"]}
            facts["gpus"] = merge_nvml(facts["gpus"], [s["bus_id"] for s in facts["nvswitches"]], answer, warnings)
            facts["gpu_count"] = len(facts["gpus"])
    facts["psutil"] = {"available": HAS_PSUTIL}
    if facts["memory_total_bytes"] is None and live and HAS_PSUTIL:
        facts["memory_total_bytes"] = int(psutil.virtual_memory().total)
    return facts, warnings


def main():
    module = build_module()
    params = module.params
    try:
        facts, warnings = collect(
            params["root"],
            include_partitions=params["include_partitions"],
            include_virtual=params["include_virtual_block_devices"],
            use_nvml=params["nvml"],
        )
    except TopologyError as exc:
        module.fail_json(msg="root: %s" % exc, root=params["root"])
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, ansible_facts={"gpu_topology": facts})


if __name__ == "__main__":
    main()
