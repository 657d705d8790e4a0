# -*- coding: utf-8 -*-
"""The vllm_service unit template, rendered by Ansible for an HGX H100 placement plan.

The plan comes from the real planner on the synthetic HGX H100 tree
(tests/topology_trees.py: 8 GPUs, 2 NUMA nodes, GPUs 0-3 on CPUs
0-55,112-167); the template is the role's own, rendered by ansible-playbook
with the role's defaults and vars, so filters, quoting and defaults are real.
"""

import json
import shlex

import pytest
import yaml

from ansible_collections.inferfleet.gpu.plugins.module_utils import topology as T
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import parse_cpulist
from ansible_collections.inferfleet.gpu.plugins.module_utils.placement import plan_placement

import topology_trees as tt
from helpers import ROOT, run_playbook

ROLE = ROOT / "roles" / "vllm_service"
GIB = 1024 ** 3


def render(tmp_path, plan, **overrides):
    """Render the role's template once per planned instance; return {index: unit text}."""
    out = tmp_path / "units"
    out.mkdir()
    variables = {
        "__vllm_service_plan": plan,
        "__vllm_service_vllm_version": "0.32.0",
        "__vllm_service_model_fingerprint": "f" * 64,
        "__vllm_service_memory_bytes": 200 * GIB,
        # What tasks/artefacts.yml decides: the versioned venv and the model revision's directory.
        "__vllm_service_venv": "/opt/inferfleet/vllm/0.32.0-cuda",
        "__vllm_service_model_dir": "/models/Qwen--Qwen3-VL-30B-A3B-Instruct/" + "c" * 40,
        "vllm_service_flavour": "cuda",
        "vllm_service_gpus_per_instance": len(plan[0]["gpus"]) or 1,
    }
    variables.update(overrides)
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    (tmp_path / "play.yml").write_text("""
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - %(role)s/defaults/main.yml
    - %(role)s/vars/main.yml
    - %(vars)s
  tasks:
    - name: Render the unit of every instance
      ansible.builtin.template:
        src: %(role)s/templates/vllm.service.j2
        dest: "%(out)s/{{ instance.index }}.service"
        mode: "0644"
      loop: "{{ __vllm_service_plan }}"
      loop_control:
        loop_var: instance
""" % {"role": ROLE, "vars": tmp_path / "vars.json", "out": out})
    proc = run_playbook(tmp_path / "play.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {int(p.stem): p.read_text() for p in out.glob("*.service")}


def directives(text):
    """[Service] etc. directives as {key: [values]} (systemd allows repeated keys)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _sep, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def environment(d):
    return dict(v.split("=", 1) for v in d.get("Environment", []))


@pytest.fixture(scope="module")
def hgx():
    return T.gather(str(tt.cached_tree("hgx-h100")))[0]


@pytest.fixture(scope="module")
def hgx_units(tmp_path_factory, hgx):
    plan = plan_placement(hgx, gpus_per_instance=2)
    tmp = tmp_path_factory.mktemp("hgx")
    return plan, render(tmp, plan)


def test_one_unit_per_planned_instance(hgx_units):
    plan, units = hgx_units
    assert len(plan) == 4
    assert sorted(units) == [0, 1, 2, 3]


def test_placement_reaches_the_unit(hgx_units):
    plan, units = hgx_units
    seen = set()
    for inst in plan:
        d = directives(units[inst["index"]])
        env = environment(d)
        cpus = parse_cpulist(inst["cpus"])
        assert parse_cpulist(d["CPUAffinity"][0].replace(" ", ",")) == cpus
        assert d["AllowedCPUs"] == [inst["cpus"]]
        assert d["NUMAPolicy"] == ["bind"]
        assert d["NUMAMask"] == [",".join(str(n) for n in inst["numa_nodes"])]
        assert env["CUDA_VISIBLE_DEVICES"] == ",".join(str(g) for g in inst["gpus"])
        assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        # thread pools sized to the instance, not the host
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS"):
            assert env[var] == str(inst["cpu_count"]) == str(len(cpus))
        assert "CPUQuota" not in d  # off by default (vllm_service_cpu_quota_enabled)
        # GPU device access: the instance's GPUs and the control nodes only
        allowed = d["DeviceAllow"]
        assert d["DevicePolicy"] == ["closed"]
        assert {"/dev/nvidia%d rw" % g for g in inst["gpus"]} <= set(allowed)
        assert not any(a == "/dev/nvidia%d rw" % g for a in allowed for g in range(8) if g not in inst["gpus"])
        assert not cpus & seen
        seen |= cpus
    # HGX H100: GPUs 0-3 are on NUMA node 0 (CPUs 0-55,112-167)
    assert plan[0]["numa_nodes"] == [0] and plan[0]["gpus"] == [0, 1]
    assert parse_cpulist(plan[0]["cpus"]) <= parse_cpulist("0-55,112-167")
    assert 0 not in seen and 112 not in seen  # housekeeping core stays out


def test_resources_scheduling_and_hardening(hgx_units):
    units = hgx_units[1]
    d = directives(units[0])
    assert d["MemoryMax"] == [str(200 * GIB)]
    assert d["TasksMax"] == ["4096"]
    assert d["Nice"] == ["0"]
    assert d["CPUSchedulingPolicy"] == ["other"]
    assert "CPUSchedulingPriority" not in d
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
    # vLLM's temp and cache files stay inside the instance's own (writable) directory
    for var in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "VLLM_CACHE_ROOT", "HF_HOME"):
        assert env[var].startswith(state)
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1"


def test_fifo_and_quota_when_asked(tmp_path, hgx):
    plan = plan_placement(hgx, gpus_per_instance=2)
    d = directives(render(tmp_path, plan, vllm_service_sched_policy="fifo", vllm_service_cpu_quota_enabled=True,
                          vllm_service_nice=-10)[0])
    assert d["CPUSchedulingPolicy"] == ["fifo"] and d["CPUSchedulingPriority"] == ["80"]
    assert d["CPUQuota"] == ["%d%%" % (plan[0]["cpu_count"] * 100)] and d["Nice"] == ["-10"]


def test_execstart_flags(hgx_units):
    plan, units = hgx_units
    for inst in plan:
        d = directives(units[inst["index"]])
        argv = shlex.split(d["ExecStart"][0])
        assert argv[:3] == ["/opt/inferfleet/vllm/0.32.0-cuda/bin/vllm", "serve",
                            "/models/Qwen--Qwen3-VL-30B-A3B-Instruct/" + "c" * 40]
        flags = argv[3:]

        def value(flag):
            return flags[flags.index(flag) + 1]

        assert value("--port") == str(8000 + inst["index"])
        assert value("--host") == "0.0.0.0"
        assert value("--tensor-parallel-size") == "2"
        assert value("--gpu-memory-utilization") == "0.9"
        assert value("--served-model-name") == "Qwen/Qwen3-VL-30B-A3B-Instruct"
        assert json.loads(value("--limit-mm-per-prompt")) == {"image": 4, "video": 1}
        assert "--enable-prefix-caching" in flags
        assert "--api-key" not in flags


def test_api_key_stays_out_of_the_unit(tmp_path, hgx):
    plan = plan_placement(hgx, gpus_per_instance=8)
    units = render(tmp_path, plan, vllm_service_api_key="s3cr3t-key")
    text = units[0]
    assert "s3cr3t-key" not in text
    assert directives(text)["EnvironmentFile"] == ["/etc/inferfleet/vllm/secrets.env"]


def test_cpu_instance_other_policy_and_extra_flags(tmp_path):
    topo = {"cpus": {"online": "0-3", "count": 4, "allowed": "0-3", "threads_per_core": 1,
                     "smt_groups": [[0], [1], [2], [3]]},
            "numa_nodes": [{"id": 0, "cpus": "0-3", "memory_bytes": 8 * GIB}], "gpus": []}
    plan = plan_placement(topo)
    units = render(tmp_path, plan, vllm_service_flavour="cpu", vllm_service_sched_policy="other",
                   vllm_service_extra_flags=["--enforce-eager", "--kv-cache-memory-bytes", "256M"],
                   vllm_service_limit_mm_per_prompt={"image": 1, "video": 0})
    d = directives(units[0])
    env = environment(d)
    assert plan[0]["cpus"] == "1-3"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "1-3"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert "CPUSchedulingPriority" not in d and d["CPUSchedulingPolicy"] == ["other"]
    assert "DeviceAllow" not in d
    argv = shlex.split(d["ExecStart"][0])
    assert "--tensor-parallel-size" not in argv and "--gpu-memory-utilization" not in argv
    assert argv[-6:-4] == ["--kv-cache-memory-bytes", "256M"]
    assert json.loads(argv[argv.index("--limit-mm-per-prompt") + 1]) == {"image": 1, "video": 0}


def test_defaults_documented_in_argument_specs():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert set(defaults) == set(specs)
