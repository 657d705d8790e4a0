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
