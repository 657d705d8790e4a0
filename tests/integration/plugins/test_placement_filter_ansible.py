# -*- coding: utf-8 -*-
"""The inferfleet.gpu.placement filter through Ansible: its documentation, and a real template render."""

import json
import subprocess

import pytest

from ansible_collections.inferfleet.gpu.plugins.module_utils import topology as T

import topology_trees as tt
from helpers import VENV_BIN, ansible_env, run_playbook


@pytest.fixture(scope="module")
def hgx():
    return T.gather(str(tt.cached_tree("hgx-h100")))[0]


def test_documentation_renders():
    proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "-t", "filter", "--json", "inferfleet.gpu.placement"],
                          env=ansible_env(), capture_output=True, text=True, timeout=120, check=True)
    doc = json.loads(proc.stdout)["inferfleet.gpu.placement"]
    assert set(doc["doc"]["options"]) == {"_input", "gpus_per_instance", "instances", "housekeeping",
                                          "cpu_only_per_numa"}
    returned = doc["return"]["_value"]["contains"]
    assert set(returned) == {"index", "gpus", "gpu_bus_ids", "cuda_visible_devices", "cpus", "cpu_count",
                             "numa_nodes", "housekeeping_cpus"}
    assert doc["examples"]


def test_template_render_through_ansible(tmp_path, hgx):
    """The filter as a play uses it: fact from a file, FQCN filter, both outcomes."""
    (tmp_path / "topo.json").write_text(json.dumps(hgx))
    (tmp_path / "play.yml").write_text("""
- hosts: localhost
  gather_facts: false
  vars:
    topo: "{{ lookup('ansible.builtin.file', '%s') | from_json }}"
  tasks:
    - name: Plan
      ansible.builtin.set_fact:
        plan: "{{ topo | inferfleet.gpu.placement(gpus_per_instance=4) }}"
    - name: Show
      ansible.builtin.debug:
        msg: "PLAN={{ plan | to_json }}"
    - name: Impossible
      ansible.builtin.debug:
        msg: "{{ topo | inferfleet.gpu.placement(gpus_per_instance=3) }}"
      ignore_errors: true  # noqa: ignore-errors the test reads the failure message
      register: impossible
    - name: Message
      ansible.builtin.debug:
        msg: "ERR={{ impossible.msg }}"
""" % (tmp_path / "topo.json"))
    proc = run_playbook(tmp_path / "play.yml", json_output=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tasks = dict((t["task"]["name"], t["hosts"]["localhost"]) for t in json.loads(proc.stdout)["plays"][0]["tasks"])
    plan = json.loads(tasks["Show"]["msg"][len("PLAN="):])
    assert [p["gpus"] for p in plan] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert plan[1]["cpus"] == "57-111,169-223"
    assert tasks["Impossible"]["failed"] is True
    assert "gpus_per_instance=3 cannot be met" in tasks["Message"]["msg"]
