# -*- coding: utf-8 -*-
"""Synthetic sysfs/procfs trees of GPU servers, for tests (a stand-in: no GPU here).

No machine used for development or CI has a GPU, so these trees are built
from the facts transcribed in ``tests/fixtures/nvidia/nvidia-smi-topo-derived.json``
(per-GPU CPU affinity and NUMA node of real systems, by their ``id``) plus
public PCI ids. They hold just what ``plugins/module_utils/topology.py``
reads: CPUs with SMT siblings, NUMA nodes with meminfo, PCI devices with
class/vendor/device/numa_node/local_cpu{list,s}, block devices, /proc/meminfo.

API (used by the gpu_topology tests and by the nvidia_driver tests for the
fabric-manager decision)::

    from topology_trees import build_tree, LAYOUTS
    root = build_tree(tmp_path, "hgx-h100")          # -> Path of the tree root
    root = build_tree(tmp_path, "pcie-l40s", name="x")

Layouts:

``hgx-h100``
    HGX H100 SXM (JSON id ``hgx-h100-nccl1264``): 2 sockets x 56 cores x 2
    threads = 224 CPUs, 2 NUMA nodes, GPUs 0-3 local to 0-55,112-167 (node 0)
    and 4-7 to 56-111,168-223 (node 1), 4 NVSwitches, 8 ConnectX-7 NICs, two
    NVMe disks, one of them behind Intel VMD (PCI domain 10000, numa_node -1,
    only the local_cpus mask): the reader must place it from its CPUs.
``dgx-a100-nps4``
    DGX A100 40GB in NPS4 mode (JSON id ``dgx-a100-40gb-nccl1505``): 256 CPUs,
    8 NUMA nodes (node k = CPUs 16k..16k+15 and 128+16k..128+16k+15), GPU0/1
    on node 3, GPU2/3 on node 1 (from the JSON), GPU4/5 on node 7 (the JSON's
    truncated row starts 112-127,240-25..) and GPU6/7 on node 5 (the NPS4
    pattern of ``hgx-a100-nps4-nccl1435``), 6 NVSwitches, real DGX A100 bus ids
    (GPU0 at 0000:07:00.0 as in the JSON's NCCL dump), one NIC with numa_node -1.
``pcie-l40s``
    8 x L40S on PCIe, no NVLink and no NVSwitch, with the CPU/NUMA affinity of
    the 8-GPU PCIe server of JSON id ``8x-rtx4090-gpuallocator17`` (224 CPUs, 2
    nodes), a SATA SSD and a rotational SAS disk.
``gh200``
    Grace Hopper (JSON id ``gh200-lscpu-xpuperf129``): 72 CPUs on node 0 and
    CPU-less nodes 1-8 (node 1 = the GPU's HBM), one GPU in PCI domain 0009.
"""

import json
import os
from pathlib import Path

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import format_cpulist, format_cpumask, parse_cpulist

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOPO_JSON = FIXTURES / "nvidia" / "nvidia-smi-topo-derived.json"

NVIDIA = "0x10de"


# The trees are written in the kernel's own cpulist format, with the
# collection's formatters/parser (themselves tested on real captured trees).
_cpulist = format_cpulist
_parse = parse_cpulist


_mask = format_cpumask


def _systems():
    with open(TOPO_JSON) as handle:
        return dict((s["id"], s) for s in json.load(handle)["systems"])


def _gpu_affinity(system_id, count, fill=None):
    """[(cpus, numa)] for GPUs 0..count-1 from the JSON, completed by ``fill``."""
    rows = dict((g["gpu"], g) for g in _systems()[system_id]["gpus"])
    out = []
    for index in range(count):
        if index in rows and "numa_affinity" in rows[index]:
            out.append((rows[index]["cpu_affinity"], rows[index]["numa_affinity"]))
        else:
            out.append(fill[index])
    return out


def _gpus(bus_ids, device, affinity):
    """The GPUs' PCI functions (NVIDIA ``device``, 3D controller class) at ``bus_ids``, each with
    its (cpulist, NUMA node) from ``affinity`` (as :func:`_gpu_affinity` gives it)."""
    return [dict(bus_id=bus, vendor=NVIDIA, device=device, cls="0x030200", numa_node=node, local=_parse(cpus))
            for bus, (cpus, node) in zip(bus_ids, affinity, strict=True)]


def _two_socket(cores_per_socket, threads=2):
    """Nodes of a 2-socket box numbered like Linux does (all first threads, then second)."""
    total_cores = 2 * cores_per_socket
    nodes = {}
    for node in range(2):
        first = set(range(node * cores_per_socket, (node + 1) * cores_per_socket))
        cpus = set(first)
        for thread in range(1, threads):
            cpus |= set(c + thread * total_cores for c in first)
        nodes[node] = cpus
    return nodes, total_cores


def _hgx_h100():
    nodes, cores = _two_socket(56)
    aff = _gpu_affinity("hgx-h100-nccl1264", 8)
    gpu_bus = ["0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
               "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0"]
    nic_bus = ["0000:19:00.0", "0000:2b:00.0", "0000:3b:00.0", "0000:5e:00.0",
               "0000:9b:00.0", "0000:ac:00.0", "0000:bb:00.0", "0000:dc:00.0"]
    pci = _gpus(gpu_bus, "0x2330", aff)
    for i, bus in enumerate(nic_bus):
        pci.append(dict(bus_id=bus, vendor="0x15b3", device="0x1021", cls="0x020700",
                        numa_node=0 if i < 4 else 1, local=nodes[0 if i < 4 else 1]))
    for i in range(4):
        pci.append(dict(bus_id="0000:%02x:00.0" % (0x05 + i), vendor=NVIDIA, device="0x22a3", cls="0x068000",
                        numa_node=0, local=nodes[0]))
    pci.append(dict(bus_id="0000:8a:00.0", vendor="0x144d", device="0xa824", cls="0x010802",
                    numa_node=1, local=nodes[1]))
    # NVMe behind Intel VMD: 32-bit PCI domain, numa_node -1, mask only.
    pci.append(dict(bus_id="10000:01:00.0", vendor="0x144d", device="0xa824", cls="0x010802",
                    numa_node=-1, local=nodes[0], no_cpulist=True,
                    parent="pci0000:00/0000:00:0e.0/pci10000:00/10000:00:02.0"))
    pci.append(dict(bus_id="0000:00:0e.0", vendor="0x8086", device="0x28c0", cls="0x010400",
                    numa_node=0, local=nodes[0]))
    block = [
        dict(name="nvme0n1", kind="nvme", bus_id="0000:8a:00.0", rotational=0, size=3840755982336,
             model="SAMSUNG MZQL23T8HCLS-00A07", scheduler="[none] mq-deadline kyber bfq", partitions=2),
        dict(name="nvme1n1", kind="nvme", bus_id="10000:01:00.0", rotational=0, size=960197124096,
             model="SAMSUNG MZ1L2960HCJR-00A07", scheduler="[none] mq-deadline kyber bfq", partitions=3),
    ]
    return dict(source="hgx-h100-nccl1264", cores=cores, threads=2, nodes=nodes,
                node_memory=1081101176832, pci=pci, block=block)


def _dgx_a100_nps4():
    cores = 128
    nodes = {}
    for node in range(8):
        first = set(range(16 * node, 16 * node + 16))
        nodes[node] = first | set(c + cores for c in first)
    fill = {4: ("112-127,240-255", 7), 5: ("112-127,240-255", 7),
            6: ("80-95,208-223", 5), 7: ("80-95,208-223", 5)}
    aff = _gpu_affinity("dgx-a100-40gb-nccl1505", 8, fill)
    gpu_bus = ["0000:07:00.0", "0000:0f:00.0", "0000:47:00.0", "0000:4e:00.0",
               "0000:87:00.0", "0000:90:00.0", "0000:b7:00.0", "0000:bd:00.0"]
    pci = _gpus(gpu_bus, "0x20b0", aff)
    for i in range(6):
        pci.append(dict(bus_id="0000:%02x:00.0" % (0xc4 + i), vendor=NVIDIA, device="0x1af1", cls="0x068000",
                        numa_node=5, local=nodes[5]))
    # mlx5 NIC under <cpu numaid=0> in the JSON's NCCL dump; here the BIOS gave -1.
    pci.append(dict(bus_id="0000:61:00.0", vendor="0x15b3", device="0x101b", cls="0x020700",
                    numa_node=-1, local=nodes[0]))
    pci.append(dict(bus_id="0000:22:00.0", vendor="0x144d", device="0xa824", cls="0x010802",
                    numa_node=2, local=nodes[2]))
    block = [dict(name="nvme0n1", kind="nvme", bus_id="0000:22:00.0", rotational=0, size=3840755982336,
                  model="SAMSUNG MZWLJ3T8HBLS-00007", scheduler="[none] mq-deadline", partitions=1)]
    return dict(source="dgx-a100-40gb-nccl1505", cores=cores, threads=2, nodes=nodes,
                node_memory=135089532928, pci=pci, block=block)


def _pcie_l40s():
    nodes, cores = _two_socket(56)
    aff = _gpu_affinity("8x-rtx4090-gpuallocator17", 8)
    gpu_bus = ["0000:1b:00.0", "0000:2c:00.0", "0000:3d:00.0", "0000:4e:00.0",
               "0000:9c:00.0", "0000:ad:00.0", "0000:be:00.0", "0000:cf:00.0"]
    pci = _gpus(gpu_bus, "0x26b9", aff)
    pci.append(dict(bus_id="0000:00:17.0", vendor="0x8086", device="0xa182", cls="0x010601",
                    numa_node=0, local=nodes[0]))
    pci.append(dict(bus_id="0000:31:00.0", vendor="0x1000", device="0x00e6", cls="0x010700",
                    numa_node=0, local=nodes[0]))
    block = [
        dict(name="sda", kind="scsi", bus_id="0000:00:17.0", rotational=0, size=480103981056,
             model="INTEL SSDSC2KB48", scheduler="none [mq-deadline] kyber bfq", partitions=3),
        dict(name="sdb", kind="scsi", bus_id="0000:31:00.0", rotational=1, size=16000900661248,
             model="ST16000NM004J", scheduler="none [mq-deadline] kyber bfq", partitions=1),
    ]
    return dict(source="8x-rtx4090-gpuallocator17", cores=cores, threads=2, nodes=nodes,
                node_memory=540550584320, pci=pci, block=block)


def _gh200():
    """GH200 (JSON id ``gh200-lscpu-xpuperf129``): node 0 = CPUs 0-71, nodes 1-8 CPU-less.

    The Hopper GPU's PCI function sits in domain 0009 on node 0; its HBM is
    the CPU-less node 1 (what NVML's NumaNodeId reports); nodes 2-8 are the
    empty nodes the driver reserves for MIG memory partitions.
    """
    system = _systems()["gh200-lscpu-xpuperf129"]
    assert "node0 CPUs 0-71" in system["numa"]
    nodes = dict((n, set()) for n in range(9))
    nodes[0] = set(range(72))
    memory = dict((n, 0) for n in range(9))
    memory[0] = 515396075520   # 480 GiB LPDDR5X
    memory[1] = 102005473280   # 95 GiB HBM3 of the GPU
    pci = [dict(bus_id="0009:01:00.0", vendor=NVIDIA, device="0x2342", cls="0x030200",
                numa_node=0, local=nodes[0])]
    pci.append(dict(bus_id="0008:01:00.0", vendor="0x144d", device="0xa80a", cls="0x010802",
                    numa_node=0, local=nodes[0]))
    block = [dict(name="nvme0n1", kind="nvme", bus_id="0008:01:00.0", rotational=0, size=1920383410176,
                  model="SAMSUNG MZTL21T9HCLS-00A07", scheduler="[none] mq-deadline", partitions=2)]
    return dict(source="gh200-lscpu-xpuperf129", cores=72, threads=1, packages=1, nodes=nodes,
                node_memory=memory, pci=pci, block=block)


LAYOUTS = {
    "hgx-h100": _hgx_h100,
    "dgx-a100-nps4": _dgx_a100_nps4,
    "pcie-l40s": _pcie_l40s,
    "gh200": _gh200,
}


def layout(name):
    """The spec (a dict) of a layout; raises KeyError naming the known ones."""
    if name not in LAYOUTS:
        raise KeyError("unknown layout %r; known: %s" % (name, ", ".join(sorted(LAYOUTS))))
    return LAYOUTS[name]()


_MADE = set()


def _write(path, text):
    parent = os.path.dirname(str(path))
    if parent not in _MADE:
        os.makedirs(parent, exist_ok=True)
        _MADE.add(parent)
    with open(str(path), "w") as handle:
        handle.write(text)


def write_tree(root, spec):
    """Write a tree for ``spec`` under ``root`` (a Path) and return it.

    ``spec``: ``cores`` (physical cores; CPU c and c+cores*k are SMT
    siblings), ``threads``, ``nodes`` ({id: set of CPUs}), ``node_memory``
    (bytes per node, or {id: bytes}), ``pci`` (list of dicts: bus_id, vendor, device, cls,
    numa_node, local, optional no_cpulist / parent), ``block`` (list of
    dicts: name, kind, bus_id, rotational, size, model, scheduler, partitions),
    optional ``packages`` (sockets, default 2), ``offline`` (set of CPUs) and
    ``cpuset`` (cgroup2 cpus string).
    """
    root = Path(root)
    sysd = root / "sys" / "devices"
    cpu_dir = sysd / "system" / "cpu"
    node_dir = sysd / "system" / "node"
    cores, threads = spec["cores"], spec["threads"]
    total = cores * threads
    offline = set(spec.get("offline", ()))
    online = set(range(total)) - offline
    _write(cpu_dir / "online", _cpulist(online) + "\n")
    _write(cpu_dir / "possible", "0-%d\n" % (total - 1))
    _write(cpu_dir / "present", "0-%d\n" % (total - 1))
    if offline:
        _write(cpu_dir / "offline", _cpulist(offline) + "\n")
    node_of = {}
    for node, cpus in spec["nodes"].items():
        for cpu in cpus:
            node_of[cpu] = node
    for cpu in range(total):
        base = cpu_dir / ("cpu%d" % cpu)
        if cpu:
            _write(base / "online", "0\n" if cpu in offline else "1\n")
        if cpu in offline:
            continue
        core = cpu % cores
        siblings = set(core + cores * t for t in range(threads))
        topo = base / "topology"
        _write(topo / "thread_siblings_list", _cpulist(siblings) + "\n")
        _write(topo / "thread_siblings", _mask(siblings) + "\n")
        _write(topo / "core_id", "%d\n" % core)
        _write(topo / "physical_package_id", "%d\n" % (core * spec.get("packages", 2) // cores))
    node_ids = sorted(spec["nodes"])
    for node in node_ids:
        base = node_dir / ("node%d" % node)
        _write(base / "cpulist", _cpulist(spec["nodes"][node]) + "\n")
        _write(base / "cpumap", _mask(spec["nodes"][node]) + "\n")
        _write(base / "distance", " ".join("10" if n == node else "32" for n in node_ids) + "\n")
        memory = spec["node_memory"]
        kb = (memory[node] if isinstance(memory, dict) else memory) // 1024
        _write(base / "meminfo", "\nNode %d MemTotal:       %d kB\nNode %d MemFree:        %d kB\n"
               % (node, kb, node, kb // 2))
    _write(node_dir / "online", _cpulist(node_ids) + "\n")
    _write(node_dir / "possible", _cpulist(node_ids) + "\n")
    memory = spec["node_memory"]
    total_kb = (sum(memory.values()) if isinstance(memory, dict) else memory * len(node_ids)) // 1024
    _write(root / "proc" / "meminfo", "MemTotal:       %d kB\nMemFree:        %d kB\n" % (total_kb, total_kb // 2))
    if spec.get("cpuset"):
        _write(root / "proc" / "self" / "cgroup", "0::/inference.slice\n")
        _write(root / "proc" / "mounts", "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec 0 0\n")
        _write(root / "sys" / "fs" / "cgroup" / "inference.slice" / "cpuset.cpus.effective", spec["cpuset"] + "\n")
    bus_dir = root / "sys" / "bus" / "pci" / "devices"
    bus_dir.mkdir(parents=True, exist_ok=True)
    dev_path = {}
    for dev in spec["pci"]:
        bus = dev["bus_id"]
        domain = bus.split(":")[0]
        parent = dev.get("parent") or "pci%s:%s" % (domain, bus.split(":")[1])
        rel = Path("devices") / parent / bus
        dev_path[bus] = rel
        base = root / "sys" / rel
        _write(base / "class", dev["cls"] + "\n")
        _write(base / "vendor", dev["vendor"] + "\n")
        _write(base / "device", dev["device"] + "\n")
        _write(base / "numa_node", "%d\n" % dev["numa_node"])
        _write(base / "local_cpus", _mask(dev["local"]) + "\n")
        if not dev.get("no_cpulist"):
            _write(base / "local_cpulist", _cpulist(dev["local"]) + "\n")
        os.symlink(os.path.relpath(base, bus_dir), bus_dir / bus)
    block_dir = root / "sys" / "block"
    block_dir.mkdir(parents=True, exist_ok=True)
    for disk in spec.get("block", ()):
        name = disk["name"]
        if disk["kind"] == "nvme":
            ctrl = name[:name.rindex("n")]
            rel = dev_path[disk["bus_id"]] / "nvme" / ctrl / name
            device_dir = root / "sys" / dev_path[disk["bus_id"]] / "nvme" / ctrl
        else:
            rel = dev_path[disk["bus_id"]] / "host0" / "target0:0:0" / "0:0:0:0" / "block" / name
            device_dir = root / "sys" / dev_path[disk["bus_id"]] / "host0" / "target0:0:0" / "0:0:0:0"
        base = root / "sys" / rel
        _write(base / "queue" / "rotational", "%d\n" % disk["rotational"])
        _write(base / "queue" / "scheduler", disk["scheduler"] + "\n")
        _write(base / "size", "%d\n" % (disk["size"] // 512))
        _write(base / "removable", "0\n")
        _write(device_dir / "model", disk["model"] + "\n")
        os.symlink(os.path.relpath(device_dir, base), base / "device")
        for part in range(1, disk.get("partitions", 0) + 1):
            pname = "%sp%d" % (name, part) if disk["kind"] == "nvme" else "%s%d" % (name, part)
            _write(base / pname / "partition", "%d\n" % part)
            _write(base / pname / "size", "%d\n" % (disk["size"] // 512 // (disk["partitions"] + 1)))
        os.symlink(os.path.relpath(base, block_dir), block_dir / name)
    # loop devices are on every real host; the reader leaves them out by default
    loop = root / "sys" / "devices" / "virtual" / "block" / "loop0"
    _write(loop / "queue" / "rotational", "0\n")
    _write(loop / "queue" / "scheduler", "[none] mq-deadline\n")
    _write(loop / "size", "0\n")
    os.symlink(os.path.relpath(loop, block_dir), block_dir / "loop0")
    return root


def build_tree(tmp_path, layout_name, name=None, **overrides):
    """Build the named layout under ``tmp_path/<name or layout_name>`` and return its Path.

    ``overrides`` replace keys of the layout spec (e.g. ``offline={3}``,
    ``cpuset="0-31"``).
    """
    spec = layout(layout_name)
    spec.update(overrides)
    return write_tree(Path(tmp_path) / (name or layout_name), spec)


# --------------------------------------------------------------------------
# the real captured trees of tests/fixtures/topology (hwloc's test suite)

TOPOLOGY_FIXTURES = FIXTURES / "topology"
REFERENCE_DIR = TOPOLOGY_FIXTURES / "reference"
_UNPACKED = {}
_UNPACK_DIR = []


def fixture_tarballs(more=False):
    """Sorted tarball paths of the reference trees (``more=False``) or of ``more/``."""
    base = TOPOLOGY_FIXTURES / "more" if more else TOPOLOGY_FIXTURES
    return sorted(base.glob("*.tar.bz2"))


def tarball_for_reference(reference):
    """The tarball a ``reference/NAME.answers.json`` was computed on.

    ``-disallowed`` / ``-forcedlocality`` answers are variants of one tree.
    """
    name = Path(reference).name[: -len(".answers.json")]
    for suffix in ("-disallowed", "-forcedlocality"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return TOPOLOGY_FIXTURES / (name + ".tar.bz2")


def _scratch():
    import atexit
    import shutil
    import tempfile

    if not _UNPACK_DIR:
        # tmpfs when there is one: ~120k small files unpack and vanish in
        # seconds there, minutes on a slow disk.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        _remove_stale(Path(shm or tempfile.gettempdir()))
        prefix = "inferfleet-topology-%d-" % os.getpid()
        _UNPACK_DIR.append(Path(tempfile.mkdtemp(prefix=prefix, dir=shm)))
        atexit.register(shutil.rmtree, str(_UNPACK_DIR[0]), True)
    return _UNPACK_DIR[0]


def _remove_stale(base):
    """Remove scratch trees of test processes that died without their atexit (tmpfs is RAM)."""
    import shutil

    for entry in base.glob("inferfleet-topology-*-*"):
        try:
            pid = int(entry.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(str(entry), ignore_errors=True)
        except PermissionError:
            continue


_CACHED = {}


def cached_tree(layout_name, **overrides):
    """A synthetic layout built once per process (treat it as read-only)."""
    key = (layout_name, tuple(sorted((k, repr(v)) for k, v in overrides.items())))
    if key not in _CACHED:
        name = "%s-%d" % (layout_name, len(_CACHED))
        _CACHED[key] = build_tree(_scratch() / "synthetic", layout_name, name=name, **overrides)
    return _CACHED[key]


def unpacked_tree(tarball):
    """Unpack a fixture tarball once per process and return its tree root.

    The archives hold one top directory whose name is not always the
    archive's (``48amd64-4pa2n6c-sparse.tar.bz2`` holds
    ``48amd64-4d2n6c-sparse/``), so the root is found after unpacking.
    Everything is removed when the process exits.
    """
    import subprocess

    tarball = Path(tarball)
    if tarball in _UNPACKED:
        return _UNPACKED[tarball]
    dest = _scratch() / tarball.name[: -len(".tar.bz2")]
    dest.mkdir()
    subprocess.run(["tar", "-xjf", str(tarball), "-C", str(dest)], check=True)
    entries = list(dest.iterdir())
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
    _UNPACKED[tarball] = root
    return root


# --------------------------------------------------------------------------
# the gpu_topology fact's contract: the names other roles rely on

CONTRACT = {
    "cpus": {"online": str, "count": int, "allowed": str, "threads_per_core": int, "smt_siblings": list},
    "numa_nodes": {"id": int, "cpus": str, "memory_bytes": (int, type(None))},
    "pci_devices": {"bus_id": str, "vendor_id": (str, type(None)), "device_id": (str, type(None)),
                    "class_id": (str, type(None)), "numa_node": (int, type(None)),
                    "local_cpus": (str, type(None))},
    "gpus": {"index": int, "bus_id": str, "numa_node": (int, type(None)), "local_cpus": (str, type(None)),
             "name": (str, type(None)), "uuid": (str, type(None)), "minor": (int, type(None)),
             "memory_total_bytes": (int, type(None)), "nvml_numa_node": (int, type(None)),
             "nvlink_peers": list, "mig_mode": (dict, type(None))},
    "block_devices": {"name": str, "kind": str, "rotational": (bool, type(None)),
                      "scheduler": (str, type(None)), "schedulers": list, "numa_node": (int, type(None)),
                      "model": (str, type(None)), "size_bytes": (int, type(None)),
                      "removable": (bool, type(None))},
    "nvml": {"available": bool, "error": (str, type(None))},
}


def check_contract(fact):
    """The names other roles rely on, with their types."""
    for key, fields in CONTRACT.items():
        value = fact[key]
        for item in (value if isinstance(value, list) else [value]):
            for field, kind in fields.items():
                assert isinstance(item[field], kind), (key, field, item[field])
    assert isinstance(fact["nvswitch_count"], int)
    assert isinstance(fact["memory_total_bytes"], int) and fact["memory_total_bytes"] > 0
    assert fact["cpus"]["count"] == len(parse_cpulist(fact["cpus"]["online"]))


# the loaded NVIDIA driver's /proc/driver/nvidia/gpus/<bus id>/information

NVIDIA_PROC_JSON = FIXTURES / "nvidia" / "proc-driver-nvidia-gpus.json"


def nvidia_proc_files(layout_name):
    """``{bus id: information text}`` of a layout (what a loaded driver writes)."""
    with open(NVIDIA_PROC_JSON) as handle:
        return json.load(handle)["layouts"][layout_name]


def write_nvidia_proc(root, layout_name, edit=None):
    """Write the driver's per-GPU ``information`` files of ``layout_name`` into the tree ``root``.

    ``edit``: optional ``{bus id: text or None}`` replacing (None: leaving out) files.
    """
    files = dict(nvidia_proc_files(layout_name))
    files.update(edit or {})
    for bus, text in files.items():
        if text is not None:
            _write(Path(root) / "proc" / "driver" / "nvidia" / "gpus" / bus / "information", text)
    return Path(root)
