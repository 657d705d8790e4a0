# -*- coding: utf-8 -*-
"""GPU UUID and device minor from /proc/driver/nvidia, and against NVML.

Trees: the synthetic sysfs layouts of ``topology_trees`` plus the driver's
``information`` files of ``tests/fixtures/nvidia/proc-driver-nvidia-gpus.json``
(HGX H100 with minors deliberately not in PCI order).
"""

import pytest

from ansible_collections.inferfleet.gpu.plugins.module_utils import topology as T
from ansible_collections.inferfleet.gpu.plugins.module_utils.nvidia_proc import parse_information, read_gpu_information
from ansible_collections.inferfleet.gpu.plugins.module_utils.nvml import merge_nvml, query_nvml

import topology_trees as tt
from test_nvml import FakeNvml, _server

HGX_MINORS = [2, 0, 3, 1, 6, 4, 7, 5]


def test_parse_one_file():
    text = tt.nvidia_proc_files("hgx-h100")["0000:18:00.0"]
    info = parse_information(text)
    assert info["model"] == "NVIDIA H100 80GB HBM3"
    assert info["minor"] == 2
    assert info["uuid"].startswith("GPU-") and len(info["uuid"]) == 40
    assert info["bus_location"] == "0000:18:00.0"


@pytest.mark.parametrize("text", ["", "GPU UUID: \t ??\nDevice Minor: \t x\n", "Model: foo\n"])
def test_parse_missing_or_malformed(text):
    info = parse_information(text)
    assert info["uuid"] is None and info["minor"] is None


def test_hgx_minors_not_in_pci_order(tmp_path):
    root = tt.write_nvidia_proc(tt.build_tree(tmp_path, "hgx-h100"), "hgx-h100")
    facts, warnings = T.gather(str(root))
    assert not warnings
    gpus = facts["gpus"]
    assert [g["index"] for g in gpus] == list(range(8))
    assert [g["minor"] for g in gpus] == HGX_MINORS
    assert len(set(g["uuid"] for g in gpus)) == 8
    files = tt.nvidia_proc_files("hgx-h100")
    for gpu in gpus:
        assert gpu["uuid"] == parse_information(files[gpu["bus_id"]])["uuid"]


@pytest.mark.parametrize("layout", ["pcie-l40s", "gh200"])
def test_other_layouts(tmp_path, layout):
    root = tt.write_nvidia_proc(tt.build_tree(tmp_path, layout), layout)
    facts, warnings = T.gather(str(root))
    assert not warnings
    assert all(g["uuid"] and g["minor"] is not None for g in facts["gpus"])


def test_driver_not_loaded_leaves_them_null(tmp_path):
    facts, warnings = T.gather(str(tt.build_tree(tmp_path, "hgx-h100")))
    assert not warnings
    assert all(g["uuid"] is None and g["minor"] is None for g in facts["gpus"])


def test_oddities_are_warnings(tmp_path):
    files = tt.nvidia_proc_files("hgx-h100")
    edit = {
        "0000:2a:00.0": None,                                                    # driver lost one GPU
        "0000:3a:00.0": files["0000:3a:00.0"].replace("Device Minor: \t 3", "Device Minor: \t 2"),
        "0000:ee:00.0": files["0000:db:00.0"].replace("0000:db:00.0", "0000:ee:00.0"),
    }
    root = tt.write_nvidia_proc(tt.build_tree(tmp_path, "hgx-h100"), "hgx-h100", edit=edit)
    facts, warnings = T.gather(str(root))
    gpus = dict((g["bus_id"], g) for g in facts["gpus"])
    assert gpus["0000:2a:00.0"]["minor"] is None and gpus["0000:2a:00.0"]["uuid"] is None
    assert any("both have Device Minor 2" in w for w in warnings)
    assert any("0000:ee:00.0" in w and "sysfs does not" in w for w in warnings)
    assert len(read_gpu_information(str(root), [])) == 8


def _nvml_for(facts, minors=None, uuids=None):
    devices = _server("dgxh100.New()")
    for i, (dev, gpu) in enumerate(zip(devices, facts["gpus"])):
        dev["bus_id"] = gpu["bus_id"]
        dev["minor"] = gpu["minor"] if minors is None else minors[i]
        dev["uuid"] = gpu["uuid"] if uuids is None else uuids[i]
    return query_nvml(FakeNvml(devices).fake)


def test_nvml_agrees(tmp_path):
    root = tt.write_nvidia_proc(tt.build_tree(tmp_path, "hgx-h100"), "hgx-h100")
    facts, warnings = T.gather(str(root))
    answer = _nvml_for(facts)
    assert [d["minor"] for d in answer["devices"]] == HGX_MINORS
    gpus = merge_nvml(facts["gpus"], [], answer, warnings)
    assert not warnings
    assert [g["minor"] for g in gpus] == HGX_MINORS


def test_nvml_disagreement_is_a_warning(tmp_path):
    root = tt.write_nvidia_proc(tt.build_tree(tmp_path, "hgx-h100"), "hgx-h100")
    facts, warnings = T.gather(str(root))
    minors = list(HGX_MINORS)
    minors[0] = 9
    uuids = [g["uuid"] for g in facts["gpus"]]
    uuids[1] = "GPU-00000000-0000-0000-0000-000000000001"
    gpus = merge_nvml(facts["gpus"], [], _nvml_for(facts, minors=minors, uuids=uuids), warnings)
    assert gpus[0]["minor"] == 9 and gpus[1]["uuid"].endswith("0001")
    assert len(warnings) == 2
    assert "device minor 9" in warnings[0] and "says 2" in warnings[0]
    assert "UUID GPU-00000000" in warnings[1]


def test_nvml_fills_what_proc_lacks(tmp_path):
    facts, warnings = T.gather(str(tt.build_tree(tmp_path, "hgx-h100")))
    gpus = merge_nvml(facts["gpus"], [], _nvml_for(facts, minors=HGX_MINORS, uuids=["GPU-%08d-0000-0000-0000-000000000000" % i for i in range(8)]), warnings)
    assert not warnings
    assert [g["minor"] for g in gpus] == HGX_MINORS and gpus[7]["uuid"].startswith("GPU-00000007")
