#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: benchmark_report
short_description: Render a fleet benchmark's results into summary.json, report.md and PNG plots, and judge SLOs
version_added: 0.1.0
description:
  - Reads a results directory written by the role M(inferfleet.gpu.benchmark) (C(targets.json) and the
    C(vllm bench serve --save-result) files under C(raw/)) and writes C(summary.json) (one row per target
    and workload), C(report.md) (a table, the load generator's cost, the SLO verdicts) and, with O(plots),
    C(latency.png) and C(throughput.png).
  - Judges every row against O(slo) and returns the violations, each naming its target; the module itself
    does not fail on them (the role does, after the report is written, so a failing run still leaves its report).
  - Runs where the results are (the controller, with C(delegate_to=localhost)); plots need matplotlib there.
author:
  - inferfleet engineers (@inferfleet)
options:
  path:
    description: The results directory.
    type: path
    required: true
  slo:
    description:
      - Bounds; unset or null ones are not judged. C(p99_ttft_ms), C(p99_tpot_ms), C(p99_itl_ms), C(p99_e2el_ms)
        and C(max_failed) are upper bounds, C(min_request_throughput) (requests/s) a lower bound.
    type: dict
    default: {}
  plots:
    description: Write the PNG plots (needs matplotlib).
    type: bool
    default: true
  settings:
    description: The load settings (rate, concurrency, prompts, ...) printed at the top of C(report.md).
    type: dict
    default: {}
attributes:
  check_mode:
    description: Can run in check mode and predict the change without modifying the target.
    support: full
    details: Reads the results, computes rows and violations, writes nothing.
  diff_mode:
    description: Returns the old and new C(report.md) in diff mode.
    support: full
  platform:
    description: Target platforms.
    support: full
    platforms: [posix]
requirements:
  - matplotlib (only with O(plots=true))
"""

EXAMPLES = r"""
- name: Fleet report and SLO verdicts
  inferfleet.gpu.benchmark_report:
    path: ./benchmark-results/20261130T061500Z
    slo:
      p99_ttft_ms: 2000
      max_failed: 0
  delegate_to: localhost
  run_once: true
  register: report
"""

RETURN = r"""
summary:
  description: One row per target and workload (also written to C(summary.json)).
  returned: always
  type: list
  elements: dict
  sample: [{"target": "node1:8000", "workload": "image", "request_throughput": 3.2, "p99_ttft_ms": 812.0,
            "completed": 50, "failed": 0, "unit_settings": {"sched_policy": "fifo", "sched_priority": 80}}]
table:
  description: The Markdown table of C(report.md).
  returned: always
  type: str
violations:
  description: SLO violations, each naming the target, the workload, the value and the bound.
  returned: always
  type: list
  elements: str
  sample: ["node1:8000 (image): p99_ttft_ms = 812, SLO p99_ttft_ms <= 500"]
files:
  description: Paths of the files written (or that would be written).
  returned: always
  type: list
  elements: str
"""

import json
import os
import shutil
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferfleet.gpu.plugins.module_utils import benchmark

try:
    import matplotlib  # noqa: F401  pylint: disable=unused-import
    HAS_MATPLOTLIB = True
    MATPLOTLIB_ERROR = None
except ImportError:
    HAS_MATPLOTLIB = False
    MATPLOTLIB_ERROR = traceback.format_exc()


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            slo=dict(type="dict", default={}),
            plots=dict(type="bool", default=True),
            settings=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def main():
    module = build_module()
    params = module.params
    path = params["path"]
    if not os.path.isfile(os.path.join(path, "targets.json")):
        module.fail_json(msg="benchmark_report: path=%s holds no targets.json (not a benchmark results directory)" % path)
    unknown = sorted(set(params["slo"]) - set(benchmark.SLO_KEYS))
    if unknown:
        module.fail_json(msg="benchmark_report: slo has unknown keys %s; allowed: %s"
                         % (", ".join(unknown), ", ".join(sorted(benchmark.SLO_KEYS))))
    if params["plots"] and not HAS_MATPLOTLIB:
        module.fail_json(msg="benchmark_report: plots=true needs matplotlib on %s (pip install matplotlib), "
                             "or set plots=false" % os.uname()[1], exception=MATPLOTLIB_ERROR)
    try:
        rows = benchmark.load_rows(path)
        violations = benchmark.check_slo(rows, params["slo"])
    except (IOError, OSError, ValueError, KeyError) as exc:
        module.fail_json(msg="benchmark_report: %s: %s" % (path, exc))
    plot_names = ["latency.png", "throughput.png"] if params["plots"] else []
    report = benchmark.render_markdown(rows, params["settings"], violations, plot_names)
    summary = json.dumps({"settings": params["settings"], "targets": rows, "slo": params["slo"],
                          "violations": violations}, indent=2, sort_keys=True) + "\n"
    wanted = {"summary.json": summary.encode(), "report.md": report.encode()}
    files = [os.path.join(path, name) for name in list(wanted) + plot_names]
    old_report = _read(os.path.join(path, "report.md"))
    changed = any(_read(os.path.join(path, name)) != data for name, data in wanted.items())
    changed = changed or any(not os.path.exists(os.path.join(path, name)) for name in plot_names)
    result = dict(changed=changed, summary=rows, table=benchmark.render_table(rows), violations=violations,
                  files=files)
    if module._diff:
        result["diff"] = {"before": (old_report or b"").decode(), "after": report,
                          "before_header": "report.md", "after_header": "report.md"}
    if module.check_mode or not changed:
        module.exit_json(**result)
    tmp = tempfile.mkdtemp(prefix=".report-", dir=path)
    try:
        for name, data in wanted.items():
            with open(os.path.join(tmp, name), "wb") as handle:
                handle.write(data)
        if plot_names:
            benchmark.plot(rows, tmp)
        for name in list(wanted) + plot_names:
            module.atomic_move(os.path.join(tmp, name), os.path.join(path, name))
    except (IOError, OSError, ValueError) as exc:
        module.fail_json(msg="benchmark_report: writing into %s: %s" % (path, exc))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
