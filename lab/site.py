"""``python -m lab site --name NAME``: run playbooks/site.yml on the lab, then the per-host table
(the collection's callback inferfleet.gpu.fleet_report) and the addresses to talk to."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from lab import state as st

REPO = Path(__file__).resolve().parents[1]


def ansible_env(repo: Path = REPO, base: dict | None = None) -> dict:
    """The environment DEVELOPING.md asks for."""
    env = dict(os.environ if base is None else base)
    env["ANSIBLE_CONFIG"] = str(repo / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(repo / ".build")
    venv_bin = str(repo / ".venv" / "bin")
    if not env.get("PATH", "").startswith(venv_bin + os.pathsep):
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    return env


REPORT_PLUGIN = REPO / "plugins" / "callback" / "fleet_report.py"
# The lines a person or a script copies, after the table, in this order.
ADDRESS_ORDER = ("prometheus: ", "endpoint: ", "api-key-file: ", "gateway: ")


def with_fleet_report(env: dict, json_file: str) -> dict:
    """The collection's callback inferfleet.gpu.fleet_report, writing its JSON to ``json_file``; the
    table is printed here, after ansible-playbook's own output, not by the callback."""
    env = dict(env)
    enabled = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c]
    env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join(enabled + ["inferfleet.gpu.fleet_report"])
    env["INFERFLEET_FLEET_REPORT_JSON"] = json_file
    env["INFERFLEET_FLEET_REPORT_DISPLAY"] = "false"
    return env


def _report_module():
    spec = importlib.util.spec_from_file_location("inferfleet_fleet_report", REPORT_PLUGIN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _natural(host: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", host)]


def format_summary(name: str, report: dict, rc: int) -> str:
    """The shipped per-host table, then the addresses: prometheus, endpoints, api key file, gateway."""
    lines = [f"== lab {name}: playbooks/site.yml exit {rc} ==", _report_module().render_text(report)]
    hosts = report.get("hosts") or {}
    said = [line for host in sorted(hosts, key=_natural) for line in hosts[host].get("addresses", [])]
    for prefix in ADDRESS_ORDER:
        lines.extend(line for line in said if line.startswith(prefix))
    return "\n".join(lines)


def run(name: str, extra: list[str] | None = None, playbook: str = "playbooks/site.yml") -> int:
    inv = st.inventory_path(name)
    if not inv.is_file():
        print(f"lab: no inventory for {name}: run `python -m lab up --name {name}` first",
              file=sys.stderr)
        return 1
    extra = [a for a in (extra or []) if a != "--"]
    with tempfile.NamedTemporaryFile(prefix="inferlab-report-", suffix=".json", delete=False) as tmp:
        summary_file = tmp.name
    try:
        env = with_fleet_report(ansible_env(), summary_file)
        cmd = ["ansible-playbook", "-i", str(inv), str(REPO / playbook), *extra]
        print(f"lab: {' '.join(cmd)}", file=sys.stderr, flush=True)
        rc = subprocess.run(cmd, env=env, cwd=REPO, check=False).returncode
        try:
            summary = json.loads(Path(summary_file).read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            summary = {}
        print(format_summary(name, summary, rc), flush=True)
        return rc
    finally:
        os.unlink(summary_file)


GATEWAY_PORT = 8080  # inferfleet.gpu.gateway's default gateway_port


def gateway_url(name: str, port: int = GATEWAY_PORT) -> str | None:
    """http://ADDR:PORT/v1 of the lab's gateway (the first host of the group `gateways`)."""
    import yaml  # the venv's; only the lab needs it

    inv = yaml.safe_load(st.inventory_path(name).read_text()) or {}
    children = (inv.get("all") or {}).get("children") or {}
    hosts = list(((children.get("gateways") or {}).get("hosts") or {}))
    nodes = (children.get("lab_nodes") or {}).get("hosts") or {}
    if not hosts or hosts[0] not in nodes:
        return None
    return f"http://{nodes[hosts[0]]['ansible_host']}:{port}/v1"


def deploy(name: str, extra: list[str] | None = None, concurrency: int = 2) -> int:
    """playbooks/deploy.yml on the lab while a load loop of image + text chats runs through the gateway."""
    from lab import assets

    url = gateway_url(name)
    key_file = st.lab_dir(name) / "api-key"
    if url is None:
        print(f"lab: {name} has no gateway host (group gateways); running deploy.yml without a load loop",
              file=sys.stderr)
        return run(name, extra, playbook="playbooks/deploy.yml")
    with tempfile.TemporaryDirectory(prefix="inferlab-load-") as tmp:
        stop, report = Path(tmp) / "stop", Path(tmp) / "report.json"
        cmd = [sys.executable, str(REPO / "bench" / "gateway_load.py"), "--url", url, "--model", assets.SERVED_NAME,
               "--concurrency", str(concurrency), "--stop-file", str(stop), "--report", str(report)]
        if key_file.is_file():
            cmd += ["--key-file", str(key_file)]
        print(f"lab: load loop through {url} during the deploy: {' '.join(cmd)}", file=sys.stderr, flush=True)
        load = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=REPO)
        try:
            rc = run(name, extra, playbook="playbooks/deploy.yml")
        finally:
            stop.touch()
            load.wait(timeout=600)
        try:
            result = json.loads(report.read_text())
        except (OSError, json.JSONDecodeError):
            print("load: no report (the load loop did not finish)", flush=True)
            return rc or 1
    for err in result["errors"]:
        print(f"  load error at {err['at_s']} s ({'image' if err['image'] else 'text'}): {err['error']}")
    print(f"load: {result['requests']} requests ({result['image_requests']} with an image) through {url} "
          f"during the deploy, {result['failures']} failed, longest stall {result['longest_stall_s']} s, "
          f"p99 latency {result['p99_latency_s']} s", flush=True)
    return rc or (1 if result["failures"] else 0)
