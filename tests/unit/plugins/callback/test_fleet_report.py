"""The callback inferfleet.gpu.fleet_report, fed task results as Ansible hands them over."""
import json
from types import SimpleNamespace

import pytest

pytest.importorskip("ansible")

from ansible_collections.inferfleet.gpu.plugins.callback import fleet_report as F  # noqa: E402


class _Host:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class _Role:
    def __init__(self, name):
        self.name = name

    def get_name(self, include_role_fqcn=True):
        return ("inferfleet.gpu." + self.name) if include_role_fqcn else self.name


class _Task:
    def __init__(self, name, action, role=None):
        self.name, self.action = name, action
        self._role = _Role(role) if role else None

    def get_name(self):
        return self.name


def result(host, task, action, res, role=None):
    return SimpleNamespace(_host=_Host(host), _task=_Task(task, action, role), _result=res)


TOPO = {"cpus": {"count": 2, "online": "0-1"}, "numa_nodes": [{"id": 0}], "gpus": [{"index": 0}],
        "nvswitch_count": 0, "block_devices": [{"name": "vda"}, {"name": "loop3"}]}
SUMMARY = {"sysctl": {"changed": True, "items": ["vm.swappiness", "vm.max_map_count"]},
           "thp": {"changed": True, "items": []}, "swap": {"changed": False, "items": []}}
ENDPOINTS = [{"unit": "inferfleet-vllm-0.service", "index": 0, "address": "10.0.0.11", "port": 8000,
              "url": "http://10.0.0.11:8000/v1", "model": "m"}]


@pytest.fixture
def callback(tmp_path):
    cb = F.CallbackModule()
    cb._plugin_options = {"display": False, "json_path": str(tmp_path / "r.json"),
                          "markdown_path": str(tmp_path / "r.md"), "max_items": 6}
    return cb


def feed(cb):
    cb.v2_runner_on_ok(result("n1", "Gather", "inferfleet.gpu.gpu_topology",
                              {"changed": False, "ansible_facts": {"gpu_topology": TOPO}}))
    # host_tuning: a changed task, then the role's own summary (which replaces the task-name guess)
    cb.v2_runner_on_ok(result("n1", "Sysctl | Persist the values", "ansible.builtin.template",
                              {"changed": True}, role="host_tuning"))
    cb.v2_runner_on_ok(result("n1", "Sysctl | Record what changed", "ansible.builtin.set_fact",
                              {"changed": False, "ansible_facts": {"host_tuning_summary": SUMMARY,
                                                                   "host_tuning_reboot_required": True}},
                              role="host_tuning"))
    cb.v2_runner_on_ok(result("n1", "Report what changed", "ansible.builtin.debug",
                              {"msg": {"reboot_required": True, "summary": SUMMARY}}, role="host_tuning"))
    # a role without a summary: parts from the task names, items from the changed loop items
    cb.v2_runner_on_ok(result("n1", "Units | one unit per instance", "ansible.builtin.template",
                              {"changed": True, "results": [
                                  {"changed": True, "_ansible_item_label": "inferfleet-vllm-0.service"},
                                  {"changed": False, "_ansible_item_label": "inferfleet-vllm-1.service"}]},
                              role="vllm_service"))
    cb.v2_runner_on_ok(result("n1", "Publish the endpoints", "ansible.builtin.set_fact",
                              {"changed": False, "ansible_facts": {"vllm_service_endpoints": ENDPOINTS}},
                              role="vllm_service"))
    cb.v2_runner_on_ok(result("n1", "Say", "ansible.builtin.debug",
                              {"msg": "endpoint: http://10.0.0.11:8000/v1 model: m"}))
    cb.v2_runner_on_ok(result("n1", "Say", "ansible.builtin.debug", {"msg": "prometheus: http://10.0.0.11:9090"}))
    cb.v2_runner_on_failed(result("n2", "Install | pip", "ansible.builtin.pip", {"msg": "no network"},
                                  role="vllm"))
    cb.v2_runner_on_failed(result("n2", "Probe", "ansible.builtin.command", {"msg": "x"}), ignore_errors=True)
    cb.v2_runner_on_unreachable(result("n3", "Gather", "x", {"msg": "no route"}))
    cb.v2_runner_on_skipped(result("n1", "Skip", "x", {}))


def test_report_by_host_role_and_part(callback, tmp_path):
    feed(callback)
    callback.v2_playbook_on_stats(None)
    data = json.loads((tmp_path / "r.json").read_text())
    n1 = data["hosts"]["n1"]
    assert (n1["ok"], n1["changed"], n1["skipped"]) == (8, 2, 1)
    assert n1["topology"] == {"cpus": 2, "cpus_online": "0-1", "numa_nodes": 1, "gpus": 1,
                              "nvswitch_count": 0, "block_devices": ["loop3", "vda"]}
    assert n1["parts"] == {"host_tuning": {"sysctl": ["vm.swappiness", "vm.max_map_count"], "thp": []},
                           "vllm_service": {"Units": ["inferfleet-vllm-0.service"]}}
    assert n1["reboot_required"] is True
    assert n1["instances"] == ENDPOINTS
    assert n1["addresses"] == ["endpoint: http://10.0.0.11:8000/v1 model: m", "prometheus: http://10.0.0.11:9090"]
    assert data["hosts"]["n2"]["failed"] == 1 and data["hosts"]["n2"]["failures"] == ["Install | pip: no network"]
    assert data["hosts"]["n3"]["unreachable"] == 1
    assert data["check_mode"] is False


def test_text_table_has_no_raw_dicts(callback):
    feed(callback)
    text = F.render_text(callback.report())
    lines = text.splitlines()
    assert lines[0] == "== fleet report: what changed; 3 host(s) =="
    assert lines[1].startswith("n1  [2 CPUs, 1 NUMA, 1 GPUs]  ok=8 changed=2 failed=0") and "REBOOT REQUIRED" in lines[1]
    assert "  host_tuning:   sysctl (vm.swappiness, vm.max_map_count); thp" in lines
    assert "  vllm_service:  Units (inferfleet-vllm-0.service)" in lines
    assert any(line.startswith("  vllm:") and "1 ready" in line for line in lines)
    assert "  FAILED         Install | pip: no network" in lines
    assert "{" not in text and "reboot_required" not in text
    assert text.index("\nn2") < text.index("\nn3")


def test_markdown(callback, tmp_path):
    feed(callback)
    callback.v2_playbook_on_stats(None)
    md = (tmp_path / "r.md").read_text().splitlines()
    assert md[0] == "# Fleet report"
    assert md[2].startswith("| host | CPUs | NUMA | GPUs |")
    row = [line for line in md if line.startswith("| n1 |")][0]
    assert "host_tuning: sysctl (vm.swappiness, vm.max_map_count); thp" in row
    assert "inferfleet-vllm-0.service http://10.0.0.11:8000/v1" in row
    assert [line for line in md if line.startswith("| n2 |")][0].endswith("| Install \\| pip: no network |")


def test_check_mode_is_a_drift_report(callback, monkeypatch):
    from ansible import context
    monkeypatch.setattr(context, "CLIARGS", {"check": True})
    callback.v2_playbook_on_start(None)
    feed(callback)
    assert callback.report()["check_mode"] is True
    assert F.render_text(callback.report()).startswith("== fleet report: drift report (check mode")
    assert F.render_markdown(callback.report()).startswith("# Drift report (check mode)")


def test_many_items_are_counted(callback):
    callback.v2_runner_on_ok(result("n1", "Pkgs | install", "ansible.builtin.apt", {
        "changed": True, "results": [{"changed": True, "item": "p%d" % i} for i in range(9)]}, role="nvidia_driver"))
    assert "Pkgs (p0, p1, p2, p3, p4, p5, +3 more)" in F.render_text(callback.report())


def test_nothing_written_without_paths(tmp_path, monkeypatch):
    cb = F.CallbackModule()
    cb._plugin_options = {"display": False, "json_path": "", "markdown_path": "", "max_items": 6}
    monkeypatch.chdir(tmp_path)
    feed(cb)
    cb.v2_playbook_on_stats(None)
    assert list(tmp_path.iterdir()) == []


def test_no_host_ran_a_task():
    assert "(no host ran a task)" in F.render_text({"hosts": {}})


def test_handlers_are_one_part(callback):
    from ansible.playbook.handler import Handler

    class _Handler(Handler):
        def __init__(self, name):  # pylint: disable=super-init-not-called
            self._name, self.action, self._role = name, "ansible.builtin.systemd_service", _Role("monitoring")

        def get_name(self, include_role_fqcn=True):
            return "inferfleet.gpu.monitoring : " + self._name

    res = SimpleNamespace(_host=_Host("n1"), _task=_Handler("Monitoring restart prometheus"), _result={"changed": True})
    callback.v2_runner_on_ok(res)
    assert callback.report()["hosts"]["n1"]["parts"] == {"monitoring": {"handlers": ["Monitoring restart prometheus"]}}
