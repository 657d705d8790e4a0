# -*- coding: utf-8 -*-
"""inferfleet.gpu.gpu_topology through Ansible on this machine, against lscpu / numactl / nproc here,
and its documentation as ansible-doc renders it.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import format_cpulist, parse_cpulist

import topology_trees as tt
from helpers import ROOT, VENV_BIN, ansible_env


@pytest.fixture(scope="module")
def live_fact():
    proc = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-m", "inferfleet.gpu.gpu_topology",
         "-e", "ansible_python_interpreter=%s" % sys.executable],
        cwd=str(ROOT), env=ansible_env(json_output=True), capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    result = out["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["changed"] is False
    return result["ansible_facts"]["gpu_topology"]


def test_live_contract(live_fact):
    tt.check_contract(live_fact)
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
                          env=ansible_env(json_output=True), capture_output=True, text=True, timeout=120, check=True)
    doc = json.loads(proc.stdout)["inferfleet.gpu.gpu_topology"]
    assert set(doc["doc"]["options"]) == {"root", "include_partitions", "include_virtual_block_devices", "nvml"}
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert "gpu_topology" in doc["return"]["ansible_facts"]["contains"]
