# -*- coding: utf-8 -*-
"""The vllm_service plan (module_utils/vllm_plan.py) on synthetic and captured topologies.

Settings are the role's own defaults (roles/vllm_service/defaults/main.yml, its
five templated values resolved as Ansible would with no vllm role vars set).
"""

import copy
from pathlib import Path

import pytest
import yaml

from ansible_collections.inferfleet.gpu.plugins.module_utils import topology as T
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import parse_cpulist
from ansible_collections.inferfleet.gpu.plugins.module_utils.vllm_plan import plan_vllm, size_to_bytes

import topology_trees as tt

ROLE = Path(__file__).resolve().parents[4] / "roles" / "vllm_service"
GIB = 1024 ** 3
HOST = {"memtotal_bytes": 2048 * GIB, "rt_runtime_us": 950000}
HGX_MINORS = [2, 0, 3, 1, 6, 4, 7, 5]


def role_settings(**overrides):
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    defaults.update({
        "vllm_service_venv": "/opt/inferfleet/vllm",
        "vllm_service_flavour": "cuda",
        "vllm_service_model_dir_name": defaults["vllm_service_model"].replace("/", "--"),
        "vllm_service_served_model_name": defaults["vllm_service_model"],
        "vllm_service_model_fanout_address": "10.0.0.5",
    })
    defaults.update(overrides)
    return defaults


@pytest.fixture(scope="module")
def hgx(tmp_path_factory):
    root = tt.write_nvidia_proc(tt.build_tree(tmp_path_factory.mktemp("hgx"), "hgx-h100"), "hgx-h100")
    return T.gather(str(root))[0]


@pytest.fixture(scope="module")
def hgx_no_driver():
    return T.gather(str(tt.cached_tree("hgx-h100")))[0]


def cpu_topology(cpus="0-3"):
    n = len(parse_cpulist(cpus))
    return {"cpus": {"online": cpus, "count": n, "allowed": cpus, "smt_siblings": []},
            "numa_nodes": [{"id": 0, "cpus": cpus, "memory_bytes": 8 * GIB}], "gpus": [], "memory_total_bytes": 8 * GIB}


def test_hgx_one_gpu_per_instance_by_uuid_and_minor(hgx):
    plan = plan_vllm(hgx, role_settings(), HOST)
    assert plan["errors"] == []
    insts = plan["instances"]
    assert [i["unit"] for i in insts] == ["inferfleet-vllm-%d.service" % n for n in range(8)] == plan["units"]
    assert [i["port"] for i in insts] == list(range(8000, 8008))
    by_bus = dict((g["bus_id"], g) for g in hgx["gpus"])
    for inst in insts:
        (bus,) = inst["gpu_bus_ids"]
        assert inst["gpu_uuids"] == [by_bus[bus]["uuid"]]
        assert inst["cuda_visible_devices"] == by_bus[bus]["uuid"]
        assert inst["device_allow"] == ["/dev/nvidia%d" % by_bus[bus]["minor"]]
        env = dict((e["name"], e["value"]) for e in inst["environment"])
        assert env["CUDA_VISIBLE_DEVICES"].startswith("GPU-")
        # vLLM's own thread policy for GPU workers stays in place
        assert not set(env) & {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
        assert inst["flags"][-4:] == ["--host", "0.0.0.0", "--port", str(inst["port"])]
    # minors are the driver's, not the PCI order
    assert [i["gpu_minors"][0] for i in insts] == HGX_MINORS
    assert [i["gpus"][0] for i in insts] == list(range(8))
    # NVSwitch system: the fabric manager is required
    assert "nvidia-fabricmanager.service" in insts[0]["unit_requires"]


def test_hgx_pairs(hgx):
    plan = plan_vllm(hgx, role_settings(vllm_service_gpus_per_instance=2), HOST)
    assert plan["errors"] == []
    assert [i["gpu_minors"] for i in plan["instances"]] == [[2, 0], [3, 1], [6, 4], [7, 5]]
    assert all(len(i["cuda_visible_devices"].split(",")) == 2 for i in plan["instances"])
    assert plan["instances"][0]["memory_max_bytes"] == int(2048 * GIB * 0.9 / 4)
    assert "--tensor-parallel-size" in plan["flags"]


def test_driver_not_loaded_refused(hgx_no_driver):
    plan = plan_vllm(hgx_no_driver, role_settings(), HOST)
    assert plan["instances"] == []
    assert len(plan["errors"]) == 8
    assert "no UUID or device minor" in plan["errors"][0] and "driver is not loaded" in plan["errors"][0]


@pytest.mark.parametrize("driver,expect", [
    ({"reboot_required": True}, "needs a reboot"),
    ({"loaded_version": "570.133.20", "pinned_version": "580.95.05"}, "loaded NVIDIA driver is 570.133.20"),
])
def test_driver_needs_reboot_refuses_gpu_instances(hgx, driver, expect):
    plan = plan_vllm(hgx, role_settings(), dict(HOST, nvidia_driver=driver))
    assert plan["instances"] == [] and plan["driver_blocker"]
    assert any(expect in e and "reboot" in e.lower() for e in plan["errors"])


def test_driver_gate_does_not_touch_cpu_hosts():
    plan = plan_vllm(cpu_topology(), role_settings(vllm_service_flavour="cpu"),
                     dict(HOST, nvidia_driver={"reboot_required": True}))
    assert plan["errors"] == [] and len(plan["instances"]) == 1


def test_matching_driver_passes(hgx):
    plan = plan_vllm(hgx, role_settings(), dict(HOST, nvidia_driver={"loaded_version": "580.95.05",
                                                                     "pinned_version": "580.95.05"}))
    assert plan["errors"] == []


def test_cpu_flavour_threads_and_bind():
    plan = plan_vllm(cpu_topology(), role_settings(vllm_service_flavour="cpu"), HOST)
    (inst,) = plan["instances"]
    env = dict((e["name"], e["value"]) for e in inst["environment"])
    assert inst["cpus"] == "1-3"
    assert env["OMP_NUM_THREADS"] == env["TORCH_NUM_THREADS"] == "3"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "1-3" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert "--tensor-parallel-size" not in inst["flags"] and "--gpu-memory-utilization" not in inst["flags"]
    assert inst["device_allow"] == [] and inst["unit_requires"] == []


def test_user_thread_value_on_gpu_is_kept_and_explained(hgx):
    plan = plan_vllm(hgx, role_settings(vllm_service_environment={"OMP_NUM_THREADS": 4}), HOST)
    env = plan["instances"][0]["environment"]
    (omp,) = [e for e in env if e["name"] == "OMP_NUM_THREADS"]
    assert omp["value"] == "4" and "overrides vLLM" in omp["comment"]


@pytest.mark.parametrize("policy,rt", [("fifo", True), ("rr", True), ("other", False), ("batch", False)])
def test_scheduling_comments_per_policy(policy, rt):
    plan = plan_vllm(cpu_topology(), role_settings(vllm_service_flavour="cpu", vllm_service_sched_policy=policy,
                                                   vllm_service_cpu_quota_enabled=True), HOST)
    sched = plan["scheduling"]
    assert sched["rt"] is rt
    assert (sched["priority"] == 80) is rt
    assert ("no effect" in sched["nice_comment"]) is rt
    assert ("does not limit" in sched["quota_comment"]) is rt
    assert bool(plan["warnings"]) is rt


# Every held-out bad value: refused, the message names the role variable, its value and what is allowed.
BAD = [
    ("vllm_service_gpu_memory_utilization", 1.5, "vllm_service_gpu_memory_utilization=1.5", "at most 1"),
    ("vllm_service_gpu_memory_utilization", 0, "vllm_service_gpu_memory_utilization=0", "greater than 0"),
    ("vllm_service_max_num_seqs", 0, "vllm_service_max_num_seqs=0", ">= 1"),
    ("vllm_service_limit_mm_per_prompt", {"image": -1}, 'vllm_service_limit_mm_per_prompt={"image": -1}', ">= 0"),
    ("vllm_service_limit_mm_per_prompt", {"images": 1}, "vllm_service_limit_mm_per_prompt=", "image, video, audio"),
    ("vllm_service_listen_address", "not an address", "vllm_service_listen_address=not an address", "IP address"),
    ("vllm_service_api_key", 12345, "vllm_service_api_key must be a string", "not an integer"),
    ("vllm_service_api_key", "two words", "vllm_service_api_key has spaces", "printable"),
    ("vllm_service_housekeeping_cpus", "0-9999", "vllm_service_housekeeping_cpus=0-9999", "not online"),
    ("vllm_service_housekeeping_cpus", "zero", "vllm_service_housekeeping_cpus=zero", "cpulist"),
    ("vllm_service_instances", 0, "vllm_service_instances=0", "from 1 to 1024 or null"),
    ("vllm_service_gpus_per_instance", 3, "vllm_service_gpus_per_instance=3", "1, 2, 4, 8"),
    ("vllm_service_sched_priority", 150, "vllm_service_sched_priority=150", "from 1 to 99"),
    ("vllm_service_sched_policy", "deadline", "vllm_service_sched_policy=deadline", "fifo, rr, other"),
    ("vllm_service_nice", -21, "vllm_service_nice=-21", "from -20 to 19"),
    ("vllm_service_memory_share_percent", 0, "vllm_service_memory_share_percent=0", "from 1 to 100"),
    ("vllm_service_port_base", 70000, "vllm_service_port_base=70000", "from 1 to 65535"),
    ("vllm_service_port_base", 65530, "vllm_service_port_base=65530", "at most 65528"),
    ("vllm_service_tasks_max", 10, "vllm_service_tasks_max=10", ">= 64"),
    ("vllm_service_readiness_timeout", 5, "vllm_service_readiness_timeout=5", ">= 10"),
    ("vllm_service_memory_max", "4096G", "vllm_service_memory_max=4096G", "no larger than the host's RAM"),
    ("vllm_service_memory_max", "lots", "vllm_service_memory_max=lots", "a size such as 64G"),
    ("vllm_service_dtype", "fp64", "vllm_service_dtype=fp64", "bfloat16"),
    ("vllm_service_max_model_len", "long", "vllm_service_max_model_len=long", "an integer"),
    ("vllm_service_extra_flags", "--enforce-eager", "vllm_service_extra_flags=--enforce-eager", "list of strings"),
    ("vllm_service_environment", {"CUDA_VISIBLE_DEVICES": "0"}, "vllm_service_environment=", "set by the plan"),
    ("vllm_service_environment", {"BAD NAME": "x"}, "vllm_service_environment=", "shell variable names"),
    ("vllm_service_unit_prefix", "vllm server", "vllm_service_unit_prefix=vllm server", "systemd unit"),
    ("vllm_service_model_source", "s3", "vllm_service_model_source=s3", "hub, mirror, path"),
    ("vllm_service_restart", "sometimes", "vllm_service_restart=sometimes", "on-failure"),
    ("vllm_service_enable_prefix_caching", "maybe", "vllm_service_enable_prefix_caching=maybe", "boolean"),
    ("vllm_service_readiness_delay", 0, "vllm_service_readiness_delay=0", "from 1 to 900"),
    ("vllm_service_model_fanout_enabled", "sometimes", "vllm_service_model_fanout_enabled=sometimes", "boolean"),
    ("vllm_service_model_fanout_port", 0, "vllm_service_model_fanout_port=0", "from 1 to 65535"),
    ("vllm_service_model_fanout_port", 8003, "vllm_service_model_fanout_port=8003", "instances' ports 8000-8007"),
    ("vllm_service_model_fanout_timeout", 5, "vllm_service_model_fanout_timeout=5", "from 60"),
    ("vllm_service_model_fanout_address", "no such host!", "vllm_service_model_fanout_address=no such host!",
     "host name"),
]


@pytest.mark.parametrize("name,value,named,allowed", BAD, ids=["%s=%r" % (b[0], b[1]) for b in BAD])
def test_bad_values_name_the_variable(hgx, name, value, named, allowed):
    settings = role_settings(**{name: value})
    plan = plan_vllm(hgx, settings, HOST)
    assert plan["instances"] == [] and plan["units"] == []
    assert len(plan["errors"]) == 1, plan["errors"]
    (message,) = plan["errors"]
    assert named in message and allowed in message, message
    # one message names one variable: no other vllm_service_* variable is blamed as being wrong
    assert message.split("=")[0].split(" ")[0] == name


def test_errors_are_separate_messages(hgx):
    plan = plan_vllm(hgx, role_settings(vllm_service_max_num_seqs=0, vllm_service_nice=40), HOST)
    assert len(plan["errors"]) == 2
    assert plan["errors"][0].startswith("vllm_service_max_num_seqs=0")
    assert plan["errors"][1].startswith("vllm_service_nice=40")


def test_rt_needs_housekeeping_and_rt_runtime():
    plan = plan_vllm(cpu_topology(), role_settings(vllm_service_flavour="cpu", vllm_service_sched_policy="fifo",
                                                   vllm_service_housekeeping_cpus=""), HOST)
    assert len(plan["errors"]) == 1 and "vllm_service_sched_policy=fifo is refused" in plan["errors"][0]
    plan = plan_vllm(cpu_topology(), role_settings(vllm_service_flavour="cpu", vllm_service_sched_policy="fifo"),
                     dict(HOST, rt_runtime_us=-1))
    assert "sched_rt_runtime_us=-1" in plan["errors"][0]
    plan = plan_vllm(cpu_topology(), role_settings(vllm_service_flavour="cpu", vllm_service_sched_policy="other",
                                                   vllm_service_housekeeping_cpus=""), dict(HOST, rt_runtime_us=-1))
    assert plan["errors"] == [] and plan["instances"][0]["cpus"] == "0-3"


def test_strings_from_extra_vars_are_accepted(hgx):
    plan = plan_vllm(hgx, role_settings(vllm_service_max_num_seqs="32", vllm_service_gpu_memory_utilization="0.85",
                                        vllm_service_enable_prefix_caching="false"), HOST)
    assert plan["errors"] == []
    assert "--no-enable-prefix-caching" in plan["flags"]
    assert plan["flags"][plan["flags"].index("--max-num-seqs") + 1] == "32"


def test_size_to_bytes():
    assert size_to_bytes("64G") == 64 * GIB and size_to_bytes("1.5 GiB") == int(1.5 * GIB)
    assert size_to_bytes("512") == 512 and size_to_bytes("big") is None


LAYOUTS = ["hgx-h100", "pcie-l40s", "gh200", "dgx-a100-nps4"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_synthetic_layout(tmp_path, layout):
    root = tt.build_tree(tmp_path, layout)
    facts = T.gather(str(root))[0]
    # the driver files exist for three layouts; give the DGX made-up ones in PCI order
    for i, gpu in enumerate(facts["gpus"]):
        gpu.setdefault("uuid", None)
        if gpu["uuid"] is None:
            gpu["uuid"] = "GPU-%08d-0000-0000-0000-000000000000" % i
            gpu["minor"] = i
    plan = plan_vllm(facts, role_settings(), HOST)
    assert plan["errors"] == []
    used = set()
    for inst in plan["instances"]:
        cpus = set(parse_cpulist(inst["cpus"]))
        assert not cpus & used and cpus
        used |= cpus
        assert len(inst["device_allow"]) == len(inst["gpus"]) == len(inst["gpu_uuids"])


def test_every_captured_tree():
    """Real captured machines (hwloc's trees, no GPU): CPU instances, one per NUMA node with free CPUs."""
    for tarball in tt.fixture_tarballs():
        facts, _warnings = T.gather(str(tt.unpacked_tree(tarball)))
        plan = plan_vllm(facts, role_settings(vllm_service_flavour="cpu", vllm_service_sched_policy="other"), HOST)
        assert plan["errors"] == [] or all(e.startswith("vllm_service_") for e in plan["errors"]), plan["errors"]
        for inst in plan["instances"]:
            assert inst["gpus"] == [] and inst["cpu_count"] > 0


def test_settings_are_not_modified(hgx):
    settings = role_settings()
    before = copy.deepcopy(settings)
    plan_vllm(hgx, settings, HOST)
    assert settings == before


def test_tagged_subclasses_are_named_by_kind(hgx):
    """Ansible hands the filter tagged subclasses of int/str; messages name the kind, not the class."""

    class TaggedInt(int):
        pass

    plan = plan_vllm(hgx, role_settings(vllm_service_api_key=TaggedInt(12345)), HOST)
    assert plan["errors"] == ['vllm_service_api_key must be a string (quote it, and keep it in Ansible Vault), not an '
                              'integer; "" for no key']


def test_partitioned_host_plans_over_the_cgroup_roots_cpus():
    """On a host partitioned by host_tuning the gathering process only has the housekeeping CPU (0):
    the plan uses the cgroup root's CPUs (service_cpus) instead, so a second run plans the same."""
    confined = cpu_topology()
    confined["cpus"]["allowed"] = "0"
    settings = role_settings(vllm_service_flavour="cpu", vllm_service_sched_policy="other")
    assert plan_vllm(confined, settings, HOST)["errors"]  # without it: no CPU left for an instance
    plan = plan_vllm(confined, settings, dict(HOST, service_cpus="0-3"))
    assert plan["errors"] == [] and plan["instances"][0]["cpus"] == "1-3"
    # an unreadable or foreign value is a warning, never a different plan
    plan = plan_vllm(cpu_topology(), settings, dict(HOST, service_cpus="8-9"))
    assert plan["instances"][0]["cpus"] == "1-3" and plan["warnings"]
