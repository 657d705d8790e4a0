"""The nvidia_driver role's decisions, rendered from real inputs.

The fabric-manager decision, the package names per branch / source / kernel
module flavour and the version pin are pure functions of the variables and
the ``gpu_topology`` fact. These tests gather that fact with the real
``inferfleet.gpu.gpu_topology`` module from synthetic sysfs trees of an HGX
H100 (4 NVSwitches), a DGX A100 (6 NVSwitches) and a PCIe L40S server (none)
built by ``tests/topology_trees.py``, then let the role's own
``vars/main.yml`` decide (``include_role: tasks_from: validate`` -- read-only
tasks only -- with ``public: true``) and compare with what must come out.

Everything runs in one ansible-playbook call (one inventory host per case,
connection local): nothing on this machine is changed.
"""
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ANSIBLE_PLAYBOOK, playbook_results, run_playbook
from topology_trees import build_tree

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="no ansible-playbook next to this Python")

PLAYBOOK = """
- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: Gather the topology from the synthetic tree
      inferfleet.gpu.gpu_topology:
        root: "{{ case_root }}"
        nvml: false
      when: case_root is defined

    - name: Let the role decide (validation only, nothing changes)
      ansible.builtin.include_role:
        name: inferfleet.gpu.nvidia_driver
        tasks_from: validate
        public: true

    - name: Report the decisions
      ansible.builtin.debug:
        msg:
          has_gpu: "{{ __nvidia_driver_has_gpu | bool }}"
          gpus: "{{ nvidia_driver_gpus | length }}"
          nvswitch_count: "{{ nvidia_driver_nvswitch_count | int }}"
          fabricmanager_wanted: "{{ __nvidia_driver_fabricmanager_wanted | bool }}"
          fm_packages: "{{ __nvidia_driver_fm_packages }}"
          core_packages: "{{ __nvidia_driver_core_packages }}"
          held_packages: "{{ __nvidia_driver_held_packages }}"
          version_glob: "{{ __nvidia_driver_version_glob }}"
          version_regex: "{{ __nvidia_driver_version_regex }}"
          device_ids: "{{ __nvidia_driver_device_ids }}"
          open_only_ids: "{{ __nvidia_driver_open_only_ids }}"
          proprietary_only_ids: "{{ __nvidia_driver_proprietary_only_ids }}"
          repo_distro: "{{ __nvidia_driver_repo_distro }}"
"""


def run_cases(tmp_path: Path, cases: dict) -> dict:
    """Run the playbook with one host per case; return {host: result dict}."""
    inventory = {"all": {"hosts": {name: dict(vars, ansible_python_interpreter=sys.executable)
                                   for name, vars in cases.items()}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    proc = run_playbook(tmp_path / "play.yml", inventory=tmp_path / "inventory.yml", json_output=True)
    results = {}
    for task, hosts in playbook_results(proc).items():
        for host, res in hosts.items():
            if res.get("failed"):
                results[host] = {"failed": True, "msg": res.get("msg", "")}
            elif task == "Report the decisions":
                results[host] = res["msg"]
    missing = set(cases) - set(results)
    assert not missing, f"no result for {missing}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return results


@pytest.fixture(scope="module")
def decisions(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nvdrv")
    trees = {name: str(build_tree(tmp, name)) for name in ("hgx-h100", "dgx-a100-nps4", "pcie-l40s")}
    cases = {
        "hgx580": {"case_root": trees["hgx-h100"]},
        "hgx580_fm_off": {"case_root": trees["hgx-h100"], "nvidia_driver_fabricmanager_enabled": False},
        "dgx570": {"case_root": trees["dgx-a100-nps4"], "nvidia_driver_branch": "570"},
        "l40s580": {"case_root": trees["pcie-l40s"]},
        "l40s_pinned_version": {"case_root": trees["pcie-l40s"], "nvidia_driver_version": "580.95.05",
                                "nvidia_driver_kernel_modules": "proprietary"},
        "l40s_distribution": {"case_root": trees["pcie-l40s"], "nvidia_driver_source": "distribution",
                              "nvidia_driver_branch": "535", "nvidia_driver_persistenced_enabled": False},
        "cpu_only": {"nvidia_driver_gpus": [], "nvidia_driver_nvswitch_count": 0},
    }
    return run_cases(tmp, cases)


def test_hgx_h100_gets_the_fabric_manager(decisions):
    d = decisions["hgx580"]
    assert d["gpus"] == 8 and d["nvswitch_count"] == 4 and d["has_gpu"] is True
    assert d["fabricmanager_wanted"] is True
    # From 580 on the fabric manager and NSCQ carry no branch suffix.
    assert d["fm_packages"] == ["nvidia-fabricmanager", "libnvidia-nscq"]
    assert d["held_packages"] == ["nvidia-driver-cuda", "nvidia-kernel-open-dkms", "nvidia-persistenced",
                                  "nvidia-fabricmanager", "libnvidia-nscq"]
    assert set(d["device_ids"]) == {"2330"} and d["open_only_ids"] == [] and d["proprietary_only_ids"] == []


def test_switching_the_fabric_manager_feature_off(decisions):
    d = decisions["hgx580_fm_off"]
    assert d["nvswitch_count"] == 4 and d["fabricmanager_wanted"] is False
    assert "nvidia-fabricmanager" not in d["held_packages"]


def test_branch_570_uses_suffixed_fabric_manager_names(decisions):
    d = decisions["dgx570"]
    assert d["nvswitch_count"] == 6 and d["fabricmanager_wanted"] is True
    assert d["fm_packages"] == ["nvidia-fabricmanager-570", "libnvidia-nscq-570"]
    assert d["version_glob"] == "570.*"
    assert set(d["device_ids"]) == {"20b0"}


def test_pcie_l40s_has_no_fabric_manager(decisions):
    d = decisions["l40s580"]
    assert d["gpus"] == 8 and d["nvswitch_count"] == 0
    assert d["fabricmanager_wanted"] is False
    assert not any("fabricmanager" in p or "nscq" in p for p in d["held_packages"])
    assert d["version_glob"] == "580.*" and d["version_regex"] == r"^580\..*$"


def test_exact_version_and_proprietary_modules(decisions):
    d = decisions["l40s_pinned_version"]
    assert d["version_glob"] == "580.95.05-*"
    assert d["core_packages"] == ["nvidia-driver-cuda", "nvidia-kernel-dkms", "nvidia-persistenced"]


def test_distribution_packages_use_debian_names(decisions):
    d = decisions["l40s_distribution"]
    # Debian names the open DKMS package nvidia-open-kernel-dkms (NVIDIA: nvidia-kernel-open-dkms).
    assert d["core_packages"] == ["libcuda1", "nvidia-smi", "nvidia-open-kernel-dkms"]
    assert d["version_glob"] == "535.*"


def test_cpu_host_has_no_gpu(decisions):
    d = decisions["cpu_only"]
    assert d["has_gpu"] is False and d["fabricmanager_wanted"] is False and d["gpus"] == 0


def test_bad_input_fails_validation_naming_the_variable(tmp_path):
    hopper = [{"bus_id": "0000:18:00.0", "device_id": "0x2330"}]
    cases = {
        "branch_letters": ({"nvidia_driver_branch": "r580"}, "nvidia_driver_branch"),
        "branch_four_digits": ({"nvidia_driver_branch": "5800"}, "nvidia_driver_branch"),
        "version_other_branch": ({"nvidia_driver_version": "570.195.03"}, "nvidia_driver_version"),
        "version_garbage": ({"nvidia_driver_version": "latest"}, "nvidia_driver_version"),
        "open_on_470": ({"nvidia_driver_branch": "470"}, "nvidia_driver_kernel_modules"),
        "proprietary_on_b200": ({"nvidia_driver_kernel_modules": "proprietary",
                                 "nvidia_driver_gpus": [{"bus_id": "0000:18:00.0", "device_id": "0x2901"}]},
                                "nvidia_driver_kernel_modules"),
        "proprietary_on_gh200": ({"nvidia_driver_kernel_modules": "proprietary",
                                  "nvidia_driver_gpus": [{"bus_id": "0009:01:00.0", "device_id": "0x2342"}]},
                                 "nvidia_driver_kernel_modules"),
        "open_on_v100": ({"nvidia_driver_gpus": [{"bus_id": "0000:18:00.0", "device_id": "0x1db1"}]},
                         "nvidia_driver_kernel_modules"),
        "mirror_without_url": ({"nvidia_driver_source": "mirror"}, "nvidia_driver_mirror_url"),
        "mirror_url_with_cuda_repo": ({"nvidia_driver_mirror_url": "http://mirror.invalid/cuda/"},
                                      "nvidia_driver_mirror_url"),
        "mirror_not_http": ({"nvidia_driver_source": "mirror", "nvidia_driver_mirror_url": "ftp://m/cuda/",
                             "nvidia_driver_mirror_key_url": "http://m/k.pub"}, "nvidia_driver_mirror_url"),
        "distribution_with_nvswitch": ({"nvidia_driver_source": "distribution", "nvidia_driver_nvswitch_count": 4,
                                        "nvidia_driver_gpus": hopper}, "nvidia_driver_source=distribution"),
        "cuda_repo_url_with_mirror": ({"nvidia_driver_source": "mirror", "nvidia_driver_mirror_url": "http://m/cuda/",
                                       "nvidia_driver_mirror_key_url": "http://m/k.pub",
                                       "nvidia_driver_cuda_repo_url": "http://m/cuda/"}, "nvidia_driver_cuda_repo_url"),
        "cuda_repo_url_not_http": ({"nvidia_driver_cuda_repo_url": "file:///srv/cuda"}, "nvidia_driver_cuda_repo_url"),
        "unknown_source": ({"nvidia_driver_source": "nvidia_website"}, "nvidia_driver_source"),
        "unknown_modules": ({"nvidia_driver_kernel_modules": "nouveau"}, "nvidia_driver_kernel_modules"),
        # a control: good input passes
        "good": ({"nvidia_driver_gpus": hopper, "nvidia_driver_nvswitch_count": 4}, None),
    }
    results = run_cases(tmp_path, {name: dict({"nvidia_driver_gpus": []}, **vars)
                                   for name, (vars, _expect) in cases.items()})
    for name, (_vars, expect) in cases.items():
        res = results[name]
        if expect is None:
            assert not res.get("failed"), f"{name}: good input failed: {res}"
            assert res["fabricmanager_wanted"] is True
        else:
            assert res.get("failed"), f"{name}: bad input was accepted: {res}"
            assert expect in res["msg"], f"{name}: failure does not name {expect}: {res['msg']}"
