# -*- coding: utf-8 -*-
"""inferfleet.gpu.gpu_topology: the module on captured and synthetic trees,
through Ansible on this machine, and against lscpu / numactl / nproc here.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import format_cpulist, parse_cpulist
from ansible_collections.inferfleet.gpu.plugins.modules import gpu_topology

import topology_trees as tt

REPO = Path(__file__).resolve().parents[4]
VENV_BIN = Path(sys.executable).parent


def run(tmp_path, capsys, check=False, **args):
    args["_ansible_check_mode"] = check
    args["_ansible_remote_tmp"] = str(tmp_path / "remote_tmp")
    args["_ansible_keep_remote_files"] = False
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            gpu_topology.main()
    return json.loads(capsys.readouterr().out)


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


def snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[path] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def test_facts_on_a_gpu_server_and_nothing_written(tmp_path, capsys):
    root = tt.build_tree(tmp_path, "hgx-h100")
    before = snapshot(root)
    res = run(tmp_path, capsys, root=str(root))
    assert res["changed"] is False and not res.get("failed")
    fact = res["ansible_facts"]["gpu_topology"]
    check_contract(fact)
    assert fact["gpu_count"] == 8 and fact["nvswitch_count"] == 4
    assert fact["gpus"][0]["local_cpus"] == "0-55,112-167"
    assert fact["nvml"]["available"] is False and "root" in fact["nvml"]["error"]
    assert snapshot(root) == before


def test_uuid_and_minor_from_the_driver_files(tmp_path, capsys):
    """With the loaded driver's /proc files under root: uuid and minor per GPU, minors not in PCI order."""
    root = tt.write_nvidia_proc(tt.build_tree(tmp_path, "hgx-h100"), "hgx-h100")
    res = run(tmp_path, capsys, root=str(root))
    fact = res["ansible_facts"]["gpu_topology"]
    check_contract(fact)
    assert [g["minor"] for g in fact["gpus"]] == [2, 0, 3, 1, 6, 4, 7, 5]
    assert all(g["uuid"].startswith("GPU-") for g in fact["gpus"])
    assert not res.get("warnings")


def test_check_mode_gives_the_same_facts(tmp_path, capsys):
    root = str(tt.cached_tree("dgx-a100-nps4"))
    normal = run(tmp_path, capsys, root=root)
    checked = run(tmp_path, capsys, root=root, check=True)
    assert checked["changed"] is False
    assert checked["ansible_facts"] == normal["ansible_facts"]


@pytest.mark.parametrize("tarball", tt.fixture_tarballs(), ids=[t.name[:-8] for t in tt.fixture_tarballs()])
def test_every_reference_tree(tmp_path, capsys, tarball):
    res = run(tmp_path, capsys, root=str(tt.unpacked_tree(tarball)))
    assert res["changed"] is False
    check_contract(res["ansible_facts"]["gpu_topology"])


@pytest.fixture
def warned(monkeypatch):
    """Texts given to module.warn().

    (Where ansible's controller code is imported in the same process, e.g.
    by the filter tests, ansible-core routes module warnings to the display
    instead of the result, so the calls are recorded at module.warn.)
    """
    calls = []
    original = gpu_topology.AnsibleModule.warn

    def record(self, warning, *args, **kwargs):
        calls.append(warning)
        return original(self, warning, *args, **kwargs)
    monkeypatch.setattr(gpu_topology.AnsibleModule, "warn", record)
    return calls


def test_oddities_become_warnings(tmp_path, capsys, warned):
    res = run(tmp_path, capsys, root=str(tt.unpacked_tree(tt.TOPOLOGY_FIXTURES / "more" / "fakeheterocpunuma.tar.bz2")))
    assert not res.get("failed")
    assert any("overlapping" in w for w in warned)
    del warned[:]
    res = run(tmp_path, capsys, root=str(tt.unpacked_tree(tt.TOPOLOGY_FIXTURES / "40intel64-2g2n4c+pcilocality.tar.bz2")))
    assert any("numa_node is -1" in w for w in warned)
    del warned[:]
    run(tmp_path, capsys, root=str(tt.cached_tree("hgx-h100")))
    assert warned == []


def test_options_reach_the_readers(tmp_path, capsys):
    root = str(tt.cached_tree("pcie-l40s"))
    res = run(tmp_path, capsys, root=root, include_partitions=True, include_virtual_block_devices=True, nvml=False)
    names = [d["name"] for d in res["ansible_facts"]["gpu_topology"]["block_devices"]]
    assert "loop0" in names and "sda1" in names
    assert res["ansible_facts"]["gpu_topology"]["nvml"]["error"].startswith("NVML query disabled")


@pytest.mark.parametrize("kind", ["missing", "not-sysfs"])
def test_bad_root_fails_naming_the_path(tmp_path, capsys, kind):
    root = tmp_path / "nothing-here"
    if kind == "not-sysfs":
        root = tt.unpacked_tree(tt.TOPOLOGY_FIXTURES / "more" / "allowed-test1.tar.bz2")
    res = run(tmp_path, capsys, root=str(root))
    assert res["failed"] is True
    assert str(root) in res["msg"] and res["msg"].startswith("root:")


def test_bad_option_type_fails(tmp_path, capsys):
    res = run(tmp_path, capsys, include_partitions="maybe")
    assert res["failed"] is True and "include_partitions" in res["msg"]


# --------------------------------------------------------------------------
# live: this machine, through Ansible, against the system tools


def _ansible_env():
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "PATH": "%s:%s" % (VENV_BIN, env.get("PATH", "")),
        "LC_ALL": "C.UTF-8",
    })
    return env


@pytest.fixture(scope="module")
def live_fact():
    proc = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-m", "inferfleet.gpu.gpu_topology",
         "-e", "ansible_python_interpreter=%s" % sys.executable],
        cwd=str(REPO), env=_ansible_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    result = out["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["changed"] is False
    return result["ansible_facts"]["gpu_topology"]


def test_live_contract(live_fact):
    check_contract(live_fact)
    assert live_fact["root"] == "/"
    assert isinstance(live_fact["nvml"]["available"], bool)


def test_live_matches_lscpu_and_nproc(live_fact):
    lscpu = dict((f["field"].rstrip(":"), f["data"]) for f in json.loads(
        subprocess.run(["lscpu", "-J"], capture_output=True, text=True, check=True, env={"LC_ALL": "C"}).stdout
    )["lscpu"])
    assert live_fact["cpus"]["online"] == format_cpulist(parse_cpulist(lscpu["On-line CPU(s) list"]))
    assert live_fact["cpus"]["threads_per_core"] == int(lscpu["Thread(s) per core"])
    nodes = int(lscpu.get("NUMA node(s)", "1"))
    assert len(live_fact["numa_nodes"]) == nodes
    for node in live_fact["numa_nodes"]:
        key = "NUMA node%d CPU(s)" % node["id"]
        if key in lscpu:
            assert node["cpus"] == format_cpulist(parse_cpulist(lscpu[key]))
    nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    assert live_fact["cpus"]["allowed_count"] == nproc
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.M).group(1))
    assert live_fact["memory_total_bytes"] == total_kb * 1024


@pytest.mark.skipif(shutil.which("numactl") is None, reason="numactl not installed (apt-get install numactl)")
def test_live_matches_numactl(live_fact):
    text = subprocess.run(["numactl", "--hardware"], capture_output=True, text=True, check=True).stdout
    ids = [int(x) for x in re.search(r"^available: \d+ nodes \(([^)]*)\)", text, re.M).group(1).replace("-", ",").split(",")]
    mine = dict((n["id"], n) for n in live_fact["numa_nodes"])
    assert sorted(mine)[:1] == ids[:1] and len(mine) >= len(ids)
    for node in re.finditer(r"^node (\d+) cpus:(.*)$", text, re.M):
        cpus = [int(c) for c in node.group(2).split()]
        assert mine[int(node.group(1))]["cpus"] == format_cpulist(cpus)
    for node in re.finditer(r"^node (\d+) size: (\d+) MB$", text, re.M):
        size_mb = int(node.group(2))
        mine_mb = (mine[int(node.group(1))]["memory_bytes"] or 0) // (1024 * 1024)
        # the VM's memory can be resized (balloon/hotplug) between the two reads
        assert abs(mine_mb - size_mb) <= max(64, size_mb // 20), (mine_mb, size_mb)


def test_ansible_doc_renders():
    proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "--json", "inferfleet.gpu.gpu_topology"],
                          env=_ansible_env(), capture_output=True, text=True, timeout=120, check=True)
    doc = json.loads(proc.stdout)["inferfleet.gpu.gpu_topology"]
    assert set(doc["doc"]["options"]) == {"root", "include_partitions", "include_virtual_block_devices", "nvml"}
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert "gpu_topology" in doc["return"]["ansible_facts"]["contains"]
