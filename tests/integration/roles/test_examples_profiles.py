# -*- coding: utf-8 -*-
"""The fleet profiles under examples/ are valid input and render the units they promise.

For each profile (an inventory and group_vars a user copies):

- every role variable in its group_vars is checked against that role's
  meta/argument_specs.yml with Ansible's own validator (unknown names, wrong
  types and choices fail, as they would when the role starts);
- the inventory has the groups site.yml and the fleet roles use (gpu_hosts,
  gateways, monitoring);
- its vLLM units are rendered by the role itself (its public interface: the
  role variables from the profile and the gpu_topology fact, read with
  ``root=`` from a synthetic tree of the matching machine) in check mode with
  --diff, and each unit is parsed and its directives checked: one unit per
  instance, the instance's GPUs in CUDA_VISIBLE_DEVICES and DeviceAllow and no
  other GPU, the tensor-parallel size, a CPU set local to the GPUs, and the
  recipe's flags on the command line.
"""
import json
import shlex
import subprocess

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import parse_cpulist

import topology_trees as tt
from helpers import ANSIBLE_PLAYBOOK, ROOT, ansible_env, unit_directives

EXAMPLES = ROOT / "examples"
ROLES = ["vllm_service", "host_tuning", "nvidia_driver", "vllm"]  # longest prefix first


def _h100_single():
    """One H100 (the first of the HGX board) and its NVMe disks: a 1-GPU instance, no NVSwitch."""
    spec = tt.layout("hgx-h100")
    gpus = [p for p in spec["pci"] if p["vendor"] == tt.NVIDIA and p["cls"] == "0x030200"]
    keep = [gpus[0]] + [p for p in spec["pci"] if p["vendor"] != tt.NVIDIA]
    return {"pci": keep}


# profile directory -> (synthetic layout, overrides, GPUs per instance, instances, flags the recipe asks for)
PROFILES = {
    "hgx-h100x8-qwen3-vl-235b-fp8": dict(
        layout="hgx-h100", overrides=None, tp=8, instances=1, nvswitches=4,
        model="Qwen/Qwen3-VL-235B-A22B-Instruct-FP8",
        flags=[["--tensor-parallel-size", "8"], ["--mm-encoder-tp-mode", "data"], ["--max-model-len", "128000"],
               ["--gpu-memory-utilization", "0.95"], ["--mm-processor-cache-type", "shm"]]),
    "h100x1-qwen3-vl-30b": dict(
        layout="hgx-h100", overrides=_h100_single, tp=1, instances=1, nvswitches=0,
        model="Qwen/Qwen3-VL-30B-A3B-Instruct",
        flags=[["--tensor-parallel-size", "1"], ["--max-model-len", "32768"], ["--gpu-memory-utilization", "0.92"]]),
    "l40s-qwen3-vl-30b-fp8": dict(
        layout="pcie-l40s", overrides=None, tp=1, instances=8, nvswitches=0,
        model="Qwen/Qwen3-VL-30B-A3B-Instruct-FP8",
        flags=[["--tensor-parallel-size", "1"], ["--max-model-len", "32768"], ["--gpu-memory-utilization", "0.9"]]),
}


def _load(path):
    return yaml.safe_load(path.read_text()) or {}


def _profile_vars(name):
    out = {}
    for part in ("all", "gpu_hosts"):
        path = EXAMPLES / name / "group_vars" / (part + ".yml")
        if path.exists():
            out.update(_load(path))
    return out


def _without_defaults(options):
    """The spec without defaults (some are Jinja the role templates first): only set values are checked."""
    out = {}
    for key, opt in options.items():
        opt = {k: v for k, v in opt.items() if k != "default"}
        if isinstance(opt.get("options"), dict):
            opt["options"] = _without_defaults(opt["options"])
        out[key] = opt
    return out


def _role_of(var):
    for role in ROLES:
        if var.startswith(role + "_"):
            return role
    return None


def test_every_profile_is_tested():
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) == sorted(PROFILES)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_inventory_has_the_fleet_groups(name):
    inv = _load(EXAMPLES / name / "inventory.yml")
    groups = inv["all"]["children"]
    for group in ("gpu_hosts", "gateways", "monitoring"):
        assert groups.get(group, {}).get("hosts"), f"{name}: group {group} has no hosts"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_group_vars_match_the_argument_specs(name):
    variables = _profile_vars(name)
    by_role = {}
    for var, value in variables.items():
        role = _role_of(var)
        if role is None:
            assert var.startswith("inferfleet_"), f"{name}: {var} belongs to no role and is not a site switch"
            continue
        by_role.setdefault(role, {})[var] = value
    assert {"host_tuning", "vllm_service"} <= set(by_role), f"{name}: profiles set tuning and serving"
    for role, params in sorted(by_role.items()):
        spec = _load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
        result = ArgumentSpecValidator(_without_defaults(spec)).validate(params)
        assert not result.error_messages, f"{name}: {role}: {result.error_messages}"


PLAY = """
- name: Render a profile's vLLM units in check mode
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - %(vars)s
  tasks:
    - name: The synthetic machine's topology (the fact the roles plan on)
      inferfleet.gpu.gpu_topology:
        root: %(root)s
      tags: [always]

    - name: The serving role, as site.yml runs it
      ansible.builtin.import_role:
        name: inferfleet.gpu.vllm_service
      vars:
        vllm_service_topology: "{{ ansible_facts.gpu_topology }}"
        # no vLLM is installed here: its parser cannot check the flags
        vllm_service_flag_check_enabled: false
"""


def render_units(tmp_path, name, tree):
    variables = _profile_vars(name)
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    (tmp_path / "play.yml").write_text(PLAY % {"vars": tmp_path / "vars.json", "root": tree})
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(tmp_path / "play.yml"),
         "--check", "--diff", "--tags", "vllm_service_configure,vllm_service_model",
         # The run part (systemd, readiness) cannot run without systemd; it is what sets the
         # endpoints the role publishes at its end.
         "-e", '{"__vllm_service_endpoints": []}',
         # What deploy.yml's resolve play finds on the hub (unreachable here): a pinned commit and
         # no per-file checksums yet (nothing is downloaded in check mode).
         "-e", '{"__vllm_service_model_commit": "%s", "__vllm_service_model_hub_manifest": {}}' % ("0" * 40)],
        env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local")), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    doc = json.loads(proc.stdout[proc.stdout.index("{"):])
    units, topo = {}, None
    for play in doc["plays"]:
        for task in play["tasks"]:
            res = task["hosts"].get("localhost", {})
            if task["task"]["name"].endswith("one unit per instance"):
                for item in res["results"]:
                    diffs = item["diff"] if isinstance(item["diff"], list) else [item["diff"]]
                    units[item["instance"]["index"]] = (item["instance"], diffs[-1]["after"])
            if res.get("ansible_facts", {}).get("gpu_topology"):
                topo = res["ansible_facts"]["gpu_topology"]
    return units, topo


@pytest.fixture(scope="module", params=sorted(PROFILES))
def rendered(request, tmp_path_factory):
    name = request.param
    prof = PROFILES[name]
    if not tt.TOPO_JSON.exists():
        pytest.skip(f"the synthetic trees need {tt.TOPO_JSON}")
    tmp = tmp_path_factory.mktemp(name)
    overrides = prof["overrides"]() if prof["overrides"] else {}
    # with the loaded driver's files: units name GPUs by UUID and devices by minor
    tree = tt.write_nvidia_proc(tt.build_tree(tmp / "tree", prof["layout"], **overrides), prof["layout"])
    units, topo = render_units(tmp, name, tree)
    return name, prof, units, topo


def test_one_unit_per_instance(rendered):
    name, prof, units, topo = rendered
    assert topo is not None, "the gpu_topology fact came from the synthetic tree"
    assert len(topo["gpus"]) == prof["tp"] * prof["instances"], name
    assert topo["nvswitch_count"] == prof["nvswitches"], name
    assert sorted(units) == list(range(prof["instances"])), name


def test_units_carry_gpus_tp_cpus_and_recipe_flags(rendered):
    name, prof, units, topo = rendered
    gpu_cpus = {}
    for gpu in topo["gpus"]:
        gpu_cpus[gpu["index"]] = set(parse_cpulist(gpu.get("local_cpulist") or gpu.get("cpulist") or ""))
    seen_gpus, seen_cpus = set(), set()
    for index, (inst, text) in sorted(units.items()):
        d = unit_directives(text)
        gpus = [int(g) for g in inst["gpus"]]
        assert len(gpus) == prof["tp"], (name, index, gpus)
        assert not set(gpus) & seen_gpus, (name, "GPU in two units", gpus)
        seen_gpus |= set(gpus)
        env = dict(v.strip('"').split("=", 1) for v in d.get("Environment", []))
        # the instance's GPUs, named for CUDA (by index today; by UUID once the plan names them so)
        visible = env["CUDA_VISIBLE_DEVICES"].split(",")
        uuids = {str(g["index"]): g.get("uuid") for g in topo["gpus"]}
        assert visible in ([str(g) for g in gpus], [uuids[str(g)] for g in gpus]), (name, visible, gpus)
        # device access: these GPUs' minors and no other GPU's
        assert d["DevicePolicy"] == ["closed"], name
        allowed = " ".join(d["DeviceAllow"])
        for g in topo["gpus"]:
            # by the driver's minor, which need not follow the PCI-order index
            assert (f"/dev/nvidia{g['minor']} " in allowed + " ") == (g["index"] in gpus), (name, index, g, d["DeviceAllow"])
        # tensor parallel size and the recipe's flags on the command line
        argv = shlex.split(" ".join(d["ExecStart"]))
        pairs = list(zip(argv, argv[1:]))
        for flag in prof["flags"]:
            assert tuple(flag) in pairs, (name, flag, argv)
        assert ("--model" in argv and any(prof["model"].replace("/", "--") in a for a in argv)) or prof["model"] in argv, \
            (name, argv)
        mm = json.loads(argv[argv.index("--limit-mm-per-prompt") + 1])
        assert mm["video"] == 0, (name, mm)
        # CPU set: the instance's CPUs, disjoint from the others, local to its GPUs when the tree says so
        cpus = set(parse_cpulist(d["AllowedCPUs"][0]))
        assert cpus and cpus == set(parse_cpulist(inst["cpus"])), (name, index)
        assert not cpus & seen_cpus, (name, index)
        seen_cpus |= cpus
        local = set().union(*(gpu_cpus.get(g, set()) for g in gpus))
        if local:
            assert cpus <= local, (name, index, sorted(cpus - local)[:8])
