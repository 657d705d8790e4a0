"""The role monitoring's generated files, rendered by Ansible from its own tasks and templates for a
small fleet (tests/integration/roles/monitoring/inventory.yml), then checked by Prometheus's promtool:
`check config`, `check rules`, and `test rules` (every rule fires once and stays quiet once)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import ANSIBLE_PLAYBOOK, ROOT, ansible_env

HERE = Path(__file__).resolve().parent / "monitoring"
ROLE = ROOT / "roles" / "monitoring"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(not PROMTOOL, reason="promtool (Debian package prometheus) not installed")


def playbook(name, *args):
    return subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(HERE / "inventory.yml"),
                           str(HERE / name), "-e", "role_dir=%s" % ROLE, *args],
                          capture_output=True, text=True, env=ansible_env(), cwd=ROOT, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("monitoring")
    run = playbook("render.yml", "-e", "render_dir=%s" % out)
    assert run.returncode == 0, run.stdout + run.stderr
    # the rules file sits next to prometheus.yml here, not in /etc/prometheus/rules
    config = out / "prometheus.yml"
    config.write_text(config.read_text().replace("/etc/prometheus/rules/inferfleet.rules.yml",
                                                 str(out / "inferfleet.rules.yml")))
    shutil.copy(HERE / "rules_test.yml", out / "rules_test.yml")
    return out


def _promtool(*args, cwd=None):
    run = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


@needs_promtool
def test_promtool_check_config(rendered):
    assert "SUCCESS" in _promtool("check", "config", str(rendered / "prometheus.yml"))


@needs_promtool
def test_promtool_check_rules(rendered):
    assert "SUCCESS: 10 rules found" in _promtool("check", "rules", str(rendered / "inferfleet.rules.yml"))


@needs_promtool
def test_promtool_test_rules(rendered):
    assert "SUCCESS" in _promtool("test", "rules", "rules_test.yml", cwd=rendered)


def _rules(rendered):
    return [r for g in yaml.safe_load((rendered / "inferfleet.rules.yml").read_text())["groups"] for r in g["rules"]]


def test_every_rule_has_severity_runbook_and_both_tests(rendered):
    tests = yaml.safe_load((HERE / "rules_test.yml").read_text())["tests"]
    cases = [c for t in tests for c in t["alert_rule_test"]]
    rules = _rules(rendered)
    assert len(rules) == 10
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["runbook"] and rule["annotations"]["summary"], name
        assert rule["annotations"]["runbook_url"].endswith("#" + name.lower()), name
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), "%s: no test where it fires" % name
        assert any(not c["exp_alerts"] for c in mine), "%s: no test where it stays quiet" % name


def test_required_alerts_use_real_metric_names(rendered):
    exprs = dict((r["alert"], r["expr"]) for r in _rules(rendered))
    assert "vllm:num_requests_waiting > 10" in exprs["InferfleetVllmRequestsWaiting"]
    assert "vllm:kv_cache_usage_perc > 0.9" in exprs["InferfleetVllmKvCacheHigh"]
    assert "vllm:time_to_first_token_seconds_bucket[5m]" in exprs["InferfleetVllmTtftP99High"]
    assert exprs["InferfleetVllmInstanceDown"] == 'up{job="vllm"} == 0'


def test_scrape_targets_from_the_inventory(rendered):
    jobs = dict((j["job_name"], j) for j in yaml.safe_load((rendered / "prometheus.yml").read_text())["scrape_configs"])

    def targets(job):
        return [(t["targets"][0], t["labels"]) for t in jobs[job]["static_configs"]]

    assert [t for t, _labels in targets("node")] == ["10.0.0.11:9100", "10.0.0.12:9100", "10.0.0.10:9100"]
    assert targets("gpu") == [("10.0.0.11:9835", {"host": "gpu1"})]      # only the host with GPUs
    assert targets("vllm") == [
        ("10.0.0.11:8000", {"host": "gpu1", "unit": "inferfleet-vllm-0.service", "model": "qwen", "vllm_instance": "0"}),
        ("10.0.0.11:8001", {"host": "gpu1", "unit": "inferfleet-vllm-1.service", "model": "qwen", "vllm_instance": "1"}),
        ("10.0.0.12:8000", {"host": "cpu2", "unit": "inferfleet-vllm-0.service", "model": "qwen", "vllm_instance": "0"})]
    # gpu1 publishes no metrics address (an older gateway role): its node address; mon's loopback-only
    # port is scraped on loopback; cpu2's loopback-only port cannot be reached from mon
    assert targets("gateway") == [("10.0.0.11:29000", {"host": "gpu1"}), ("127.0.0.1:29001", {"host": "mon"})]
    assert targets("prometheus") == [("10.0.0.10:9090", {"host": "mon"})]
    assert "authorization" not in jobs["vllm"]


def test_units_run_with_the_variables(rendered):
    prom = (rendered / "prometheus.conf").read_text()
    assert re.search(r"^ExecStart=$", prom, re.M)
    assert "--storage.tsdb.retention.time=15d" in prom and "--web.listen-address=0.0.0.0:9090" in prom
    assert "ProtectSystem=strict" in prom and "ReadWritePaths=/var/lib/prometheus" in prom
    node = (rendered / "prometheus-node-exporter.conf").read_text()
    assert "--web.listen-address=0.0.0.0:9100" in node and "ProtectHome=read-only" in node
    am = (rendered / "prometheus-alertmanager.conf").read_text()
    assert "--cluster.listen-address=" in am and "--web.listen-address=0.0.0.0:9093" in am
    gpu = (rendered / "inferfleet-gpu-exporter.service").read_text()
    assert "--port 9835" in gpu and "DevicePolicy=closed" in gpu and "DeviceAllow=/dev/nvidiactl rw" in gpu
    assert yaml.safe_load((rendered / "alertmanager.yml").read_text())["route"]["receiver"] == "default"


BAD = [
    ({"monitoring_prometheus_port": 70000}, "monitoring_prometheus_port=70000"),
    ({"monitoring_prometheus_retention": "15 days"}, "monitoring_prometheus_retention=15 days"),
    ({"monitoring_alert_kv_cache_ratio": 1.5}, "monitoring_alert_kv_cache_ratio=1.5"),
    ({"monitoring_gpu_exporter_port": 9100}, "two services would share a port"),
    ({"monitoring_deb_dir": "srv/debs"}, "monitoring_deb_dir=srv/debs"),
]


@pytest.fixture(scope="module")
def validation_runs(tmp_path_factory):
    """Every case at once (each is an ansible-playbook run), plus the defaults, which must pass."""
    import json
    cases = [({}, None)] + BAD
    procs = []
    for i, (bad, _expected) in enumerate(cases):
        out = tmp_path_factory.mktemp("validate%d" % i)
        cmd = [str(ANSIBLE_PLAYBOOK), "-i", str(HERE / "inventory.yml"),
               str(HERE / "validate.yml"), "-e", "role_dir=%s" % ROLE, "-e", json.dumps(dict(bad, render_dir=str(out)))]
        procs.append((out, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                            env=ansible_env(), cwd=ROOT)))
    return [(out, proc.communicate()[0], proc.returncode) for out, proc in procs]


def test_defaults_pass_validation(validation_runs):
    out, text, rc = validation_runs[0]
    assert rc == 0, text
    assert (out / "changed").is_file()


@pytest.mark.parametrize("case", range(len(BAD)), ids=[b[1] for b in BAD])
def test_bad_input_fails_naming_the_variable_before_any_change(validation_runs, case):
    out, text, rc = validation_runs[case + 1]
    assert rc != 0
    assert BAD[case][1] in text
    assert list(out.iterdir()) == []          # the task after validation never ran
