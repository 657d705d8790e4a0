"""Aggregate callback used by ``python -m lab site``: writes a per-host JSON summary.

Enabled only by the lab tool (``ANSIBLE_CALLBACK_PLUGINS`` + ``ANSIBLE_CALLBACKS_ENABLED``);
it does not change what the stdout callback prints.  The file named by
``INFERLAB_SUMMARY_FILE`` receives, per host: task counts, the names of changed
and failed tasks, the ``debug`` messages and a digest of ``gpu_topology`` facts.
"""
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: inferlab_summary
    type: aggregate
    short_description: per-host summary file for python -m lab site
    description: Writes a JSON per-host summary to the file named by INFERLAB_SUMMARY_FILE.
"""


def _topology_digest(topo: dict) -> dict:
    cpus = topo.get("cpus") or {}
    return {
        "cpus": cpus.get("count"),
        "cpus_online": cpus.get("online"),
        "numa_nodes": len(topo.get("numa_nodes") or []),
        "gpus": len(topo.get("gpus") or []),
        "nvswitch_count": topo.get("nvswitch_count"),
        "block_devices": sorted(
            (d.get("name") if isinstance(d, dict) else str(d)) for d in (topo.get("block_devices") or [])
        ) if isinstance(topo.get("block_devices"), list) else sorted(topo.get("block_devices") or {}),
    }


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "inferlab_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.hosts: dict[str, dict] = {}

    def _host(self, result) -> dict:
        name = result._host.get_name()
        return self.hosts.setdefault(name, {"ok": 0, "changed": 0, "failed": 0, "skipped": 0,
                                            "unreachable": 0, "changed_tasks": [], "failed_tasks": [],
                                            "messages": [], "topology": None})

    def v2_runner_on_ok(self, result):
        h = self._host(result)
        res = result._result
        h["ok"] += 1
        if res.get("changed"):
            h["changed"] += 1
            h["changed_tasks"].append(result._task.get_name())
        facts = res.get("ansible_facts") or {}
        topo = facts.get("gpu_topology") or res.get("gpu_topology")
        if isinstance(topo, dict):
            try:
                h["topology"] = _topology_digest(topo)
            except Exception as exc:  # a summary must never break the run
                h["topology"] = {"error": str(exc)}
        if result._task.action in ("debug", "ansible.builtin.debug") and "msg" in res:
            h["messages"].append(str(res["msg"]))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        h = self._host(result)
        if not ignore_errors:
            h["failed"] += 1
            h["failed_tasks"].append(f"{result._task.get_name()}: {result._result.get('msg', '')}"[:300])

    def v2_runner_on_skipped(self, result):
        self._host(result)["skipped"] += 1

    def v2_runner_on_unreachable(self, result):
        h = self._host(result)
        h["unreachable"] += 1
        h["failed_tasks"].append(f"unreachable: {result._result.get('msg', '')}"[:300])

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("INFERLAB_SUMMARY_FILE")
        if not path:
            return
        with open(path, "w") as f:
            json.dump(self.hosts, f, indent=1, sort_keys=True)
