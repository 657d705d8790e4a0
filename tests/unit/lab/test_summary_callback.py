"""The aggregate callback behind ``python -m lab site`` (fed fake task results)."""
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("ansible")

PLUGIN = Path(__file__).resolve().parents[3] / "lab" / "callback_plugins" / "inferlab_summary.py"


@pytest.fixture
def callback():
    spec = importlib.util.spec_from_file_location("inferlab_summary", PLUGIN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.CallbackModule()


class _Host:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class _Task:
    def __init__(self, name, action):
        self.name, self.action = name, action

    def get_name(self):
        return self.name


def result(host, task, action, res):
    return SimpleNamespace(_host=_Host(host), _task=_Task(task, action), _result=res)


TOPO = {"cpus": {"count": 2, "online": "0-1"}, "numa_nodes": [{"id": 0}], "gpus": [],
        "nvswitch_count": 0, "block_devices": [{"name": "vda"}, {"name": "loop3"}]}


def test_summary_file(callback, tmp_path, monkeypatch):
    out = tmp_path / "s.json"
    monkeypatch.setenv("INFERLAB_SUMMARY_FILE", str(out))
    callback.v2_runner_on_ok(result("n1", "Gather", "inferfleet.gpu.gpu_topology",
                                    {"changed": False, "ansible_facts": {"gpu_topology": TOPO}}))
    callback.v2_runner_on_ok(result("n1", "Show", "ansible.builtin.debug", {"msg": "n1: 2 CPUs"}))
    callback.v2_runner_on_ok(result("n1", "Write", "ansible.builtin.copy", {"changed": True}))
    callback.v2_runner_on_failed(result("n2", "Write", "ansible.builtin.copy", {"msg": "disk full"}))
    callback.v2_runner_on_failed(result("n2", "Probe", "ansible.builtin.command", {"msg": "x"}),
                                 ignore_errors=True)
    callback.v2_runner_on_unreachable(result("n3", "Gather", "x", {"msg": "no route"}))
    callback.v2_runner_on_skipped(result("n1", "Skip", "x", {}))
    callback.v2_playbook_on_stats(None)
    data = json.loads(out.read_text())
    n1 = data["n1"]
    assert (n1["ok"], n1["changed"], n1["skipped"]) == (3, 1, 1)
    assert n1["changed_tasks"] == ["Write"] and n1["messages"] == ["n1: 2 CPUs"]
    assert n1["topology"] == {"cpus": 2, "cpus_online": "0-1", "numa_nodes": 1, "gpus": 0,
                              "nvswitch_count": 0, "block_devices": ["loop3", "vda"]}
    assert data["n2"]["failed"] == 1 and data["n2"]["failed_tasks"] == ["Write: disk full"]
    assert data["n3"]["unreachable"] == 1


def test_no_file_without_the_variable(callback, tmp_path, monkeypatch):
    monkeypatch.delenv("INFERLAB_SUMMARY_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    callback.v2_playbook_on_stats(None)
    assert list(tmp_path.iterdir()) == []
