# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A compact per-host report at the end of every ansible-playbook run (JSON and Markdown too)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: fleet_report
type: aggregate
short_description: A per-host table of what every run found and changed, as text, JSON and Markdown
description:
  - At the end of an C(ansible-playbook) run, prints one compact block per host - what the host is
    (CPUs, NUMA nodes, GPUs, from the C(gpu_topology) fact), what each role changed, by part (sysctl keys,
    transparent hugepages, I/O scheduler rules, the model volume, driver packages, units, ...), its vLLM
    instances and their readiness, the Prometheus address, and every failure - instead of raw result dicts.
  - With C(--check) the same table is a drift report - what a run would change on each host.
  - Can write the same report as JSON and as Markdown (O(json_path), O(markdown_path)).
  - Parts come from a role's C(<role>_summary) fact when it sets one (C(host_tuning_summary) - per part
    C(changed) and C(items)), else from the names of the changed tasks (C(Part | what it does)).
  - It does not change what the stdout callback prints; enable it with
    C(callbacks_enabled = inferfleet.gpu.fleet_report) in C(ansible.cfg) or C(ANSIBLE_CALLBACKS_ENABLED).
version_added: 0.2.0
author: inferfleet engineers (@inferfleet)
requirements:
  - enable in configuration
options:
  display:
    description: Print the table at the end of the run.
    type: bool
    default: true
    env:
      - name: INFERFLEET_FLEET_REPORT_DISPLAY
    ini:
      - section: inferfleet_fleet_report
        key: display
  json_path:
    description: Write the report as JSON to this file (unset - do not).
    type: path
    env:
      - name: INFERFLEET_FLEET_REPORT_JSON
    ini:
      - section: inferfleet_fleet_report
        key: json_path
  markdown_path:
    description: Write the report as a Markdown table to this file (unset - do not).
    type: path
    env:
      - name: INFERFLEET_FLEET_REPORT_MARKDOWN
    ini:
      - section: inferfleet_fleet_report
        key: markdown_path
  max_items:
    description: At most this many items are named per part (the rest are counted).
    type: int
    default: 6
    env:
      - name: INFERFLEET_FLEET_REPORT_MAX_ITEMS
    ini:
      - section: inferfleet_fleet_report
        key: max_items
"""

EXAMPLES = r"""
# ansible.cfg
# [defaults]
# callbacks_enabled = inferfleet.gpu.fleet_report
# [inferfleet_fleet_report]
# markdown_path = reports/last-run.md

# A drift report of the whole fleet, as Markdown:
#   ANSIBLE_CALLBACKS_ENABLED=inferfleet.gpu.fleet_report \
#   INFERFLEET_FLEET_REPORT_MARKDOWN=drift.md \
#   ansible-playbook -i inventory inferfleet.gpu.site --check
"""

import json
import re

from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

# Lines of `debug` output that are for a person or a script to copy (kept verbatim, in order).
ADDRESS_PREFIXES = ("endpoint: ", "prometheus: ", "gateway: ", "api-key-file: ")
MAX_FAILURE = 300


def _natural(host):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", host)]


def topology_digest(topo):
    cpus = topo.get("cpus") or {}
    devices = topo.get("block_devices") or []
    names = [d.get("name") if isinstance(d, dict) else str(d) for d in devices] if isinstance(devices, list) \
        else list(devices)
    return {
        "cpus": cpus.get("count"),
        "cpus_online": cpus.get("online"),
        "numa_nodes": len(topo.get("numa_nodes") or []),
        "gpus": len(topo.get("gpus") or []),
        "nvswitch_count": topo.get("nvswitch_count"),
        "block_devices": sorted(n for n in names if n),
    }


def new_host():
    return {"ok": 0, "changed": 0, "failed": 0, "skipped": 0, "unreachable": 0, "topology": None,
            "parts": {}, "changed_tasks": [], "failures": [], "instances": [], "addresses": [],
            "reboot_required": False}


def _part_of(role, task_name):
    """(role, part) of a task: the role's name, and the task name's prefix before ' | '."""
    name = task_name or ""
    if " : " in name:            # "role : Task" as some callbacks name it
        name = name.split(" : ", 1)[1]
    part = name.split(" | ", 1)[0].strip() if " | " in name else name.strip()
    return role or "play", part


def _result_items(res):
    """What a changed result names: the changed loop items' labels, else a module's changed_items."""
    items = []
    for sub in res.get("results") or []:
        if isinstance(sub, dict) and sub.get("changed"):
            label = sub.get("_ansible_item_label", sub.get("item"))
            if isinstance(label, dict):
                label = label.get("key") or label.get("name") or label.get("path") or json.dumps(label, sort_keys=True)
            if label is not None:
                items.append(str(label))
    for key in ("changed_items", "changed_keys"):
        if isinstance(res.get(key), list):
            items.extend(str(i) for i in res[key])
    return items


def add_change(host, role, part, items):
    parts = host["parts"].setdefault(role, {})
    entry = parts.setdefault(part, [])
    for item in items:
        if item not in entry:
            entry.append(item)


def _short(items, max_items):
    if not items:
        return ""
    shown = items[:max_items]
    more = len(items) - len(shown)
    return " (" + ", ".join(shown) + (", +%d more" % more if more > 0 else "") + ")"


def host_lines(name, h, max_items=6):
    topo = h.get("topology") or {}
    found = ("%s CPUs, %s NUMA, %s GPUs" % (topo.get("cpus", "?"), topo.get("numa_nodes", "?"), topo.get("gpus", "?"))
             if topo and "error" not in topo else "topology not gathered")
    lines = ["%s  [%s]  ok=%d changed=%d failed=%d unreachable=%d%s" % (
        name, found, h["ok"], h["changed"], h["failed"], h["unreachable"],
        "  REBOOT REQUIRED" if h.get("reboot_required") else "")]
    if h["parts"]:
        for role in sorted(h["parts"]):
            parts = h["parts"][role]
            lines.append("  %-14s %s" % (role + ":", "; ".join(
                part + _short(items, max_items) for part, items in sorted(parts.items()))))
    else:
        lines.append("  %-14s %s" % ("changed:", "nothing"))
    if h["instances"]:
        lines.append("  %-14s %d ready: %s" % ("vllm:", len(h["instances"]),
                                               ", ".join("%s %s" % (i.get("unit"), i.get("url")) for i in h["instances"])))
    for failure in h["failures"]:
        lines.append("  FAILED         " + failure)
    return lines


def render_text(report, max_items=6):
    hosts = report.get("hosts") or {}
    mode = "drift report (check mode: what a run would change)" if report.get("check_mode") else "what changed"
    lines = ["== fleet report: %s; %d host(s) ==" % (mode, len(hosts))]
    for name in sorted(hosts, key=_natural):
        lines.extend(host_lines(name, hosts[name], max_items))
    if not hosts:
        lines.append("(no host ran a task)")
    return "\n".join(lines)


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report, max_items=6):
    hosts = report.get("hosts") or {}
    title = "Drift report (check mode)" if report.get("check_mode") else "Fleet report"
    out = ["# %s" % title, "",
           "| host | CPUs | NUMA | GPUs | ok | changed | failed | what changed, by role and part | vLLM instances | failures |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    for name in sorted(hosts, key=_natural):
        h = hosts[name]
        topo = h.get("topology") or {}
        parts = "<br>".join("%s: %s" % (role, "; ".join(p + _short(i, max_items) for p, i in sorted(ps.items())))
                            for role, ps in sorted(h["parts"].items())) or "nothing"
        inst = "<br>".join("%s %s" % (i.get("unit"), i.get("url")) for i in h["instances"]) or "-"
        fails = "<br>".join(h["failures"]) or "-"
        out.append("| %s | %s | %s | %s | %d | %d | %d | %s | %s | %s |" % (
            _md(name), topo.get("cpus", "?"), topo.get("numa_nodes", "?"), topo.get("gpus", "?"),
            h["ok"], h["changed"], h["failed"] + h["unreachable"], _md(parts), _md(inst), _md(fails)))
    return "\n".join(out) + "\n"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "inferfleet.gpu.fleet_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.hosts = {}
        self.check_mode = False

    def _host(self, result):
        return self.hosts.setdefault(result._host.get_name(), new_host())

    def _option(self, name, default):
        try:
            value = self.get_option(name)
        except (KeyError, AttributeError):
            return default
        return default if value is None else value

    def v2_playbook_on_start(self, playbook):
        try:
            from ansible import context  # pylint: disable=import-outside-toplevel
            self.check_mode = bool((context.CLIARGS or {}).get("check"))
        except ImportError:
            self.check_mode = False

    def v2_runner_on_ok(self, result):
        h = self._host(result)
        res = result._result
        task = result._task
        h["ok"] += 1
        facts = res.get("ansible_facts") or {}
        topo = facts.get("gpu_topology")
        if isinstance(topo, dict):
            try:
                h["topology"] = topology_digest(topo)
            except Exception as exc:  # pylint: disable=broad-except  # a report must never break the run
                h["topology"] = {"error": str(exc)}
        for key, value in facts.items():
            if key.endswith("_summary") and isinstance(value, dict):
                self._record_summary(h, key[:-len("_summary")], value)
            elif key.endswith("_reboot_required") and value is True:
                h["reboot_required"] = True
        if isinstance(facts.get("vllm_service_endpoints"), list):
            h["instances"] = [e for e in facts["vllm_service_endpoints"] if isinstance(e, dict)]
        if task.action in ("debug", "ansible.builtin.debug", "ansible.legacy.debug"):
            msg = res.get("msg")
            if isinstance(msg, str):
                for line in msg.splitlines():
                    if line.startswith(ADDRESS_PREFIXES) and line not in h["addresses"]:
                        h["addresses"].append(line)
        if res.get("changed"):
            h["changed"] += 1
            role = task._role.get_name(include_role_fqcn=False) if getattr(task, "_role", None) else None
            name = task.get_name()
            h["changed_tasks"].append(name)
            role, part = _part_of(role, name)
            items = _result_items(res)
            if isinstance(task, Handler):
                # handlers: one part, named by what they did ("restart prometheus")
                part, items = "handlers", [_part_of(role, name)[1]]
            if role + "_summary" not in h.get("_summaries", ()):   # a role's own summary says it better
                add_change(h, role, part, items)

    def _record_summary(self, h, role, summary):
        """A role's own account of what it changed: {part: {changed: bool, items: [...]}}."""
        h.setdefault("_summaries", [])
        if role + "_summary" not in h["_summaries"]:
            h["_summaries"].append(role + "_summary")
        parts = {}
        for part, info in summary.items():
            if isinstance(info, dict) and info.get("changed"):
                items = info.get("items") or []
                parts[part] = [str(i) for i in items] if isinstance(items, list) else [str(items)]
        if parts:
            h["parts"][role] = parts
        else:
            h["parts"].pop(role, None)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if ignore_errors:
            return
        h = self._host(result)
        h["failed"] += 1
        msg = result._result.get("msg", "")
        h["failures"].append(("%s: %s" % (result._task.get_name(), msg))[:MAX_FAILURE])

    def v2_runner_on_skipped(self, result):
        self._host(result)["skipped"] += 1

    def v2_runner_on_unreachable(self, result):
        h = self._host(result)
        h["unreachable"] += 1
        h["failures"].append(("unreachable: %s" % result._result.get("msg", ""))[:MAX_FAILURE])

    def report(self):
        hosts = {}
        for name, h in self.hosts.items():
            hosts[name] = dict((k, v) for k, v in h.items() if not k.startswith("_"))
        return {"check_mode": self.check_mode, "hosts": hosts}

    def v2_playbook_on_stats(self, stats):
        report = self.report()
        max_items = int(self._option("max_items", 6))
        if self._option("display", True):
            self._display.display(render_text(report, max_items))
        json_path = self._option("json_path", "") or ""
        if json_path:
            with open(json_path, "w") as f:
                json.dump(report, f, indent=1, sort_keys=True)
        md_path = self._option("markdown_path", "") or ""
        if md_path:
            with open(md_path, "w") as f:
                f.write(render_markdown(report, max_items))
