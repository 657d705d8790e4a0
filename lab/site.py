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
    endpoints, doors = [], []
    for host in sorted(summary, key=_natural):
        h = summary[host]
        lines.append(f"{host}: ok={h['ok']} changed={h['changed']} failed={h['failed']} "
                     f"unreachable={h['unreachable']} skipped={h['skipped']}")
        topo = h.get("topology")
        for msg in h.get("messages", []):
            if msg.startswith("endpoint: "):
                endpoints.append(msg)
            elif msg.startswith(("api-key-file: ", "gateway: ")):
                doors.append(msg)
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
    # Last, bare, one per vLLM instance, then the fleet's key file and its one address (the gateway):
    # for a person or a script to talk to.
    lines.extend(endpoints)
    lines.extend(doors)
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
