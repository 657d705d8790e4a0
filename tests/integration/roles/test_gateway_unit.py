# -*- coding: utf-8 -*-
"""The gateway role's unit and worker list, rendered by Ansible from an inventory of serving hosts.

The template and the worker-list expression are the role's own (defaults, vars, template), rendered by
ansible-playbook, so filters and quoting are real. The hosts carry ``vllm_service_endpoints`` the way
inferfleet.gpu.vllm_service publishes them; one host serves nothing and must be skipped.
"""

import shlex

import pytest
import yaml

from helpers import ROOT, run_playbook, unit_directives, write_play, write_vars

ROLE = ROOT / "roles" / "gateway"


def endpoints(addr, ports):
    return [{"unit": f"inferfleet-vllm-{i}.service", "index": i, "address": addr, "port": p,
             "url": f"http://{addr}:{p}/v1", "model": "m"} for i, p in enumerate(ports)]


INVENTORY = {"all": {"hosts": {
    "gpu2": {"vllm_service_endpoints": endpoints("10.0.0.12", [8000, 8001])},
    "gpu1": {"vllm_service_endpoints": endpoints("10.0.0.11", [8000, 8001, 8002, 8003])},
    "gw": {},
}}}


TASKS = """
- name: Validate
  ansible.builtin.import_tasks: %(role)s/tasks/validate.yml
- name: Render the unit
  ansible.builtin.template:
    src: %(role)s/templates/gateway.service.j2
    dest: "%(out)s"
    mode: "0644"
"""


def render(tmp_path, **overrides):
    """Render the unit on host gw (local connection); return (rc, unit text or None, output)."""
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(INVENTORY))
    unit = tmp_path / "gw.service"
    play = write_play(tmp_path, TASKS % {"role": ROLE, "out": unit}, hosts="gw",
                      vars_files=[ROLE / "defaults/main.yml", ROLE / "vars/main.yml", write_vars(tmp_path, overrides)])
    proc = run_playbook(play, inventory=tmp_path / "inv.yml")
    return proc.returncode, unit.read_text() if unit.exists() else None, proc.stdout + proc.stderr


def exec_args(text):
    return shlex.split(unit_directives(text)["ExecStart"][0])


@pytest.fixture(scope="module")
def default_unit(tmp_path_factory):
    rc, unit, out = render(tmp_path_factory.mktemp("default"))
    assert rc == 0, out
    return unit


def test_every_instance_of_every_serving_host_is_a_worker(default_unit):
    args = exec_args(default_unit)
    workers = args[args.index("--worker-urls") + 1:]
    assert workers == sorted(["http://10.0.0.11:8000", "http://10.0.0.11:8001", "http://10.0.0.11:8002",
                              "http://10.0.0.11:8003", "http://10.0.0.12:8000", "http://10.0.0.12:8001"])


def test_router_flags(default_unit):
    args = exec_args(default_unit)
    assert args[0] == "/opt/inferfleet/gateway/bin/vllm-router"
    flag = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a.startswith("--") and a != "--worker-urls"}
    assert flag["--policy"] == "consistent_hash"
    assert flag["--port"] == "8080"
    assert flag["--prometheus-host"] == "127.0.0.1"
    assert flag["--health-check-endpoint"] == "/health"
    # the router must not hold the key: with --api-key it would not authenticate clients anyway
    assert "--api-key" not in args


def test_unit_is_unprivileged_and_sandboxed(default_unit):
    d = unit_directives(default_unit)
    assert d["User"] == ["inferfleet-gateway"]
    assert d["CapabilityBoundingSet"] == [""]
    assert "AmbientCapabilities" not in d
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectHome", "ProtectKernelTunables"):
        assert d[key] == ["yes"], key
    assert d["ProtectSystem"] == ["strict"]


def test_low_port_gets_only_bind_capability(tmp_path):
    rc, unit, out = render(tmp_path, gateway_port=443)
    assert rc == 0, out
    d = unit_directives(unit)
    assert d["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert d["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]


def test_extra_workers_and_no_metrics(tmp_path):
    rc, unit, out = render(tmp_path, gateway_extra_worker_urls=["http://10.0.0.99:9000"],
                           gateway_metrics_enabled=False, gateway_serving_hosts=["gpu2"])
    assert rc == 0, out
    args = exec_args(unit)
    expected = ["http://10.0.0.12:8000", "http://10.0.0.12:8001", "http://10.0.0.99:9000"]
    assert args[args.index("--worker-urls") + 1:] == expected
    assert "--prometheus-port" not in args


@pytest.mark.parametrize("overrides, named", [
    ({"gateway_policy": "fastest"}, "gateway_policy=fastest"),
    ({"gateway_source": "wheelhouse"}, "gateway_source=wheelhouse"),
    ({"gateway_metrics_port": 8080}, "gateway_metrics_port=8080"),
    ({"gateway_serving_hosts": ["gw"]}, "no worker"),
    ({"gateway_extra_worker_urls": ["10.0.0.5:8000"]}, "10.0.0.5:8000"),
])
def test_bad_input_fails_before_the_unit_is_written(tmp_path, overrides, named):
    rc, unit, out = render(tmp_path, **overrides)
    assert rc != 0
    assert named in out
    assert unit is None
