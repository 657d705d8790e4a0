# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readers of a Linux host's topology from sysfs and procfs.

Every function takes ``root``: ``/`` for the live machine, or a captured
tree (hwloc-gather-topology, a sosreport, the test fixtures) that holds
``sys/`` and ``proc/``. Only the Python standard library is used; nothing is
ever written. Oddities of the tree (a ``numa_node`` of -1, node cpulists that
overlap or name offline CPUs, ...) are appended to a ``warnings`` list given
by the caller rather than raised, so a facts module can report them with
``module.warn()``. Only a root that is not a Linux sysfs tree raises
:class:`TopologyError`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import (
    CpuListError,
    format_cpulist,
    parse_cpulist,
    parse_cpumask,
)
from ansible_collections.inferfleet.gpu.plugins.module_utils.nvidia_proc import apply_information, read_gpu_information

NVIDIA_VENDOR_ID = "0x10de"

# PCI base classes (upper byte of the 24-bit class code) reported in
# ``pci_devices``, plus the 16-bit class co-processor (0x0b40).
PCI_BASE_CLASSES = {
    0x01: "storage",
    0x02: "network",
    0x03: "display",
    0x12: "accelerator",
}
PCI_SUBCLASSES = {
    0x0B40: "coprocessor",
}
NVSWITCH_CLASS = 0x0680  # PCI "other bridge", as NVIDIA NVSwitches report

_PCI_BDF = re.compile(r"^([0-9a-fA-F]{4,}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
_CPU_DIR = re.compile(r"^cpu(\d+)$")
_NODE_DIR = re.compile(r"^node(\d+)$")
_MEMTOTAL = re.compile(r"MemTotal:\s+(\d+)")
_MEMINFO_KB = re.compile(r"^(?:Node\s+\d+\s+)?(\w+):\s+(\d+)(?:\s+kB)?\s*$")

# Block devices that are not disks a model's weights can live on.
_VIRTUAL_BLOCK_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "nbd", "sr", "fd", "drbd", "rbd")


class TopologyError(Exception):
    """The root given is not something the readers can work with."""


# --------------------------------------------------------------------------
# small file helpers


def _join(root, rel):
    return os.path.join(root, rel.lstrip("/"))


def _read(path):
    """Contents of a small sysfs/procfs file, stripped, or None if unreadable.

    (os.open/os.read: sysfs attributes are at most a page, and skipping the
    text-file layers halves the cost of the few thousand reads of a big host.)
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except (IOError, OSError):
        return None
    try:
        chunks = [os.read(fd, 65536)]
        # sysfs attributes are one page at most and come in one read;
        # procfs files may need several.
        while chunks[-1] and "/sys/" not in path:
            chunks.append(os.read(fd, 65536))
    except (IOError, OSError):
        return None
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text.strip()


def _read_int(path):
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def _listdir(path):
    try:
        return os.listdir(path)
    except (IOError, OSError):
        return []


def _cpus_from_list_or_mask(list_path, mask_path, warnings=None, what=None, second_is_list=False):
    """CPU ids from a ``*list`` file, or from the hex mask file when absent.

    With ``second_is_list`` the arguments are swapped: the first path is the
    mask and the second the list (to try the file a tree is known to have
    first). Returns None when neither file can be read.
    """
    for path, is_list in ((list_path, not second_is_list), (mask_path, second_is_list)):
        text = _read(path) if path else None
        if text is None:
            continue
        try:
            return set(parse_cpulist(text) if is_list else parse_cpumask(text))
        except CpuListError as exc:
            if warnings is not None:
                warnings.append("%s: %s" % (what or path, exc))
    return None


def parse_meminfo(text):
    """``{key: bytes}`` from /proc/meminfo or a node's meminfo (kB lines)."""
    values = {}
    for line in (text or "").splitlines():
        match = _MEMINFO_KB.match(line.strip())
        if match:
            values[match.group(1)] = int(match.group(2)) * 1024
    return values


def pci_sort_key(bus_id):
    """Sort key for PCI bus ids, numeric per field (domains may exceed 16 bits)."""
    match = _PCI_BDF.match(bus_id or "")
    if not match:
        return (1 << 64, bus_id or "")
    return tuple(int(part, 16) for part in match.groups())


def normalize_bus_id(bus_id):
    """``00000000:07:00.0`` (NVML) -> ``0000:07:00.0`` (sysfs); lower case.

    Domains above 0xffff keep all their digits (``10000:01:00.0``).
    """
    if isinstance(bus_id, bytes):
        bus_id = bus_id.decode("ascii", "replace")
    bus_id = (bus_id or "").strip().rstrip("\x00")
    match = _PCI_BDF.match(bus_id)
    if not match:
        return bus_id.lower()
    domain, bus, dev, func = (int(part, 16) for part in match.groups())
    return "%04x:%02x:%02x.%x" % (domain, bus, dev, func)


# --------------------------------------------------------------------------
# root


def check_root(root):
    """Raise TopologyError unless ``root`` holds a Linux sysfs tree."""
    if not os.path.isdir(root):
        raise TopologyError("root %r does not exist or is not a directory" % (root,))
    cpu_dir = _join(root, "sys/devices/system/cpu")
    if not os.path.isdir(cpu_dir):
        raise TopologyError(
            "root %r is not a Linux sysfs tree: %s is missing (expected a root "
            "holding sys/ and proc/, such as / or a tree made by hwloc-gather-topology)" % (root, cpu_dir)
        )


# --------------------------------------------------------------------------
# CPUs


def read_cpus(root, warnings):
    """Online CPUs, SMT sibling groups and packages.

    Returns a dict with ``online`` (sorted ids), ``possible``, ``offline``
    (possible but not online, like the kernel's own ``offline`` file),
    ``smt_groups`` (list of sorted id lists, online CPUs only, ordered by
    their first CPU), ``packages`` (count) and ``threads_per_core``.
    """
    cpu_dir = _join(root, "sys/devices/system/cpu")
    dirs = set()
    for name in _listdir(cpu_dir):
        match = _CPU_DIR.match(name)
        if match:
            dirs.add(int(match.group(1)))

    online_text = _read(os.path.join(cpu_dir, "online"))
    online = None
    if online_text is not None:
        try:
            online = set(parse_cpulist(online_text))
        except CpuListError as exc:
            warnings.append("%s/online: %s" % (cpu_dir, exc))
    if online is None:
        # Old kernels / captures without the summary file: a CPU directory
        # whose ``online`` file says 0 is offline; cpu0 usually has none.
        online = set(cpu for cpu in dirs if _read(os.path.join(cpu_dir, "cpu%d" % cpu, "online")) != "0")
    if not online:
        warnings.append("no online CPU found under %s" % cpu_dir)

    possible_text = _read(os.path.join(cpu_dir, "possible"))
    try:
        possible = set(parse_cpulist(possible_text)) if possible_text else set(dirs) | online
    except CpuListError:
        possible = set(dirs) | online

    groups = []
    seen = set()
    packages = set()
    # Which sibling file this kernel has, learnt from the first CPU, so a
    # 256-CPU capture does not pay 256 failed opens of a missing file.
    order = [("thread_siblings_list", True), ("core_cpus_list", True), ("thread_siblings", False),
             ("core_cpus", False)]
    if online:
        present = set(_listdir(os.path.join(cpu_dir, "cpu%d" % min(online), "topology")))
        order.sort(key=lambda item: item[0] not in present)
    for cpu in sorted(online):
        if cpu in seen:
            continue
        topo = os.path.join(cpu_dir, "cpu%d" % cpu, "topology")
        package = _read_int(os.path.join(topo, "physical_package_id"))
        if package is not None:
            packages.add(package)
        siblings = None
        for name, is_list in order:
            text = _read(os.path.join(topo, name))
            if text is None:
                continue
            try:
                siblings = set(parse_cpulist(text) if is_list else parse_cpumask(text))
            except CpuListError:
                continue
            break
        group = (siblings or set([cpu])) & online
        group.add(cpu)
        group -= seen
        seen |= group
        groups.append(sorted(group))
    groups.sort(key=lambda g: g[0])
    return {
        "online": sorted(online),
        "possible": sorted(possible | online),
        "offline": sorted((possible | dirs) - online),
        "smt_groups": groups,
        "packages": len(packages) if packages else None,
        "threads_per_core": max(len(g) for g in groups) if groups else 0,
    }


# --------------------------------------------------------------------------
# cgroup / affinity restrictions


def _parse_mounts(root):
    """List of (mountpoint, fstype, options set) from mountinfo or mounts."""
    mounts = []
    text = _read(_join(root, "proc/self/mountinfo"))
    if text:
        for line in text.splitlines():
            left, sep, right = line.partition(" - ")
            if not sep:
                continue
            fields, rfields = left.split(), right.split()
            if len(fields) < 5 or len(rfields) < 3:
                continue
            options = set(fields[5].split(",")) | set(rfields[2].split(",")) if len(fields) > 5 else set(rfields[2].split(","))
            mounts.append((_unescape_mount(fields[4]), rfields[0], options))
        return mounts
    text = _read(_join(root, "proc/mounts"))
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) >= 4:
            mounts.append((_unescape_mount(fields[1]), fields[2], set(fields[3].split(","))))
    return mounts


def _unescape_mount(path):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _cgroup_paths(root):
    """(cgroup v1 cpuset path, cgroup v2 path) of the reading process."""
    v1 = v2 = None
    text = _read(_join(root, "proc/self/cgroup"))
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hier, controllers, path = parts
        if hier == "0" and controllers == "":
            v2 = path
        elif "cpuset" in controllers.split(","):
            v1 = path
    legacy = _read(_join(root, "proc/self/cpuset"))
    if legacy:
        if v1 is None:
            v1 = legacy
        if v2 is None:
            v2 = legacy
    return v1, v2


def read_cpuset(root):
    """The cgroup cpuset of the reading process: (cpus, mems, source) or Nones.

    Handles the legacy ``cpuset`` filesystem, cgroup v1 (with or without
    ``noprefix``) and cgroup v2 (walking up to the nearest cgroup that has
    the cpuset controller enabled).
    """
    v1_path, v2_path = _cgroup_paths(root)
    for mountpoint, fstype, options in _parse_mounts(root):
        if fstype == "cpuset" or (fstype == "cgroup" and "cpuset" in options):
            if v1_path is None:
                continue
            prefix = "" if (fstype == "cpuset" or "noprefix" in options) else "cpuset."
            base = _join(_join(root, mountpoint), v1_path)
            cpus = _read(os.path.join(base, prefix + "effective_cpus"))
            if cpus is None:
                cpus = _read(os.path.join(base, prefix + "cpus"))
            mems = _read(os.path.join(base, prefix + "effective_mems"))
            if mems is None:
                mems = _read(os.path.join(base, prefix + "mems"))
            if cpus is not None or mems is not None:
                return cpus, mems, os.path.normpath(os.path.join(mountpoint, v1_path.lstrip("/")))
        elif fstype == "cgroup2" and v2_path is not None:
            rel = v2_path.strip("/")
            while True:
                base = _join(_join(root, mountpoint), rel)
                cpus = _read(os.path.join(base, "cpuset.cpus.effective"))
                mems = _read(os.path.join(base, "cpuset.mems.effective"))
                if cpus is not None or mems is not None:
                    return cpus, mems, "/" + os.path.join(mountpoint.strip("/"), rel).rstrip("/")
                if not rel:
                    break
                rel = os.path.dirname(rel)
    return None, None, None


def read_allowed(root, online, warnings):
    """CPUs and NUMA nodes the reading process may use.

    ``cpus`` = online ∩ cgroup cpuset ∩ the process affinity
    (``Cpus_allowed_list`` of /proc/self/status, when present).
    ``mems`` is None when no cpuset restriction on memory nodes is known.
    """
    cpus = set(online)
    mems = None
    sources = []
    cg_cpus, cg_mems, where = read_cpuset(root)
    if cg_cpus is not None:
        try:
            cpus &= set(parse_cpulist(cg_cpus))
            sources.append("cgroup %s" % where)
        except CpuListError as exc:
            warnings.append("cpuset %s: %s" % (where, exc))
    if cg_mems is not None:
        try:
            mems = set(parse_cpulist(cg_mems))
        except CpuListError as exc:
            warnings.append("cpuset %s: %s" % (where, exc))
    status = _read(_join(root, "proc/self/status"))
    for line in (status or "").splitlines():
        key, _sep, value = line.partition(":")
        if key == "Cpus_allowed_list":
            try:
                cpus &= set(parse_cpulist(value))
                sources.append("affinity")
            except CpuListError:
                pass
    if online and not cpus:
        warnings.append("the cpuset allows none of the online CPUs %s; using all online CPUs" % format_cpulist(online))
        cpus = set(online)
    return {"cpus": sorted(cpus), "mems": None if mems is None else sorted(mems), "source": ", ".join(sources) or None}


# --------------------------------------------------------------------------
# NUMA nodes


def read_numa_nodes(root, online, allowed_cpus, allowed_mems, warnings):
    """NUMA nodes: ``[{id, cpus, cpu_ids, memory_bytes, distances, allowed, cpus_allowed}]``.

    ``cpus`` holds only online CPUs ("" for a CPU-less node). A kernel without
    NUMA (no node directory) is reported as a single node 0 holding every
    online CPU, as hwloc does.
    """
    node_dir = _join(root, "sys/devices/system/node")
    online = set(online)
    allowed_cpus = set(allowed_cpus)
    ids = []
    for name in _listdir(node_dir):
        match = _NODE_DIR.match(name)
        if match:
            ids.append(int(match.group(1)))
    ids.sort()
    nodes = []
    if not ids:
        meminfo = parse_meminfo(_read(_join(root, "proc/meminfo")))
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
        listed = _cpus_from_list_or_mask(
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
        text = _read(os.path.join(path, "distance"))
        if text:
            try:
                distances = [int(d) for d in text.split()]
            except ValueError:
                distances = []
        match = _MEMTOTAL.search(_read(os.path.join(path, "meminfo")) or "")
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


# --------------------------------------------------------------------------
# PCI


def _node_of_cpus(cpus, nodes_cpus):
    """The one node whose CPUs contain all of ``cpus``, else None."""
    if not cpus:
        return None
    hits = [node for node, node_cpus in nodes_cpus.items() if cpus & node_cpus]
    if len(hits) == 1 and cpus <= nodes_cpus[hits[0]]:
        return hits[0]
    return None


def _class_kind(class_code):
    if class_code is None:
        return None
    if (class_code >> 8) in PCI_SUBCLASSES:
        return PCI_SUBCLASSES[class_code >> 8]
    return PCI_BASE_CLASSES.get(class_code >> 16)


def _pci_numa(path, name, nodes_cpus, online, warnings, report):
    """(numa_node, sysfs numa_node, local CPUs) of one PCI device directory.

    ``report``: add warnings for oddities (only for devices that are reported).
    """
    node_ids = nodes_cpus
    sys_node = _read_int(os.path.join(path, "numa_node"))
    local = _cpus_from_list_or_mask(
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
        numa_node = _node_of_cpus(local, nodes_cpus)
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
    pci_dir = _join(root, "sys/bus/pci/devices")
    online = set(online)
    nodes_cpus = dict((n["id"], set(parse_cpulist(n["cpus"]))) for n in numa_nodes)
    devices, nvswitches, known, others = [], [], {}, {}
    for name in sorted(_listdir(pci_dir), key=pci_sort_key):
        path = os.path.join(pci_dir, name)
        bus_id = normalize_bus_id(name)
        class_text = _read(os.path.join(path, "class"))
        try:
            class_code = int(class_text, 16) if class_text else None
        except ValueError:
            class_code = None
        kind = _class_kind(class_code)
        maybe_switch = class_code is not None and (class_code >> 8) == NVSWITCH_CLASS
        if not (all_classes or kind is not None or class_code is None or maybe_switch):
            others[bus_id] = (path, name)
            continue
        vendor = _read(os.path.join(path, "vendor"))
        vendor = vendor.lower() if vendor else None
        is_nvswitch = maybe_switch and vendor == NVIDIA_VENDOR_ID
        listed = all_classes or kind is not None or class_code is None
        if not (listed or is_nvswitch):
            others[bus_id] = (path, name)
            continue
        numa_node, sys_node, local = _pci_numa(path, name, nodes_cpus, online, warnings, True)
        known[bus_id] = numa_node
        device = _read(os.path.join(path, "device"))
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
        if is_nvswitch:
            nvswitches.append(entry)
        if listed:
            devices.append(entry)

    def locality(bus_id):
        if bus_id not in known and bus_id in others:
            path, name = others[bus_id]
            known[bus_id] = _pci_numa(path, name, nodes_cpus, online, warnings, False)[0]
        return known.get(bus_id)

    return devices, nvswitches, locality


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


# --------------------------------------------------------------------------
# block devices


# Kernel name prefix -> kind, first match wins ("zram" before "ram").
_BLOCK_KIND_PREFIXES = (
    ("nvme", "nvme"), ("loop", "loop"), ("zram", "zram"), ("ram", "ram"), ("dm-", "dm"),
    ("md", "md"), ("sr", "cdrom"), ("mmcblk", "mmc"), ("xvd", "xen"),
)


def _block_kind(name, target):
    for prefix, kind in _BLOCK_KIND_PREFIXES:
        if name.startswith(prefix):
            return kind
    if "/virtio" in target or name.startswith("vd"):
        return "virtio"
    if re.search(r"/host\d+/", target) or name.startswith("sd"):
        return "scsi"
    return "other"


def _parse_scheduler(text):
    if text is None:
        return None, []
    names, active = [], None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            word = word[1:-1]
            active = word
        names.append(word)
    if active is None and len(names) == 1:
        active = names[0]
    return active, names


def _pci_ancestor(target):
    """Nearest PCI bus id in a resolved sysfs device path."""
    found = None
    for part in target.split("/"):
        if _PCI_BDF.match(part):
            found = normalize_bus_id(part)
    return found


def read_block_devices(root, locality, include_partitions=False, include_virtual=False):
    """Whole disks under /sys/block (NVMe, SCSI, virtio...), with locality.

    ``locality(bus_id)`` returns the NUMA node of a PCI device (see
    :func:`read_pci_devices`).
    """
    block_dir = _join(root, "sys/block")
    disks = []
    for name in sorted(_listdir(block_dir)):
        link = os.path.join(block_dir, name)
        try:
            target = os.readlink(link)
        except (IOError, OSError):
            target = ""
        target = os.path.normpath(os.path.join(block_dir, target)) if target else link
        kind = _block_kind(name, target)
        virtual = "/devices/virtual/" in target or kind in ("loop", "zram", "ram", "dm", "md", "cdrom") \
            or name.startswith(_VIRTUAL_BLOCK_PREFIXES)
        if virtual and not include_virtual:
            continue
        active, available = _parse_scheduler(_read(os.path.join(link, "queue", "scheduler")))
        rotational = _read(os.path.join(link, "queue", "rotational"))
        sectors = _read_int(os.path.join(link, "size"))
        removable = _read(os.path.join(link, "removable"))
        model = _read(os.path.join(link, "device", "model"))
        bus_id = _pci_ancestor(target)
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
        for child in sorted(_listdir(link)):
            if child.startswith(name) and os.path.exists(os.path.join(link, child, "partition")):
                parts.append(child)
        disk["partitions"] = parts
        disks.append(disk)
        if include_partitions:
            for part in parts:
                psectors = _read_int(os.path.join(link, part, "size"))
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


# --------------------------------------------------------------------------
# everything


def read_memory_total(root):
    """Host memory in bytes from /proc/meminfo, or None."""
    return parse_meminfo(_read(_join(root, "proc/meminfo"))).get("MemTotal")


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
