# -*- coding: utf-8 -*-
"""inferfleet.gpu.gpu_topology: the module on captured and synthetic trees (in-process).

Through Ansible on this machine: tests/integration/plugins/test_gpu_topology_live.py.
"""

import os

import pytest

from ansible_collections.inferfleet.gpu.plugins.modules import gpu_topology

import topology_trees as tt
from helpers import run_module


def run(tmp_path, capsys, check=False, **args):
    return run_module(gpu_topology, tmp_path, capsys, check=check, **args)


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
    tt.check_contract(fact)
    assert fact["gpu_count"] == 8 and fact["nvswitch_count"] == 4
    assert fact["gpus"][0]["local_cpus"] == "0-55,112-167"
    assert fact["nvml"]["available"] is False and "root" in fact["nvml"]["error"]
    assert snapshot(root) == before


def test_uuid_and_minor_from_the_driver_files(tmp_path, capsys):
    """With the loaded driver's /proc files under root: uuid and minor per GPU, minors not in PCI order."""
    root = tt.write_nvidia_proc(tt.build_tree(tmp_path, "hgx-h100"), "hgx-h100")
    res = run(tmp_path, capsys, root=str(root))
    fact = res["ansible_facts"]["gpu_topology"]
    tt.check_contract(fact)
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
    tt.check_contract(res["ansible_facts"]["gpu_topology"])


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
