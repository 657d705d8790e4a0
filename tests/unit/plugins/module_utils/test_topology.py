# -*- coding: utf-8 -*-
"""The sysfs/procfs readers on real captured trees (hwloc's answers as oracle)
and on synthetic GPU servers.

Reference trees: ``tests/fixtures/topology/*.tar.bz2`` against
``reference/*.answers.json`` (hwloc 2.9). ``more/`` trees: against
``hwloc-calc -i DIR --if fsroot`` run here (skipped only where hwloc-calc is
absent; CI installs Debian's hwloc). Each tarball is unpacked once per test
session (topology_trees.unpacked_tree).
"""

import json
import shutil
import subprocess

import pytest

from ansible_collections.inferfleet.gpu.plugins.module_utils import blockdev, pci as P, topology as T, topology_numa as N
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import (
    format_cpulist,
    parse_cpulist,
    parse_cpumask,
)

import topology_trees as tt

REFERENCES = sorted(tt.REFERENCE_DIR.glob("*.answers.json"))
MORE = tt.fixture_tarballs(more=True)
HWLOC_CALC = shutil.which("hwloc-calc")
# hwloc's own test of a root without sys/: not a Linux sysfs tree.
NOT_SYSFS = {"allowed-test1.tar.bz2"}


def _ids(paths):
    return [p.name.split(".")[0] if p.name.endswith(".tar.bz2") else p.name[: -len(".answers.json")] for p in paths]


def test_every_fixture_is_covered():
    """No tarball without a test: each reference tree has answers, more/ is oracle-checked."""
    assert len(REFERENCES) >= 9 and len(MORE) >= 30
    referenced = set(tt.tarball_for_reference(r) for r in REFERENCES)
    assert set(tt.fixture_tarballs()) == referenced


@pytest.fixture(scope="session")
def gathered():
    """gather() of each tarball, computed once per session."""
    cache = {}

    def get(tarball):
        if tarball not in cache:
            warnings = []
            facts, _unused = T.gather(str(tt.unpacked_tree(tarball)), warnings=warnings)
            cache[tarball] = (facts, warnings)
        return cache[tarball]
    return get


# --------------------------------------------------------------------------
# reference trees vs hwloc 2.9's answers


@pytest.mark.parametrize("reference", REFERENCES, ids=_ids(REFERENCES))
def test_numa_nodes_match_hwloc(reference, gathered):
    answers = json.loads(reference.read_text())
    facts, _warnings = gathered(tt.tarball_for_reference(reference))
    ours = dict((n["id"], n) for n in facts["numa_nodes"])
    disallowed = reference.name.endswith("-disallowed.answers.json")
    if not disallowed:
        # hwloc hides the nodes the cpuset forbids; we flag them allowed=false
        assert sorted(i for i, n in ours.items() if n["allowed"]) == sorted(n["os_index"] for n in answers["numa_nodes"])
    assert answers["numa_nodes"], "reference without nodes"
    for node in answers["numa_nodes"]:
        mine = ours[node["os_index"]]
        assert mine["memory_bytes"] == node["local_memory"], node["os_index"]
        if mine["cpus"] == "":
            # CPU-less (HBM/NVM/GPU memory) node: hwloc attaches it to an
            # initiator's cpuset; the fact keeps "" by contract.
            assert mine["cpu_count"] == 0
            continue
        expected = format_cpulist(parse_cpulist(node["hwloc_cpuset"]))
        assert (mine["cpus"] if disallowed else mine["cpus_allowed"]) == expected, node["os_index"]
    machine = format_cpulist(parse_cpulist(answers["machine_cpuset"]))
    complete = format_cpulist(parse_cpulist(answers["machine_complete_cpuset"]))
    assert (facts["cpus"]["online"] if disallowed else facts["cpus"]["allowed"]) == machine
    assert set(parse_cpulist(facts["cpus"]["online"])) <= set(parse_cpulist(complete))


@pytest.mark.parametrize("reference", [r for r in REFERENCES if "forcedlocality" not in r.name],
                         ids=_ids([r for r in REFERENCES if "forcedlocality" not in r.name]))
def test_pci_devices_match_hwloc(reference, gathered):
    """Every device of a reported class is there, with hwloc's ids and NUMA locality.

    (The -forcedlocality answers were computed with HWLOC_PCI_LOCALITY forcing
    a locality the tree does not hold, so only the plain answers apply.)
    """
    answers = json.loads(reference.read_text())
    facts, warnings = gathered(tt.tarball_for_reference(reference))
    ours = dict((d["bus_id"], d) for d in facts["pci_devices"])
    wanted_classes = ("0x01", "0x02", "0x03", "0x12")
    checked = 0
    for dev in answers["pci_devices"]:
        if not (dev["class"].startswith(wanted_classes) or dev["class"] == "0x0b40"):
            assert dev["busid"] not in ours
            continue
        mine = ours[dev["busid"]]
        checked += 1
        assert mine["vendor_id"] == dev["vendor"]
        assert mine["device_id"] == dev["device"]
        assert mine["class_id"][:6] == dev["class"]
        hwloc_nodes = sorted(parse_cpulist(dev["locality_numa"]))
        if len(hwloc_nodes) == 1:
            assert mine["numa_node"] == hwloc_nodes[0], dev["busid"]
        else:
            # hwloc: local to several nodes -> no single node
            assert mine["numa_node"] is None, dev["busid"]
            assert any(dev["busid"] in w for w in warnings)
        assert mine["local_cpus"] == format_cpulist(parse_cpulist(dev["locality_cpuset"]))
    if answers["pci_devices"]:
        assert checked


# --------------------------------------------------------------------------
# more/ trees vs hwloc-calc


def _calc(root, args, lines):
    proc = subprocess.run(
        [HWLOC_CALC, "-i", str(root), "--if", "fsroot"] + args,
        input="\n".join(lines) + "\n" if lines else None,
        capture_output=True, text=True, timeout=60, check=False,
    )
    return proc.stdout


def _hwloc_numa_answers(root, bus_ids):
    """hwloc's allowed NUMA nodes with their (allowed) cpusets, and PCI device -> nodes."""
    node_ids = sorted(parse_cpumask(_calc(root, ["--no", "--taskset", "all"], None).strip()))
    text = _calc(root, ["--pi", "--taskset"], ["node:%d" % n for n in node_ids])
    lines = [l for l in text.splitlines() if not l.startswith("Waiting")]
    assert len(lines) == len(node_ids), text
    cpusets = dict((n, parse_cpumask(l)) for n, l in zip(node_ids, lines))
    pci = {}
    if bus_ids:
        text = _calc(root, ["--po", "-I", "numa"], ["pci=%s" % b for b in bus_ids])
        lines = [l for l in text.splitlines() if not l.startswith("Waiting")]
        for bus, line in zip(bus_ids, lines):
            if line.strip():
                pci[bus] = [int(x) for x in line.split(",")]
    return cpusets, pci


@pytest.mark.skipif(HWLOC_CALC is None, reason="hwloc-calc not installed (apt-get install hwloc)")
@pytest.mark.parametrize("tarball", [t for t in MORE if t.name not in NOT_SYSFS],
                         ids=_ids([t for t in MORE if t.name not in NOT_SYSFS]))
def test_more_trees_match_hwloc_calc(tarball, gathered):
    facts, warnings = gathered(tarball)
    root = tt.unpacked_tree(tarball)
    cpusets, pci = _hwloc_numa_answers(root, [d["bus_id"] for d in facts["pci_devices"]])
    ours = dict((n["id"], n) for n in facts["numa_nodes"])
    assert cpusets, "hwloc-calc found no NUMA node in %s" % root
    # hwloc drops nodes whose cpulists overlap others; we keep and warn
    overlapping = any("overlapping" in w for w in warnings)
    allowed = set(i for i, n in ours.items() if n["allowed"])
    if overlapping:
        assert allowed >= set(cpusets)
    else:
        assert allowed == set(cpusets)
    for node, cpus in cpusets.items():
        mine = ours[node]
        if mine["cpus"] == "":
            continue  # CPU-less node: hwloc gives its initiators' CPUs
        if overlapping:
            assert set(parse_cpulist(mine["cpus_allowed"])) >= cpus, node
        else:
            assert mine["cpus_allowed"] == format_cpulist(cpus), node
    union = set()
    for cpus in cpusets.values():
        union |= cpus
    assert union <= set(parse_cpulist(facts["cpus"]["allowed"]))
    for bus, nodes in pci.items():
        mine = dict((d["bus_id"], d) for d in facts["pci_devices"])[bus]
        if len(nodes) == 1:
            assert mine["numa_node"] == nodes[0], bus
        else:
            assert mine["numa_node"] is None, bus


def test_not_a_sysfs_tree_fixture():
    """hwloc's allowed-test1 holds only proc/ and dev/: the reader refuses it, naming the path."""
    root = tt.unpacked_tree(tt.TOPOLOGY_FIXTURES / "more" / "allowed-test1.tar.bz2")
    with pytest.raises(T.TopologyError) as err:
        T.gather(str(root))
    assert str(root) in str(err.value)
    assert "not a Linux sysfs tree" in str(err.value)


# --------------------------------------------------------------------------
# the traps of the fixtures README, one by one


def _tree(name, more=False):
    base = tt.TOPOLOGY_FIXTURES / "more" if more else tt.TOPOLOGY_FIXTURES
    return base / (name + ".tar.bz2")


def test_numa_node_minus_one_spanning_nodes_is_null_with_warning(gathered):
    facts, warnings = gathered(_tree("40intel64-2g2n4c+pcilocality"))
    nic = [d for d in facts["pci_devices"] if d["bus_id"] == "0000:02:00.0"][0]
    assert nic["sysfs_numa_node"] == -1
    assert nic["numa_node"] is None
    assert nic["local_cpus"] == "0-39"
    assert any("0000:02:00.0" in w and "-1" in w for w in warnings)


def test_numa_node_minus_one_inside_one_node_is_resolved():
    """The VMD NVMe of the HGX tree: numa_node -1, mask only, CPUs of node 0."""
    root = tt.cached_tree("hgx-h100")
    facts, warnings = T.gather(str(root))
    vmd = [d for d in facts["pci_devices"] if d["bus_id"] == "10000:01:00.0"][0]
    assert vmd["sysfs_numa_node"] == -1
    assert vmd["numa_node"] == 0
    assert vmd["local_cpus"] == "0-55,112-167"
    assert not warnings


def test_local_cpulist_missing_uses_mask(gathered):
    facts, _unused = gathered(_tree("fakepcilocalities", more=True))
    root = tt.unpacked_tree(_tree("fakepcilocalities", more=True))
    dev = [d for d in facts["pci_devices"] if d["bus_id"] == "0000:43:00.0"]
    assert not (root / "sys/bus/pci/devices/0000:02:00.0/local_cpulist").exists()
    nic = [d for d in facts["pci_devices"] if d["bus_id"] == "0000:02:00.0"][0]
    mask = (root / "sys/bus/pci/devices/0000:02:00.0/local_cpus").read_text()
    assert nic["local_cpus"] == format_cpulist(parse_cpumask(mask)) == "0,4,8,12,16,20,24,28,32,36"
    assert nic["numa_node"] == 0
    assert dev == []  # class 0x0c06 (fibre channel... serial bus) is not reported


def test_device_missing_files_still_appears(tmp_path):
    spec = tt.layout("pcie-l40s")
    spec["pci"].append(dict(bus_id="0000:e1:00.0", vendor="0x10de", device="0x26b9", cls="0x030200",
                            numa_node=1, local=spec["nodes"][1]))
    root = tt.write_tree(tmp_path / "t", spec)
    dev = root / "sys/devices/pci0000:e1/0000:e1:00.0"
    (dev / "vendor").unlink()
    (dev / "local_cpulist").unlink()
    (dev / "local_cpus").unlink()
    facts, _unused = T.gather(str(root))
    mine = [d for d in facts["pci_devices"] if d["bus_id"] == "0000:e1:00.0"][0]
    assert mine["vendor_id"] is None and mine["local_cpus"] is None
    assert mine["numa_node"] == 1 and mine["class_id"] == "0x030200"
    # without a vendor it is not known to be an NVIDIA GPU
    assert "0000:e1:00.0" not in [g["bus_id"] for g in facts["gpus"]]


def test_offline_cpus_listed_in_a_node(gathered):
    facts, warnings = gathered(_tree("16amd64-8n2c-cpusets"))
    node2 = [n for n in facts["numa_nodes"] if n["id"] == 2][0]
    assert node2["cpus"] == "5"
    assert facts["cpus"]["offline"] == "4"
    assert any("NUMA node 2" in w and "4" in w and "not online" in w for w in warnings)


def test_cpu_less_nodes(gathered):
    facts, _unused = gathered(_tree("fakeheteromemtiers"))
    nodes = dict((n["id"], n) for n in facts["numa_nodes"])
    assert [i for i, n in sorted(nodes.items()) if n["cpus"] == ""] == [4, 6, 8, 9]
    assert nodes[4]["memory_bytes"] == 536870912
    assert nodes[0]["cpus"] == "0-1"


def test_sparse_node_ids(gathered):
    facts, _unused = gathered(_tree("48amd64-4pa2n6c-sparse"))
    assert [n["id"] for n in facts["numa_nodes"]] == [0, 1, 2, 33, 34, 45, 72, 73]
    assert [n["cpus"] for n in facts["numa_nodes"]][3] == "18-23"
    assert len(facts["numa_nodes"][3]["distances"]) == 8


def test_cgroup_restricted_cpuset(gathered):
    facts, _unused = gathered(_tree("16amd64-8n2c-cpusets"))
    assert facts["cpus"]["online"] == "0-3,5-15"
    assert facts["cpus"]["allowed"] == "0-3,5-6,12-15"
    assert facts["numa_nodes_allowed"] == "1-4"
    assert [n["id"] for n in facts["numa_nodes"] if not n["allowed"]] == [0, 5, 6, 7]


@pytest.mark.parametrize("name, allowed", [
    ("16em64t-4s2ca2c-cpusetreorder", "2-11,13"),         # cgroup v1, noprefix
    ("16amd64-4n4c-cgroup-distance-merge", "0-3"),         # v1 noprefix next to a cgroup2 mount
    ("32amd64-4s2n4c-cgroup2", "0-5"),                     # cgroup2 (Slurm step)
    ("4fake-4gr1nu1pu", "0-1"),
])
def test_cpuset_flavours(name, allowed, gathered):
    facts, _unused = gathered(_tree(name, more=True))
    assert facts["cpus"]["allowed"] == allowed


def test_wide_pci_domain():
    facts, _unused = T.gather(str(tt.cached_tree("hgx-h100")))
    bus_ids = [d["bus_id"] for d in facts["pci_devices"]]
    assert "10000:01:00.0" in bus_ids
    assert bus_ids == sorted(bus_ids, key=P.pci_sort_key)
    assert bus_ids[-1] == "10000:01:00.0"  # numeric domain order, not string order


def test_nul_bytes_in_sysfs_files(gathered):
    facts, warnings = gathered(_tree("128arm-2pa2n8cluster4co", more=True))
    assert [n["cpus"] for n in facts["numa_nodes"]] == ["0-31", "32-63", "64-95", "96-127"]
    assert not [w for w in warnings if "invalid" in w]


def test_overlapping_node_cpulists_warn(gathered):
    _facts, warnings = gathered(_tree("fakeheterocpunuma", more=True))
    assert any("overlapping" in w and "NUMA nodes 3 and 4" in w for w in warnings)


def test_no_numa_directory_is_one_node(gathered):
    facts, _unused = gathered(_tree("2arm-2c", more=True))
    assert len(facts["numa_nodes"]) == 1
    node = facts["numa_nodes"][0]
    assert node["id"] == 0 and node["cpus"] == "0-1" and node["implicit"]
    assert node["memory_bytes"] == facts["memory_total_bytes"] > 0


def test_smt_siblings_interleaved(gathered):
    facts, _unused = gathered(_tree("32intel64-2p8co2t+8ve"))
    cpus = facts["cpus"]
    assert cpus["threads_per_core"] == 2 and cpus["cores"] == 16 and cpus["packages"] == 2
    assert cpus["smt_siblings"][:3] == ["0,16", "1,17", "2,18"]
    assert facts["memory_total_bytes"] > 0


def test_offline_cpus_without_summary_file(gathered):
    facts, _unused = gathered(_tree("16em64t-4s2c2t-offlines", more=True))
    assert facts["cpus"]["online"] == "0-1,3-4,6-12,15"
    assert facts["cpus"]["count"] == 12


# --------------------------------------------------------------------------
# bad roots


@pytest.mark.parametrize("make", ["missing", "file", "empty", "proc-only"])
def test_bad_root_names_the_path(tmp_path, make):
    root = tmp_path / "root"
    if make == "file":
        root.write_text("x")
    elif make == "empty":
        root.mkdir()
    elif make == "proc-only":
        (root / "proc").mkdir(parents=True)
        (root / "proc" / "meminfo").write_text("MemTotal: 1 kB\n")
    with pytest.raises(T.TopologyError) as err:
        T.gather(str(root))
    assert str(root) in str(err.value)


# --------------------------------------------------------------------------
# synthetic GPU servers


@pytest.fixture(scope="module")
def servers():
    return dict((name, T.gather(str(tt.cached_tree(name)))) for name in tt.LAYOUTS)


@pytest.mark.parametrize("name, gpus, nvswitches, nodes", [
    ("hgx-h100", 8, 4, [0, 0, 0, 0, 1, 1, 1, 1]),
    ("dgx-a100-nps4", 8, 6, [3, 3, 1, 1, 7, 7, 5, 5]),
    ("pcie-l40s", 8, 0, [0, 0, 0, 0, 1, 1, 1, 1]),
    ("gh200", 1, 0, [0]),
])
def test_gpus_and_nvswitches(servers, name, gpus, nvswitches, nodes):
    facts, warnings = servers[name]
    assert facts["gpu_count"] == len(facts["gpus"]) == gpus
    assert facts["nvswitch_count"] == nvswitches
    assert [g["index"] for g in facts["gpus"]] == list(range(gpus))
    assert [g["numa_node"] for g in facts["gpus"]] == nodes
    bus = [g["bus_id"] for g in facts["gpus"]]
    assert bus == sorted(bus, key=P.pci_sort_key)
    for gpu in facts["gpus"]:
        node = [n for n in facts["numa_nodes"] if n["id"] == gpu["numa_node"]][0]
        assert gpu["local_cpus"] == node["cpus"]
        assert gpu["name"] is None and gpu["mig_mode"] is None  # no NVML on a tree
    # NVSwitches are bridges, not GPUs, and not in pci_devices
    assert not set(s["bus_id"] for s in facts["nvswitches"]) & set(d["bus_id"] for d in facts["pci_devices"])
    assert not [w for w in warnings if "NIC" in w]


def test_hgx_h100_facts(servers):
    facts, _unused = servers["hgx-h100"]
    assert facts["cpus"]["count"] == 224 and facts["cpus"]["threads_per_core"] == 2
    assert [n["cpus"] for n in facts["numa_nodes"]] == ["0-55,112-167", "56-111,168-223"]
    assert facts["gpus"][0]["local_cpus"] == "0-55,112-167"
    assert facts["memory_total_bytes"] == 2 * 1081101176832
    nics = [d for d in facts["pci_devices"] if d["class_id"] == "0x020700"]
    assert len(nics) == 8 and nics[0]["kind"] == "network"


def test_grace_hopper_cpu_less_gpu_memory_nodes(servers):
    facts, warnings = servers["gh200"]
    assert not warnings
    nodes = facts["numa_nodes"]
    assert [n["id"] for n in nodes] == list(range(9))
    assert nodes[0]["cpus"] == "0-71" and all(n["cpus"] == "" and n["cpu_count"] == 0 for n in nodes[1:])
    assert nodes[1]["memory_bytes"] == 102005473280 and nodes[2]["memory_bytes"] == 0
    assert facts["cpus"]["packages"] == 1 and facts["cpus"]["threads_per_core"] == 1
    assert facts["gpus"][0]["bus_id"] == "0009:01:00.0" and facts["gpus"][0]["numa_node"] == 0
    assert facts["memory_total_bytes"] == 515396075520 + 102005473280


def test_dgx_nic_with_minus_one(servers):
    facts, _unused = servers["dgx-a100-nps4"]
    nic = [d for d in facts["pci_devices"] if d["bus_id"] == "0000:61:00.0"][0]
    assert nic["numa_node"] == 0 and nic["sysfs_numa_node"] == -1


def test_block_devices_synthetic(servers):
    facts, _unused = servers["hgx-h100"]
    disks = dict((d["name"], d) for d in facts["block_devices"])
    assert sorted(disks) == ["nvme0n1", "nvme1n1"]  # loop0 left out
    nvme0 = disks["nvme0n1"]
    assert nvme0["kind"] == "nvme" and nvme0["rotational"] is False
    assert nvme0["scheduler"] == "none" and nvme0["schedulers"] == ["none", "mq-deadline", "kyber", "bfq"]
    assert nvme0["numa_node"] == 1 and nvme0["pci_bus_id"] == "0000:8a:00.0"
    assert nvme0["size_bytes"] == 3840755982336 and nvme0["removable"] is False
    assert nvme0["model"] == "SAMSUNG MZQL23T8HCLS-00A07"
    assert nvme0["partitions"] == ["nvme0n1p1", "nvme0n1p2"]
    assert disks["nvme1n1"]["numa_node"] == 0  # behind VMD, resolved from local CPUs
    facts, _unused = servers["pcie-l40s"]
    disks = dict((d["name"], d) for d in facts["block_devices"])
    assert disks["sdb"]["kind"] == "scsi" and disks["sdb"]["rotational"] is True
    assert disks["sdb"]["scheduler"] == "mq-deadline"


def test_block_devices_partitions_and_virtual():
    root = tt.cached_tree("pcie-l40s")
    facts, _unused = T.gather(str(root), include_partitions=True, include_virtual=True)
    names = [d["name"] for d in facts["block_devices"]]
    assert names == ["loop0", "sda", "sda1", "sda2", "sda3", "sdb", "sdb1"]
    part = facts["block_devices"][2]
    assert part["kind"] == "partition" and part["parent"] == "sda" and part["size_bytes"] > 0
    loop = facts["block_devices"][0]
    assert loop["kind"] == "loop" and loop["virtual"] is True and loop["numa_node"] is None


def test_block_devices_real_tree(gathered):
    facts, _unused = gathered(_tree("24em64t-2n6c2t+2mic.olddriver", more=True))
    disks = dict((d["name"], d) for d in facts["block_devices"])
    assert sorted(disks) == ["sda"]  # dm-*, loop*, ram*, sr0 left out
    assert disks["sda"]["kind"] == "scsi" and disks["sda"]["pci_bus_id"] == "0000:00:1f.2"
    facts, _unused = gathered(_tree("40intel64-2g2n4c+pcilocality"))
    sda = [d for d in facts["block_devices"] if d["name"] == "sda"][0]
    assert sda["scheduler"] == "cfq" and sda["schedulers"] == ["noop", "anticipatory", "deadline", "cfq"]
    assert sda["rotational"] is True
    assert sda["numa_node"] is None  # its controller's locality is unknown (numa_node -1, all CPUs)


def test_block_kinds_are_io_scheduler_kinds(gathered):
    """The facts name each disk's kind with the table io_scheduler rules select by (one table)."""
    facts, _unused = gathered(_tree("24em64t-2n6c2t+2mic.olddriver", more=True))
    every = T.gather(str(tt.unpacked_tree(tt.TOPOLOGY_FIXTURES / "more" / "24em64t-2n6c2t+2mic.olddriver.tar.bz2")),
                     include_virtual=True)[0]["block_devices"]
    kinds = dict((d["name"], d["kind"]) for d in every)
    assert kinds["sda"] == "scsi" and kinds["sr0"] == "cdrom" and kinds["ram0"] == "ram"
    assert all(d["kind"] == blockdev.kind_of(d["name"]) for d in every)
    assert all(d["virtual"] for d in every if d["name"] != "sda")
    assert [d["name"] for d in facts["block_devices"]] == ["sda"]


def test_cpuset_restriction_in_synthetic_tree():
    root = tt.cached_tree("hgx-h100", cpuset="0-31,112-143")
    facts, _unused = T.gather(str(root))
    assert facts["cpus"]["allowed"] == "0-31,112-143"
    assert facts["cpus"]["allowed_source"] == "cgroup /sys/fs/cgroup/inference.slice"
    assert facts["numa_nodes"][1]["cpus_allowed"] == ""


def test_helpers():
    assert P.normalize_bus_id("00000000:07:00.0") == "0000:07:00.0"
    assert P.normalize_bus_id(b"00010000:01:00.0\x00") == "10000:01:00.0"
    assert N.parse_meminfo("\nNode 0 MemTotal:  10 kB\nMemFree: 2 kB\nHugePages_Total: 0\n") == {
        "MemTotal": 10240, "MemFree": 2048, "HugePages_Total": 0}
