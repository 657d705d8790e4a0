# -*- coding: utf-8 -*-
"""The inferfleet.gpu.placement filter: a thin wrapper of plan_placement,
its documentation, and a real template render through Ansible.

(The empty ``__init__.py`` beside this file makes it ``filter.test_placement``,
so it does not clash with module_utils/test_placement.py under pytest's
default import mode.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.inferfleet.gpu.plugins.filter.placement import FilterModule, placement
from ansible_collections.inferfleet.gpu.plugins.module_utils import topology as T
from ansible_collections.inferfleet.gpu.plugins.module_utils.placement import plan_placement

import topology_trees as tt

REPO = Path(__file__).resolve().parents[4]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def hgx():
    return T.gather(str(tt.cached_tree("hgx-h100")))[0]


def test_registered_under_its_name():
    assert FilterModule().filters() == {"placement": placement}


def test_same_answer_as_the_planner(hgx):
    assert placement(hgx, gpus_per_instance=2) == plan_placement(hgx, gpus_per_instance=2)
    assert placement(hgx, instances=4, housekeeping="0-1,112-113") == plan_placement(
        hgx, instances=4, housekeeping="0-1,112-113")


def test_impossible_request_is_a_filter_error(hgx):
    with pytest.raises(AnsibleFilterError) as err:
        placement(hgx, gpus_per_instance=3)
    assert "inferfleet.gpu.placement" in str(err.value)
    assert "gpus_per_instance=3" in str(err.value) and "8 GPUs" in str(err.value)


def test_non_boolean_switch_is_refused(hgx):
    with pytest.raises(AnsibleFilterError) as err:
        placement(hgx, cpu_only_per_numa="yes")
    assert "cpu_only_per_numa must be a boolean" in str(err.value) and "'yes'" in str(err.value)


def _env():
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build"),
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "PATH": "%s:%s" % (VENV_BIN, env.get("PATH", "")),
        "LC_ALL": "C.UTF-8",
    })
    return env


def test_documentation_renders():
    proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "-t", "filter", "--json", "inferfleet.gpu.placement"],
                          env=_env(), capture_output=True, text=True, timeout=120, check=True)
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
    env = _env()
    env.update({"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"})
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), str(tmp_path / "play.yml")],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tasks = dict((t["task"]["name"], t["hosts"]["localhost"]) for t in json.loads(proc.stdout)["plays"][0]["tasks"])
    plan = json.loads(tasks["Show"]["msg"][len("PLAN="):])
    assert [p["gpus"] for p in plan] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert plan[1]["cpus"] == "57-111,169-223"
    assert tasks["Impossible"]["failed"] is True
    assert "gpus_per_instance=3 cannot be met" in tasks["Message"]["msg"]
