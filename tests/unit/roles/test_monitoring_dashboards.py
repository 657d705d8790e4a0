"""The role monitoring's Grafana dashboards, validated offline: every panel's query parses with
Prometheus's own parser (promtool check rules, each query as a recording rule), and every metric a
query or an alert rule names exists in a real scrape - the lab's vLLM 0.32 and node exporter 1.5
(tests/fixtures/monitoring/, captured from `make lab`) or the GPU exporter on the NVML stand-in."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import gpu_exporter_standin as S

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "roles" / "monitoring" / "files" / "dashboards").glob("*.json"))
CAPTURES = ROOT / "tests" / "fixtures" / "monitoring"
PROMTOOL = shutil.which("promtool")
# PromQL words that look like metric names in an expression
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
            "bool", "inf", "nan", "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk",
            "quantile", "count_values", "group"}


def exprs(dashboard):
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


def as_query(expr):
    """Grafana variables replaced as Grafana does before sending the query."""
    return expr.replace("$host", ".*").replace("$__all", ".*")


def metric_names(expr):
    """Names of series selected in an expression (label matchers and strings removed first)."""
    text = re.sub(r'"[^"]*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def known_metrics():
    names = {"up"}
    texts = [S.standin_metrics_every_series()] + [p.read_text() for p in sorted(CAPTURES.glob("*.txt"))]
    for text in texts:
        for line in text.splitlines():
            if line and not line.startswith("#"):
                names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def rendered_rules():
    """The rules template with the role's defaults (it uses plain variables only)."""
    import jinja2
    role = ROOT / "roles" / "monitoring"
    env = jinja2.Environment(variable_start_string="[[", variable_end_string="]]", undefined=jinja2.StrictUndefined)
    values = dict(yaml.safe_load((role / "defaults" / "main.yml").read_text()), ansible_managed="Ansible managed")
    return env.from_string((role / "templates" / "inferfleet.rules.yml.j2").read_text()).render(values)


@pytest.fixture(scope="module")
def dashboards():
    return [(p.name, json.loads(p.read_text())) for p in DASHBOARDS]


def test_three_dashboards_with_panels(dashboards):
    assert [n for n, _board in dashboards] == ["inferfleet-gpu.json", "inferfleet-host.json", "inferfleet-vllm.json"]
    provisioning = (ROOT / "roles" / "monitoring" / "templates" / "grafana-datasources.yml.j2").read_text()
    uid = re.search(r"uid: (\S+)", provisioning).group(1)
    for name, d in dashboards:
        assert d["uid"] and d["title"] and d["panels"], name
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in d["panels"]:
            assert panel["datasource"]["uid"] == uid, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])


def test_captures_are_present():
    """The lab scrapes the tests read (a missing one would make the next test vacuous)."""
    names = sorted(p.name for p in CAPTURES.glob("*.txt"))
    assert names == ["node-exporter-1.5-metrics.txt", "vllm-0.32-metrics.txt"]


@pytest.mark.skipif(not PROMTOOL, reason="promtool (Debian package prometheus) not installed")
def test_every_query_parses(dashboards, tmp_path):
    rules = []
    for name, d in dashboards:
        for i, (title, expr) in enumerate(exprs(d)):
            rules.append({"record": "dashboard:%s:%d" % (re.sub(r"\W", "_", name), i), "expr": as_query(expr)})
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    run = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS: %d rules found" % len(rules) in run.stdout


def test_metric_name_parser():
    assert metric_names('sum by (le, host) (rate(vllm:x_bucket{host=~"$host"}[5m]))') == {"vllm:x_bucket"}
    assert metric_names('a / b{c="d"} > 0.9 or (e unless e offset 10m)') == {"a", "b", "e"}


def test_every_metric_exists_in_a_real_scrape(dashboards):
    known = known_metrics()
    rules = yaml.safe_load(rendered_rules())
    queries = [("%s: %s" % (n, t), e) for n, d in dashboards for t, e in exprs(d)]
    queries += [("rule " + r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]
    missing = dict((where, sorted(metric_names(e) - known)) for where, e in queries if metric_names(e) - known)
    assert not missing
    assert len(queries) > 30
