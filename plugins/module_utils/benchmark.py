# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet benchmark's report: plain functions over a results directory.

Layout of a results directory (written by the role ``inferfleet.gpu.benchmark``)::

    targets.json              [{"name", "kind", "host", "url", "model", "unit", "unit_settings"}, ...]
    raw/NAME--WORKLOAD.json   what ``vllm bench serve --save-result`` wrote
    raw/NAME--WORKLOAD.meta.json  the load generator's own cost (files/bench_run.py)

``summarise`` turns one result into a row, ``check_slo`` judges rows against
SLOs, ``render_markdown`` and ``plot`` render them. Nothing here talks to a
host; ``bench/noisy_neighbour.py`` uses the same functions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

METRICS = ("ttft", "tpot", "itl", "e2el")
PERCENTILES = (50, 90, 99)
# systemctl show prints the policy as the kernel's number.
SCHED_POLICIES = {"0": "other", "1": "fifo", "2": "rr", "3": "batch", "5": "idle"}
# Properties read from each serving unit (the settings a result was measured under).
UNIT_PROPERTIES = ("Id", "ExecStart", "MainPID", "ActiveState", "CPUSchedulingPolicy", "CPUSchedulingPriority",
                   "Nice", "CPUAffinity", "AllowedCPUs", "CPUQuotaPerSecUSec", "CPUWeight", "NUMAPolicy",
                   "NUMAMask", "MemoryMax")
# SLO name -> (row key, direction): "max" fails above the bound, "min" below it.
SLO_KEYS = {
    "p99_ttft_ms": ("p99_ttft_ms", "max"),
    "p99_tpot_ms": ("p99_tpot_ms", "max"),
    "p99_itl_ms": ("p99_itl_ms", "max"),
    "p99_e2el_ms": ("p99_e2el_ms", "max"),
    "min_request_throughput": ("request_throughput", "min"),
    "max_failed": ("failed", "max"),
}


def parse_systemctl_show(text):
    """``systemctl show`` output (units separated by blank lines) -> list of property dicts."""
    units, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                units.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        units.append(current)
    return units


def exec_argv(exec_start):
    """The argv of a ``systemctl show -p ExecStart`` value (``{ path=... ; argv[]=A B C ; ... }``)."""
    match = re.search(r"argv\[\]=(.*?)(?: ; |\s*}?$)", exec_start or "")
    return match.group(1).split() if match else []


def _flag(argv, name):
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def unit_settings(props):
    """The scheduling and placement settings of one unit, from its ``systemctl show`` properties."""
    quota = props.get("CPUQuotaPerSecUSec", "")
    return {
        "unit": props.get("Id", ""),
        "sched_policy": SCHED_POLICIES.get(props.get("CPUSchedulingPolicy", ""), props.get("CPUSchedulingPolicy", "")),
        "sched_priority": _int(props.get("CPUSchedulingPriority")),
        "nice": _int(props.get("Nice")),
        "cpu_affinity": props.get("CPUAffinity", ""),
        "allowed_cpus": props.get("AllowedCPUs", ""),
        "cpu_quota": "" if quota in ("", "infinity") else quota,
        "cpu_weight": props.get("CPUWeight", ""),
        "numa_policy": props.get("NUMAPolicy", ""),
        "memory_max": props.get("MemoryMax", ""),
    }


def instances_from_units(units, address):
    """Serving instances described by their units: what ``vllm_service_endpoints`` holds, read back.

    ``units``: parsed ``systemctl show`` of the ``vllm serve`` units; ``address``: where the host answers.
    """
    out = []
    for props in units:
        argv = exec_argv(props.get("ExecStart"))
        if "serve" not in argv or props.get("ActiveState") != "active":
            continue
        pos = argv.index("serve")
        model_dir = argv[pos + 1] if pos + 1 < len(argv) and not argv[pos + 1].startswith("-") else ""
        port = int(_flag(argv, "--port") or 8000)
        name = props.get("Id", "")
        match = re.search(r"-(\d+)\.service$", name)
        out.append({
            "unit": name,
            "index": int(match.group(1)) if match else 0,
            "address": address,
            "port": port,
            "url": "http://%s:%d/v1" % (address, port),
            "model": _flag(argv, "--served-model-name") or model_dir,
            "model_dir": model_dir,
            "unit_settings": unit_settings(props),
        })
    return sorted(out, key=lambda e: e["index"])


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def summarise(target, workload, result, meta=None):
    """One report row from a ``vllm bench serve`` result (``None`` when the run left none)."""
    meta = meta or {}
    row = {
        "target": target["name"],
        "kind": target.get("kind", "instance"),
        "url": target.get("url", ""),
        "workload": workload,
        "unit_settings": target.get("unit_settings") or {},
    }
    if result is None:
        row.update({"completed": 0, "failed": meta.get("num_prompts"), "error": meta.get("error") or
                    "no result (vllm bench serve exited %s)" % meta.get("rc", "?")})
        for metric in METRICS:
            for pct in PERCENTILES:
                row["p%d_%s_ms" % (pct, metric)] = None
        row["request_throughput"] = row["output_throughput"] = None
    else:
        row["completed"] = _int(result.get("completed"))
        row["failed"] = _int(result.get("failed"))
        if row["failed"] is None and row["completed"] is not None and result.get("num_prompts") is not None:
            row["failed"] = int(result["num_prompts"]) - row["completed"]
        row["request_throughput"] = _num(result.get("request_throughput"))
        row["output_throughput"] = _num(result.get("output_throughput"))
        for metric in METRICS:
            for pct in PERCENTILES:
                value = result.get("p%d_%s_ms" % (pct, metric))
                if value is None and pct == 50:
                    value = result.get("median_%s_ms" % metric)
                row["p%d_%s_ms" % (pct, metric)] = _num(value)
        row["duration_s"] = _num(result.get("duration"))
        row["num_prompts"] = _int(result.get("num_prompts"))
        row["request_rate"] = result.get("request_rate")
        row["max_concurrency"] = result.get("max_concurrency")
    if meta.get("wall_s"):
        cpu = (meta.get("cpu_user_s") or 0) + (meta.get("cpu_sys_s") or 0)
        row["loadgen"] = {"host": meta.get("host", ""), "cpu_s": round(cpu, 2), "wall_s": round(meta["wall_s"], 2),
                          "cpu_cores": round(cpu / meta["wall_s"], 3), "max_rss_mib": meta.get("max_rss_mib")}
    return row


def run_name(target_name, workload):
    """File stem of one run: safe characters only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "%s--%s" % (target_name, workload))


def load_rows(path, workloads=None):
    """Every row of a results directory: one per target and workload, in the order of targets.json."""
    with open(os.path.join(path, "targets.json")) as handle:
        doc = json.load(handle)
    targets, workloads = doc["targets"], workloads or doc.get("workloads") or []
    rows = []
    for target in targets:
        for workload in workloads:
            stem = os.path.join(path, "raw", run_name(target["name"], workload))
            result = _read_json(stem + ".json")
            meta = _read_json(stem + ".meta.json") or {}
            rows.append(summarise(target, workload, result, meta))
    return rows


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def check_slo(rows, slo):
    """Violations (one string each, naming the target) of the SLOs set in ``slo`` (``None`` = not set)."""
    out = []
    for name, bound in sorted((slo or {}).items()):
        if bound is None or bound == "":
            continue
        if name not in SLO_KEYS:
            raise ValueError("unknown SLO %r; allowed: %s" % (name, ", ".join(sorted(SLO_KEYS))))
        key, direction = SLO_KEYS[name]
        bound = float(bound)
        for row in rows:
            value = row.get(key)
            label = "%s (%s)" % (row["target"], row["workload"])
            if value is None:
                out.append("%s: %s not measured (%s), SLO %s %g"
                           % (label, key, row.get("error", "no value"), name, bound))
            elif (direction == "max" and value > bound) or (direction == "min" and value < bound):
                out.append("%s: %s = %.6g, SLO %s %s %g"
                           % (label, key, value, name, "<=" if direction == "max" else ">=", bound))
    return out


def _fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.*f" % (digits, value)
    return str(value)


def _unit_text(settings):
    if not settings:
        return "-"
    policy = settings.get("sched_policy") or "?"
    if policy in ("fifo", "rr"):
        policy += " %s" % settings.get("sched_priority")
    parts = [policy, "nice %s" % settings.get("nice")]
    if settings.get("allowed_cpus") or settings.get("cpu_affinity"):
        parts.append("cpus %s" % (settings.get("allowed_cpus") or settings.get("cpu_affinity")))
    if settings.get("cpu_quota"):
        parts.append("quota %s" % settings["cpu_quota"])
    return ", ".join(parts)


TABLE_COLUMNS = (
    ("target", "target", None), ("workload", "workload", None), ("req/s", "request_throughput", 2),
    ("out tok/s", "output_throughput", 1), ("TTFT p50/p99 ms", ("p50_ttft_ms", "p99_ttft_ms"), 1),
    ("TPOT p50/p99 ms", ("p50_tpot_ms", "p99_tpot_ms"), 1), ("ITL p50/p99 ms", ("p50_itl_ms", "p99_itl_ms"), 1),
    ("E2E p50/p99 ms", ("p50_e2el_ms", "p99_e2el_ms"), 1), ("ok", "completed", None), ("failed", "failed", None),
)


def render_table(rows):
    """The report's Markdown table (also printed by ``make lab-bench``)."""
    head = [c[0] for c in TABLE_COLUMNS] + ["unit"]
    lines = ["| " + " | ".join(head) + " |",
             "| " + " | ".join("---" if i < 2 else "---:" for i in range(len(TABLE_COLUMNS))) + " | --- |"]
    for row in rows:
        cells = []
        for _title, key, digits in TABLE_COLUMNS:
            if isinstance(key, tuple):
                cells.append(" / ".join(_fmt(row.get(k), digits) for k in key))
            else:
                cells.append(_fmt(row.get(key), digits or 0))
        cells.append(_unit_text(row.get("unit_settings")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(rows, settings=None, violations=None, plots=None):
    """report.md: the table, the load settings, the load generator's cost, SLO verdicts, plots."""
    settings = settings or {}
    out = ["# Fleet benchmark", ""]
    if settings:
        out.append("Load: " + ", ".join("%s=%s" % (k, settings[k]) for k in sorted(settings)) + ".")
        out.append("")
    out += [render_table(rows), ""]
    costs = [r for r in rows if r.get("loadgen")]
    if costs:
        out += ["## The load generator's cost (vllm bench serve on the load host)", "",
                "| target | workload | host | CPU s | wall s | CPU cores used | max RSS MiB |",
                "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
        for r in costs:
            lg = r["loadgen"]
            cells = (r["target"], r["workload"], lg.get("host", ""), lg["cpu_s"], lg["wall_s"], lg["cpu_cores"],
                     _fmt(lg.get("max_rss_mib")))
            out.append("| %s | %s | %s | %s | %s | %s | %s |" % cells)
        out.append("")
    errors = [r for r in rows if r.get("error")]
    if errors:
        out += ["## Runs without a result", ""]
        out += ["- %s (%s): %s" % (r["target"], r["workload"], r["error"]) for r in errors] + [""]
    out += ["## SLO gate", ""]
    out += ["- " + v for v in violations] if violations else ["All targets within their SLOs (or none set)."]
    out.append("")
    if plots:
        out += ["## Plots", ""] + ["![%s](%s)" % (os.path.splitext(p)[0], p) for p in plots] + [""]
    return "\n".join(out)


def plot(rows, path):
    """latency.png (p50/p90/p99 per metric and target) and throughput.png; returns the file names.

    Needs matplotlib (on the controller). Raises ImportError without it.
    """
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    labels = ["%s\n%s" % (r["target"], r["workload"]) for r in rows]
    width = max(6.0, 1.2 * len(rows) + 2)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(width * len(METRICS) / 2, 4.5), squeeze=False)
    step = 0.8 / len(PERCENTILES)
    for ax, metric in zip(axes[0], METRICS):
        for i, pct in enumerate(PERCENTILES):
            values = [r.get("p%d_%s_ms" % (pct, metric)) or 0.0 for r in rows]
            ax.bar([x + i * step for x in range(len(rows))], values, step, label="p%d" % pct)
        ax.set_title(metric.upper() + " (ms)")
        ax.set_xticks([x + step for x in range(len(rows))])
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(path, "latency.png"), dpi=90, metadata={"Software": None})
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(width * 1.5, 4.5), squeeze=False)
    for ax, key, title in ((axes[0][0], "request_throughput", "requests/s"),
                           (axes[0][1], "output_throughput", "output tokens/s")):
        ax.bar(range(len(rows)), [r.get(key) or 0.0 for r in rows])
        ax.set_title(title)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(path, "throughput.png"), dpi=90, metadata={"Software": None})
    plt.close(fig)
    return ["latency.png", "throughput.png"]
