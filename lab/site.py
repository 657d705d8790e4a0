"""``python -m lab site --name NAME``: run playbooks/site.yml on the lab, then summarise per host."""
from __future__ import annotations

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
    """The environment DEVELOPING.md asks for, plus the lab's summary callback."""
    env = dict(os.environ if base is None else base)
    env["ANSIBLE_CONFIG"] = str(repo / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(repo / ".build")
    venv_bin = str(repo / ".venv" / "bin")
    if not env.get("PATH", "").startswith(venv_bin + os.pathsep):
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    return env


def with_summary_callback(env: dict, summary_file: str) -> dict:
    env = dict(env)
    plugins = str(Path(__file__).resolve().parent / "callback_plugins")
    env["ANSIBLE_CALLBACK_PLUGINS"] = os.pathsep.join(
        p for p in (plugins, env.get("ANSIBLE_CALLBACK_PLUGINS")) if p)
    enabled = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c]
    env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join(enabled + ["inferlab_summary"])
    env["INFERLAB_SUMMARY_FILE"] = summary_file
    return env


def _natural(host: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", host)]


MAX_SAID = 240  # a longer message (a whole summary dict) is cut in the per-host digest


def format_summary(name: str, summary: dict, rc: int) -> str:
    lines = [f"== lab {name}: playbooks/site.yml exit {rc}; per host =="]
    endpoints = []
    for host in sorted(summary, key=_natural):
        h = summary[host]
        lines.append(f"{host}: ok={h['ok']} changed={h['changed']} failed={h['failed']} "
                     f"unreachable={h['unreachable']} skipped={h['skipped']}")
        topo = h.get("topology")
        for msg in h.get("messages", []):
            if msg.startswith("endpoint: "):
                endpoints.append(msg)
            lines.append(f"  said:  {msg if len(msg) <= MAX_SAID else msg[:MAX_SAID] + ' ...'}")
        if topo and "error" not in topo:
            found = f"block devices: {', '.join(topo['block_devices']) or 'none'}"
            if not h.get("messages"):
                found = (f"{topo['cpus']} CPUs ({topo['cpus_online']}), {topo['numa_nodes']} NUMA "
                         f"node(s), {topo['gpus']} GPU(s), " + found)
            lines.append(f"  found: {found}")
        if h["changed_tasks"]:
            lines.append(f"  did:   {'; '.join(h['changed_tasks'])}")
        else:
            lines.append("  did:   nothing (no task changed)")
        for fail in h.get("failed_tasks", []):
            lines.append(f"  FAILED {fail}")
    if not summary:
        lines.append("(no host ran a task)")
    # Last, bare, one per vLLM instance: for a person or a script to talk to.
    lines.extend(endpoints)
    return "\n".join(lines)


def run(name: str, extra: list[str] | None = None, playbook: str = "playbooks/site.yml") -> int:
    inv = st.inventory_path(name)
    if not inv.is_file():
        print(f"lab: no inventory for {name}: run `python -m lab up --name {name}` first",
              file=sys.stderr)
        return 1
    extra = [a for a in (extra or []) if a != "--"]
    with tempfile.NamedTemporaryFile(prefix="inferlab-summary-", suffix=".json", delete=False) as tmp:
        summary_file = tmp.name
    try:
        env = with_summary_callback(ansible_env(), summary_file)
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
