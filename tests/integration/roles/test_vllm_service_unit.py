# -*- coding: utf-8 -*-
"""The vllm_service unit template, rendered by Ansible for an HGX H100 placement plan.

The plan comes from the real planner on the synthetic HGX H100 tree
(tests/unit/topology_trees.py: 8 GPUs, 2 NUMA nodes, GPUs 0-3 on CPUs
0-55,112-167); the template is the role's own, rendered by ansible-playbook
with the role's defaults and vars, so filters, quoting and defaults are real.
"""

import json
import shlex

import pytest
import yaml

from ansible_collections.inferfleet.gpu.plugins.module_utils import topology as T
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import parse_cpulist

import topology_trees as tt
from helpers import ROOT, run_playbook, unit_directives, write_play, write_vars

ROLE = ROOT / "roles" / "vllm_service"
VENV = "/opt/inferfleet/vllm/0.32.0-cuda"
MODEL_DIR = "/models/Qwen--Qwen3-VL-30B-A3B-Instruct/" + "c" * 40
GIB = 1024 ** 3


TASKS = """
- name: The plan, as the role computes it
  ansible.builtin.set_fact:
    __vllm_service_plan: "{{ __vllm_service_topology | inferfleet.gpu.vllm_plan(__vllm_service_settings, __vllm_service_host) }}"
- name: Keep it
  ansible.builtin.copy:
    content: "{{ __vllm_service_plan | to_json }}"
    dest: "%(out)s/plan.json"
    mode: "0644"
- name: Render the unit of every instance
  ansible.builtin.template:
    src: %(role)s/templates/vllm.service.j2
    dest: "%(out)s/{{ instance.index }}.service"
    mode: "0644"
  loop: "{{ __vllm_service_plan.instances }}"
  loop_control:
    loop_var: instance
"""


def render(tmp_path, topology, memtotal_bytes=2048 * GIB, **overrides):
    """Plan with the role's own vars and filter, render the template per instance; return (plan, {index: text})."""
    out = tmp_path / "units"
    out.mkdir()
    variables = {
        "__vllm_service_topology": topology,
        "__vllm_service_rt_runtime_us": 950000,
        "__vllm_service_vllm_version": "0.32.0",
        "__vllm_service_model_fingerprint": "f" * 64,
        "ansible_facts": {"memtotal_mb": memtotal_bytes // 1048576},
        # What tasks/artefacts.yml decides: the versioned venv and the model revision's directory.
        "__vllm_service_venv": VENV,
        "__vllm_service_model_dir": MODEL_DIR,
        "vllm_service_flavour": "cuda",
    }
    variables.update(overrides)
    play = write_play(tmp_path, TASKS % {"role": ROLE, "out": out},
                      vars_files=[ROLE / "defaults/main.yml", ROLE / "vars/main.yml", write_vars(tmp_path, variables)])
    proc = run_playbook(play)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = json.loads((out / "plan.json").read_text())
    return plan, {int(p.stem): p.read_text() for p in out.glob("*.service")}


def environment(d):
    return dict(v.split("=", 1) for v in d.get("Environment", []))


@pytest.fixture(scope="module")
def hgx(tmp_path_factory):
    """HGX H100 with the loaded driver's files: minors 2,0,3,1,6,4,7,5 in PCI order."""
    root = tt.write_nvidia_proc(tt.build_tree(tmp_path_factory.mktemp("tree"), "hgx-h100"), "hgx-h100")
    return T.gather(str(root))[0]


@pytest.fixture(scope="module")
def hgx_units(tmp_path_factory, hgx):
    # A real-time unit (fifo 80, nice -10, quota on): the comments on what does nothing under it.
    return render(tmp_path_factory.mktemp("hgx"), hgx, vllm_service_gpus_per_instance=2,
                  vllm_service_sched_policy="fifo", vllm_service_nice=-10, vllm_service_cpu_quota_enabled=True)


@pytest.fixture(scope="module")
def hgx8_units(tmp_path_factory, hgx):
    return render(tmp_path_factory.mktemp("hgx8"), hgx)


def test_one_unit_per_planned_instance(hgx_units):
    plan, units = hgx_units
    assert plan["errors"] == []
    assert len(plan["instances"]) == 4
    assert sorted(units) == [0, 1, 2, 3]


def test_gpus_by_uuid_devices_by_minor(hgx8_units, hgx):
    """Minors not in PCI order: each unit names its GPU by UUID and allows /dev/nvidia<minor>, never the index."""
    plan, units = hgx8_units
    by_bus = dict((g["bus_id"], g) for g in hgx["gpus"])
    minors = []
    for inst in plan["instances"]:
        d = unit_directives(units[inst["index"]])
        env = environment(d)
        (bus,) = inst["gpu_bus_ids"]
        gpu = by_bus[bus]
        assert env["CUDA_VISIBLE_DEVICES"] == gpu["uuid"]
        allowed = d["DeviceAllow"]
        assert "/dev/nvidia%d rw" % gpu["minor"] in allowed
        others = ["/dev/nvidia%d rw" % m for m in range(8) if m != gpu["minor"]]
        assert not set(others) & set(allowed)
        assert d["DevicePolicy"] == ["closed"]
        # GPU workers keep vLLM's own thread policy (1 per worker)
        assert "OMP_NUM_THREADS" not in env and "TORCH_NUM_THREADS" not in env
        assert d["Requires"] == ["nvidia-fabricmanager.service"]
        assert "nvidia-persistenced.service" in d["After"][0].split()
        minors.append(gpu["minor"])
    assert minors == [2, 0, 3, 1, 6, 4, 7, 5]
    # instance 0 (PCI-first GPU) gets /dev/nvidia2, not /dev/nvidia0
    assert "/dev/nvidia2 rw" in unit_directives(units[0])["DeviceAllow"]
    assert "/dev/nvidia0 rw" not in unit_directives(units[0])["DeviceAllow"]


def test_placement_reaches_the_unit(hgx_units):
    plan, units = hgx_units
    seen = set()
    for inst in plan["instances"]:
        d = unit_directives(units[inst["index"]])
        env = environment(d)
        cpus = parse_cpulist(inst["cpus"])
        assert parse_cpulist(d["CPUAffinity"][0].replace(" ", ",")) == cpus
        assert d["AllowedCPUs"] == [inst["cpus"]]
        assert d["NUMAPolicy"] == ["bind"]
        assert d["NUMAMask"] == [",".join(str(n) for n in inst["numa_nodes"])]
        assert env["CUDA_VISIBLE_DEVICES"] == ",".join(inst["gpu_uuids"])
        assert d["CPUQuota"] == ["%d%%" % (inst["cpu_count"] * 100)]
        allowed = d["DeviceAllow"]
        assert {"/dev/nvidia%d rw" % m for m in inst["gpu_minors"]} <= set(allowed)
        assert not cpus & seen
        seen |= cpus
    first = plan["instances"][0]
    assert first["numa_nodes"] == [0] and first["gpus"] == [0, 1] and first["gpu_minors"] == [2, 0]
    assert parse_cpulist(first["cpus"]) <= parse_cpulist("0-55,112-167")
    assert 0 not in seen and 112 not in seen  # housekeeping core stays out


def test_shipped_defaults(hgx8_units):
    """The defaults (docs/performance.md): SCHED_OTHER, nice 0, no quota; the units in their own slice."""
    _plan, units = hgx8_units
    d = unit_directives(units[0])
    assert d["CPUSchedulingPolicy"] == ["other"] and "CPUSchedulingPriority" not in d
    assert d["Nice"] == ["0"]
    assert "CPUQuota" not in d
    assert d["Slice"] == ["inferfleet.slice"]


def test_rt_policy_comments_on_quota_and_nice(hgx_units):
    """Under SCHED_FIFO, CPUQuota= and Nice= do nothing: each carries a comment saying so."""
    text = hgx_units[1][0]
    lines = text.splitlines()
    for key in ("CPUQuota=", "Nice="):
        (at,) = [i for i, line in enumerate(lines) if line.startswith(key)]
        assert "SCHED_FIFO" in lines[at - 1] and ("no effect" in lines[at - 1] or "does not limit" in lines[at - 1])


def test_other_policy_quota_and_nice_apply(tmp_path, hgx):
    plan, units = render(tmp_path, hgx, vllm_service_sched_policy="other", vllm_service_cpu_quota_enabled=True)
    lines = units[0].splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith("CPUQuota=")]
    assert "cpu.max" in lines[at - 1]
    assert "CPUSchedulingPriority" not in unit_directives(units[0])


def test_resources_scheduling_and_hardening(hgx_units):
    units = hgx_units[1]
    d = unit_directives(units[0])
    assert d["MemoryMax"] == [str(int(2048 * GIB * 0.9 / 4))]
    assert d["TasksMax"] == ["4096"]
    assert d["Nice"] == ["-10"]
    assert d["CPUSchedulingPolicy"] == ["fifo"]
    assert d["CPUSchedulingPriority"] == ["80"]
    assert d["LimitMEMLOCK"] == ["infinity"]
    assert d["Restart"] == ["on-failure"]
    assert int(d["TimeoutStartSec"][0]) >= 600
    assert d["User"] == ["vllm"]
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                       ("PrivateTmp", "yes")]:
        assert d[key] == [value]
    env = environment(d)
    state = "/var/lib/inferfleet/vllm/instance-0"
    assert d["ReadWritePaths"] == [state]
    for var in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "VLLM_CACHE_ROOT", "HF_HOME"):
        assert env[var].startswith(state)
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1"


def test_execstart_flags(hgx_units):
    plan, units = hgx_units
    for inst in plan["instances"]:
        d = unit_directives(units[inst["index"]])
        argv = shlex.split(d["ExecStart"][0])
        assert argv[:3] == [VENV + "/bin/vllm", "serve", MODEL_DIR]
        flags = argv[3:]

        def value(flag):
            return flags[flags.index(flag) + 1]

        assert value("--port") == str(8000 + inst["index"]) == str(inst["port"])
        assert value("--host") == "0.0.0.0"
        assert value("--tensor-parallel-size") == "2"
        assert value("--gpu-memory-utilization") == "0.9"
        assert value("--served-model-name") == "Qwen/Qwen3-VL-30B-A3B-Instruct"
        assert json.loads(value("--limit-mm-per-prompt")) == {"image": 4, "video": 1}
        assert "--enable-prefix-caching" in flags
        assert "--api-key" not in flags


def test_api_key_stays_out_of_the_unit(tmp_path, hgx):
    _plan, units = render(tmp_path, hgx, vllm_service_gpus_per_instance=8, vllm_service_api_key="s3cr3t-key")
    text = units[0]
    assert "s3cr3t-key" not in text
    assert unit_directives(text)["EnvironmentFile"] == ["/etc/inferfleet/vllm/secrets.env"]


def test_cpu_instance_other_policy_and_extra_flags(tmp_path):
    topo = {"cpus": {"online": "0-3", "count": 4, "allowed": "0-3", "threads_per_core": 1,
                     "smt_siblings": []},
            "numa_nodes": [{"id": 0, "cpus": "0-3", "memory_bytes": 8 * GIB}], "gpus": []}
    plan, units = render(tmp_path, topo, memtotal_bytes=8 * GIB, vllm_service_flavour="cpu",
                         vllm_service_sched_policy="other",
                         vllm_service_extra_flags=["--enforce-eager", "--kv-cache-memory-bytes", "256M"],
                         vllm_service_limit_mm_per_prompt={"image": 1, "video": 0})
    d = unit_directives(units[0])
    env = environment(d)
    assert plan["instances"][0]["cpus"] == "1-3"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "1-3"
    assert env["OMP_NUM_THREADS"] == env["TORCH_NUM_THREADS"] == "3"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert "CPUSchedulingPriority" not in d and d["CPUSchedulingPolicy"] == ["other"]
    assert "DeviceAllow" not in d and "Requires" not in d
    argv = shlex.split(d["ExecStart"][0])
    assert "--tensor-parallel-size" not in argv and "--gpu-memory-utilization" not in argv
    assert argv[-6:-4] == ["--kv-cache-memory-bytes", "256M"]
    assert json.loads(argv[argv.index("--limit-mm-per-prompt") + 1]) == {"image": 1, "video": 0}


def test_doc_shows_the_rendered_hgx_unit(hgx8_units):
    """docs/vllm.md carries the rendered unit of instance 0 of the 8-GPU HGX plan (UUID and minor)."""
    doc = (ROOT / "docs" / "vllm.md").read_text()
    plan, units = hgx8_units
    inst = plan["instances"][0]
    assert "Environment=CUDA_VISIBLE_DEVICES=%s" % inst["gpu_uuids"][0] in doc
    assert "DeviceAllow=/dev/nvidia%d rw" % inst["gpu_minors"][0] in doc
    body = [line for line in units[0].splitlines() if line and not line.startswith("#")]
    missing = [line for line in body if line not in doc]
    assert not missing, missing


def test_defaults_documented_in_argument_specs():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert set(defaults) == set(specs)
