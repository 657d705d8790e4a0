# -*- coding: utf-8 -*-
"""NVML enrichment, with a fake specced against the real nvidia-ml-py.

``unittest.mock.create_autospec(pynvml)`` makes a stand-in whose functions
have the real signatures: calling a function nvidia-ml-py does not have, or
with the wrong arguments, fails the test. Its answers come from
``tests/fixtures/nvidia/go-nvml-mock-dgx.json`` (what NVIDIA's go-nvml DGX
mocks encode). The NVML constants and exception classes stay the real ones.
"""

import inspect
import json
import sys
import uuid
from unittest import mock

import pynvml
import pytest

from ansible_collections.inferfleet.gpu.plugins.module_utils import topology as T
from ansible_collections.inferfleet.gpu.plugins.module_utils.nvml import load_pynvml, merge_nvml, query_nvml
from ansible_collections.inferfleet.gpu.plugins.modules.gpu_topology import collect

import topology_trees as tt

MOCK_DATA = json.loads((tt.FIXTURES / "nvidia" / "go-nvml-mock-dgx.json").read_text())
MiB = 1024 * 1024


def _server(key):
    server = MOCK_DATA["servers"][key]
    return [{
        "name": server["name"],
        "memory": server["memory_MiB"] * MiB,
        # per_device.pci_bus_id: "0000:%02x:00.0 % i" (synthetic, not real DGX ids)
        "bus_id": "0000:%02x:00.0" % i,
        "uuid": "GPU-%s" % uuid.uuid5(uuid.NAMESPACE_URL, "%s/%d" % (key, i)),
        "minor": i,
    } for i in range(server["gpus"])]


_TEMPLATE = []


def _autospec():
    """One autospec of pynvml per session (building one takes ~0.6 s), reset for each fake."""
    if not _TEMPLATE:
        fake = mock.create_autospec(pynvml, spec_set=True)
        for name, value in vars(pynvml).items():
            if name.startswith("NVML_") or (inspect.isclass(value) and issubclass(value, Exception)):
                setattr(fake, name, value)
        _TEMPLATE.append(fake)
    fake = _TEMPLATE[0]
    fake.reset_mock(return_value=True, side_effect=True)
    return fake


class FakeNvml(object):
    """Builds the autospecced fake and keeps the state its side effects read."""

    def __init__(self, devices, links=None, mig=None, numa=None, init_error=None,
                 driver=MOCK_DATA["system"]["driver_version"]):
        self.devices = devices
        self.links = links or {}            # index -> [remote bus id per link]
        self.mig = mig or {}                 # index -> (current, pending); absent: not supported
        self.numa = numa or {}               # index -> node; absent: not supported
        fake = _autospec()
        if init_error is not None:
            fake.nvmlInit.side_effect = pynvml.NVMLError(init_error)
        fake.nvmlSystemGetDriverVersion.return_value = driver
        fake.nvmlDeviceGetCount.return_value = len(devices)
        fake.nvmlDeviceGetHandleByIndex.side_effect = lambda index: ("handle", index)
        fake.nvmlDeviceGetName.side_effect = lambda h: self.devices[h[1]]["name"]
        fake.nvmlDeviceGetUUID.side_effect = lambda h: self.devices[h[1]]["uuid"]
        fake.nvmlDeviceGetMinorNumber.side_effect = lambda h: self.devices[h[1]]["minor"]
        fake.nvmlDeviceGetMemoryInfo.side_effect = self._memory
        fake.nvmlDeviceGetPciInfo.side_effect = self._pci
        fake.nvmlDeviceGetNumaNodeId.side_effect = self._numa
        fake.nvmlDeviceGetMigMode.side_effect = self._mig
        fake.nvmlDeviceGetNvLinkState.side_effect = self._link_state
        fake.nvmlDeviceGetNvLinkRemotePciInfo.side_effect = self._remote
        self.fake = fake

    @staticmethod
    def _not_supported():
        return pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    def _memory(self, handle, version=None):
        mem = pynvml.c_nvmlMemory_t()
        mem.total = self.devices[handle[1]]["memory"]
        return mem

    def _pci(self, handle):
        info = pynvml.nvmlPciInfo_t()
        # NVML prints an 8-digit domain
        info.busId = ("0000" + self.devices[handle[1]]["bus_id"]).encode()
        return info

    def _numa(self, handle):
        if handle[1] not in self.numa:
            raise self._not_supported()
        return self.numa[handle[1]]

    def _mig(self, device):
        if device[1] not in self.mig:
            raise self._not_supported()
        return list(self.mig[device[1]])

    def _link_state(self, device, link):
        remotes = self.links.get(device[1])
        if remotes is None:
            raise self._not_supported()
        if link >= len(remotes):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return pynvml.NVML_FEATURE_ENABLED

    def _remote(self, device, link):
        info = pynvml.nvmlPciInfo_t()
        info.busId = ("0000" + self.links[device[1]][link]).encode()
        return info


def test_fake_is_strict():
    """The fake rejects what the real module would: unknown names, wrong arity."""
    fake = FakeNvml(_server("dgxa100.New()")).fake
    with pytest.raises(AttributeError):
        fake.nvmlDeviceGetNvLinkPeers  # pylint: disable=pointless-statement
    with pytest.raises(TypeError):
        fake.nvmlDeviceGetNvLinkState(("handle", 0))
    with pytest.raises(TypeError):
        fake.nvmlDeviceGetCpuAffinity(("handle", 0))


def test_query_dgx_a100_mock_server():
    devices = _server("dgxa100.New()")
    switches = ["0000:%02x:00.0" % (0xc4 + s) for s in range(6)]
    links = dict((i, [switches[link % 6] for link in range(12)]) for i in range(8))
    fake_nvml = FakeNvml(devices, links=links, mig={0: (1, 1), 1: (0, 1)})
    answer = query_nvml(fake_nvml.fake)
    assert answer["available"] is True and answer["error"] is None
    assert answer["driver_version"] == "550.54.15"
    assert [d["bus_id"] for d in answer["devices"]] == ["0000:%02x:00.0" % i for i in range(8)]
    first = answer["devices"][0]
    assert first["name"] == "Mock NVIDIA A100-SXM4-40GB"
    assert first["memory_total_bytes"] == 40960 * MiB
    assert first["uuid"].startswith("GPU-")
    assert first["mig_mode"] == {"current": "enabled", "pending": "enabled"}
    assert answer["devices"][1]["mig_mode"] == {"current": "disabled", "pending": "enabled"}
    assert answer["devices"][2]["mig_mode"] is None
    assert first["numa_node"] is None  # NOT_SUPPORTED off Grace systems
    assert first["nvlink_count"] == 12 and set(first["nvlink_remotes"]) == set(switches)
    fake_nvml.fake.nvmlInit.assert_called_once_with()
    fake_nvml.fake.nvmlShutdown.assert_called_once_with()
    # it probed every link slot NVML has, then stopped
    assert fake_nvml.fake.nvmlDeviceGetNvLinkState.call_count == 8 * pynvml.NVML_NVLINK_MAX_LINKS


@pytest.mark.parametrize("key", sorted(MOCK_DATA["servers"]))
def test_every_mock_server(key):
    server = MOCK_DATA["servers"][key]
    answer = query_nvml(FakeNvml(_server(key)).fake)
    assert len(answer["devices"]) == server["gpus"]
    assert set(d["name"] for d in answer["devices"]) == set([server["name"]])
    assert set(d["memory_total_bytes"] for d in answer["devices"]) == set([server["memory_MiB"] * MiB])
    assert all(d["nvlink_remotes"] == [] and d["mig_mode"] is None for d in answer["devices"])


def test_merge_into_dgx_a100_tree():
    """NVML answers for the GPUs of the synthetic DGX A100 (tree bus ids, mock data)."""
    facts, warnings = T.gather(str(tt.cached_tree("dgx-a100-nps4")))
    devices = _server("dgxa100.New()")
    for dev, gpu in zip(devices, facts["gpus"]):
        dev["bus_id"] = gpu["bus_id"]
    switches = [s["bus_id"] for s in facts["nvswitches"]]
    links = dict((i, [switches[link % 6] for link in range(12)]) for i in range(8))
    answer = query_nvml(FakeNvml(devices, links=links, mig={3: (1, 1)}).fake)
    gpus = merge_nvml(facts["gpus"], switches, answer, warnings)
    assert not warnings
    assert [g["index"] for g in gpus] == list(range(8))
    assert [g["numa_node"] for g in gpus] == [3, 3, 1, 1, 7, 7, 5, 5]  # sysfs locality kept
    for gpu in gpus:
        assert gpu["name"] == "Mock NVIDIA A100-SXM4-40GB"
        assert gpu["memory_total_bytes"] == 40960 * MiB
        assert gpu["nvlink_peers"] == [i for i in range(8) if i != gpu["index"]]
        assert gpu["nvlink_count"] == 12
        assert gpu["nvml_numa_node"] is None
    assert gpus[3]["mig_mode"]["current"] == "enabled" and gpus[0]["mig_mode"] is None


def test_nvlink_bridge_pairs_and_no_nvlink():
    """PCIe cards: a bridged pair sees only its partner; cards without NVLink see none."""
    facts, warnings = T.gather(str(tt.cached_tree("pcie-l40s")))
    devices = _server("dgxh100.New()")
    for dev, gpu in zip(devices, facts["gpus"]):
        dev["bus_id"] = gpu["bus_id"]
    bus = [g["bus_id"] for g in facts["gpus"]]
    links = {0: [bus[1]] * 4, 1: [bus[0]] * 4}
    answer = query_nvml(FakeNvml(devices, links=links).fake)
    gpus = merge_nvml(facts["gpus"], [], answer, warnings)
    assert gpus[0]["nvlink_peers"] == [1] and gpus[1]["nvlink_peers"] == [0]
    assert all(g["nvlink_peers"] == [] for g in gpus[2:])


def test_grace_hopper_numa_node():
    """GH200: the PCI function is on node 0, NVML names the GPU's own memory node 1."""
    facts, warnings = T.gather(str(tt.cached_tree("gh200")))
    devices = _server("dgxh200.New()")[:1]
    devices[0]["bus_id"] = facts["gpus"][0]["bus_id"]
    answer = query_nvml(FakeNvml(devices, numa={0: 1}, mig={0: (0, 0)}).fake)
    assert answer["devices"][0]["numa_node"] == 1
    gpus = merge_nvml(facts["gpus"], [], answer, warnings)
    assert not warnings
    assert gpus[0]["nvml_numa_node"] == 1 and gpus[0]["numa_node"] == 0
    assert gpus[0]["bus_id"] == "0009:01:00.0"
    assert gpus[0]["mig_mode"] == {"current": "disabled", "pending": "disabled"}
    node1 = [n for n in facts["numa_nodes"] if n["id"] == gpus[0]["nvml_numa_node"]][0]
    assert node1["cpus"] == "" and node1["memory_bytes"] > 0


def test_nvml_gpus_unknown_to_sysfs_are_added_with_warnings():
    """The mock's synthetic bus ids match no sysfs device: kept, locality unknown, warned."""
    warnings = []
    answer = query_nvml(FakeNvml(_server("dgxb200.New()")).fake)
    gpus = merge_nvml([], [], answer, warnings)
    assert len(gpus) == 8 and [g["index"] for g in gpus] == list(range(8))
    assert all(g["numa_node"] is None and g["name"] == "NVIDIA B200 180GB HBM3e" for g in gpus)
    assert len(warnings) == 8 and "0000:00:00.0" in warnings[0]


def test_sysfs_gpu_missing_from_nvml_is_warned():
    facts, _unused = T.gather(str(tt.cached_tree("hgx-h100")))
    devices = _server("dgxh100.New()")[:7]
    for dev, gpu in zip(devices, facts["gpus"]):
        dev["bus_id"] = gpu["bus_id"]
    warnings = []
    gpus = merge_nvml(facts["gpus"], [], query_nvml(FakeNvml(devices).fake), warnings)
    assert gpus[7]["name"] is None and gpus[6]["name"] == "NVIDIA H100 80GB HBM3"
    assert any(facts["gpus"][7]["bus_id"] in w for w in warnings)


def test_init_failure_is_reported_not_raised():
    fake_nvml = FakeNvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    answer = query_nvml(fake_nvml.fake)
    assert answer["available"] is False
    assert "NVML Shared Library Not Found" in answer["error"]
    fake_nvml.fake.nvmlShutdown.assert_not_called()
    assert merge_nvml([{"bus_id": "0000:18:00.0"}], [], answer, []) == [{"bus_id": "0000:18:00.0"}]


def test_failure_mid_query_still_shuts_down():
    fake_nvml = FakeNvml(_server("dgxa100.New()"))
    fake_nvml.fake.nvmlDeviceGetCount.side_effect = pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
    answer = query_nvml(fake_nvml.fake)
    assert answer["available"] is False and "GPU is lost" in answer["error"]
    fake_nvml.fake.nvmlShutdown.assert_called_once_with()


def test_load_pynvml(monkeypatch):
    module, reason = load_pynvml()
    assert module is pynvml and reason is None
    monkeypatch.setitem(sys.modules, "pynvml", None)
    module, reason = load_pynvml()
    assert module is None and "nvidia-ml-py" in reason


def test_collect_never_queries_nvml_for_a_tree():
    fake_nvml = FakeNvml(_server("dgxa100.New()"))
    facts, _unused = collect(str(tt.cached_tree("dgx-a100-nps4")), nvml_module=fake_nvml.fake)
    fake_nvml.fake.nvmlInit.assert_not_called()
    assert facts["nvml"]["available"] is False and "root" in facts["nvml"]["error"]


def test_collect_live_root_with_fake_nvml():
    """On this GPU-less machine, NVML (the fake) reporting GPUs adds them with warnings."""
    fake_nvml = FakeNvml(_server("dgxh100.New()")[:2])
    facts, warnings = collect("/", nvml_module=fake_nvml.fake)
    fake_nvml.fake.nvmlInit.assert_called_once_with()
    assert facts["nvml"] == {"available": True, "error": None, "driver_version": "550.54.15"}
    assert facts["gpu_count"] == 2 and facts["gpus"][1]["name"] == "NVIDIA H100 80GB HBM3"
    assert sum("sysfs does not list" in w for w in warnings) == 2


def test_collect_nvml_disabled():
    fake_nvml = FakeNvml(_server("dgxh100.New()"))
    facts, _unused = collect("/", use_nvml=False, nvml_module=fake_nvml.fake)
    fake_nvml.fake.nvmlInit.assert_not_called()
    assert facts["nvml"]["error"].startswith("NVML query disabled")
