"""Measure the machinery: how long Ansible takes on a lab fleet, as ratios to the ping floor.

For each fleet size (default 4 and 16 nodes) and each strategy (core's
``linear`` and mitogen's ``mitogen_linear``), on a freshly booted lab:

  boot     ``python -m lab up`` until every node answers SSH
  ping     ``ansible all -m ping`` (best of --repeat runs: the floor)
  facts    ``ansible all -m setup`` (best of --repeat runs)
  site-1   ``ansible-playbook playbooks/site.yml``, first run on fresh nodes
  site-2   the same again (nothing left to change)
  tasks-20 a playbook of 20 ``stat`` tasks per host: what a grown site.yml costs
           per task, where mitogen's per-run start-up is amortised

and prints each as seconds and as a ratio to that fleet's ping floor, plus the
nodes' memory (PSS of every process in their cgroups) and the highest 1-minute
load average seen (on 2 shared cores, a load far above 2 stretches every time).  Ratios make results
from a loaded or slower machine comparable; seconds are printed as well.

Run from the repository root, as root:

    .venv/bin/python bench/fleet.py                 # 4 and 16 nodes, both strategies
    .venv/bin/python bench/fleet.py --nodes 4 --strategy linear --repeat 1
    .venv/bin/python bench/fleet.py --markdown      # a table for docs/performance.md

With ``--site-noop`` it measures instead the drift-correction run an operator
repeats: the whole ``playbooks/site.yml`` as ``make lab`` runs it (a 2G data
disk per node for the model volume, monitoring from the lab's cached .debs)
with vLLM off (``-e @lab/vars/site.yml -e inferfleet_vllm_enabled=false -e
monitoring_deb_dir=/srv/debs-monitoring``), converged once, then re-run with
nothing to change, under each of

  pipelining   pipelining on (the project's ansible.cfg)
  mitogen      pipelining + mitogen's ``mitogen_linear``
  factcache    pipelining + ``gathering = smart`` and a jsonfile fact cache
               (filled by the converge run)
  stock        core's ``linear`` strategy, pipelining off

each as seconds and as a ratio to the fleet's ping floor (``ansible all -m
ping`` with the project's ansible.cfg, best of --repeat), with the task runs
per node (ok + skipped in the recap) and the changes (0 for a no-op). With
``--tree LABEL=PATH`` (repeatable) it times several collection trees side by
side on the same fleet, e.g. an export of main before a change and this tree:

    git archive COMMIT | tar -x -C /tmp/before
    .venv/bin/python bench/fleet.py --site-noop --nodes 16 --name rep16 \
        --tree before=/tmp/before --tree after=. --json /tmp/noop16.json

Mitogen (``ansible_mitogen``, 0.3.x) is optional and not the default anywhere:
ansible-core warns that third-party strategy plugins are deprecated.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.nspawn import nodes as labnodes  # noqa: E402  (needs ROOT on sys.path)
from lab import site as labsite  # noqa: E402
from lab import state as labstate  # noqa: E402

STEPS = ("boot", "ping", "facts", "site-1", "site-2", "tasks-20")

# A stand-in for a grown site.yml: 20 small module runs per host, no facts.
TASKS_PLAYBOOK = """---
- name: Twenty small tasks per host (bench/fleet.py)
  hosts: all
  gather_facts: false
  tasks:
""" + "".join(f"""    - name: Stat a file ({i})
      ansible.builtin.stat:
        path: /etc/hostname
""" for i in range(20))


def mitogen_strategy_dir() -> str | None:
    try:
        import ansible_mitogen  # noqa: PLC0415
    except ImportError:
        return None
    return str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy")


def strategy_env(strategy: str) -> dict:
    env = labsite.ansible_env(ROOT)
    env["ANSIBLE_DEPRECATION_WARNINGS"] = "False"
    if strategy == "mitogen":
        sdir = mitogen_strategy_dir()
        if sdir is None:
            raise SystemExit("bench: mitogen is not installed in the venv (pip install mitogen)")
        env["ANSIBLE_STRATEGY_PLUGINS"] = sdir
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    return env


def timed(cmd: list[str], env: dict | None = None, what: str = "", retries: int = 1) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode == 4 and retries > 0:
        # 4 = a host was unreachable; seen once with mitogen at 16 nodes under a load of 20.
        unreachable = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "UNREACHABLE" in ln]
        print(f"bench: {what}: unreachable host(s), timing it again: {unreachable[:3]}",
              file=sys.stderr, flush=True)
        return timed(cmd, env, what, retries - 1)
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        bad = [ln for ln in lines if "UNREACHABLE" in ln or "FAILED" in ln or "msg" in ln]
        tail = "\n".join((bad or lines)[-20:])
        raise RuntimeError(f"{what or cmd[0]} failed (exit {proc.returncode}):\n{tail}")
    return took


def lab(*args: str) -> list[str]:
    return [sys.executable, "-m", "lab", *args]


def node_memory_kib(name: str) -> float:
    """Mean PSS per node of every process in the lab's node cgroups."""
    doc = labstate.load(name)
    per_node = []
    for node in doc["nodes"]:
        top = labnodes.hierarchy_roots()[0] / node["cgroup"]
        pids = set()
        for procs in top.rglob("cgroup.procs"):
            pids.update(int(p) for p in procs.read_text().split())
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        per_node.append(total)
    return statistics.mean(per_node)


def run_one(n: int, strategy: str, repeat: int, name: str) -> dict:
    env = strategy_env(strategy)
    inv = str(labstate.inventory_path(name))
    res: dict = {"nodes": n, "strategy": strategy, "load": os.getloadavg()[0]}
    subprocess.run(lab("down", "--name", name), cwd=ROOT, capture_output=True, check=False)
    try:
        res["boot"] = timed(lab("up", "--name", name, "--nodes", str(n)), what="lab up")
        res["mem_kib"] = node_memory_kib(name)
        adhoc = ["ansible", "-i", inv, "all"]
        res["ping"] = min(timed(adhoc + ["-m", "ansible.builtin.ping"], env, "ping")
                          for _run in range(repeat))
        res["facts"] = min(timed(adhoc + ["-m", "ansible.builtin.setup"], env, "setup")
                           for _run in range(repeat))
        play = ["ansible-playbook", "-i", inv, str(ROOT / "playbooks" / "site.yml")]
        res["site-1"] = timed(play, env, "site.yml (first)")
        res["site-2"] = timed(play, env, "site.yml (second)")
        with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="bench-tasks-") as pb:
            pb.write(TASKS_PLAYBOOK)
            pb.flush()
            res["tasks-20"] = timed(["ansible-playbook", "-i", inv, pb.name], env, "20-task playbook")
        res["load"] = max(res["load"], os.getloadavg()[0])
    finally:
        subprocess.run(lab("down", "--name", name), cwd=ROOT, capture_output=True, check=False)
    return res


NOOP_VARIANTS = ("pipelining", "mitogen", "factcache", "stock")
# The lab's site run (`make lab`) with vLLM off: the model volume on the node's data disk, monitoring
# from the lab's local .deb repository (node 1 is the monitoring host and the gateway).
SITE_NOOP_ARGS = ["-e", "@lab/vars/site.yml", "-e", "inferfleet_vllm_enabled=false",
                  "-e", "monitoring_deb_dir=/srv/debs-monitoring"]
MONITORING_DEBS_PREFIX = "/var/cache/inferfleet-lab/debs-monitoring-"


def lab_up_args(n: int, name: str) -> list[str]:
    """`lab up` as `make lab` boots it: a 2G data disk per node and the monitoring .debs bound in."""
    args = ["up", "--name", name, "--nodes", str(n), "--disk-size", "2G"]
    debs = sorted(Path("/var/cache/inferfleet-lab").glob("debs-monitoring-*"))
    if not debs:
        raise SystemExit("bench: no monitoring .deb repository cached: run `python -m lab.assets prepare` once")
    return args + ["--bind", f"{debs[-1]}:/srv/debs-monitoring:ro"]


class Tree:
    """A collection tree to time: its playbooks, its ansible.cfg and its roles/plugins (through an
    ansible_collections/inferfleet/gpu link made in a temporary directory, never inside the tree)."""

    def __init__(self, label: str, path: Path, scratch: Path):
        self.label, self.path = label, path.resolve()
        if not (self.path / "playbooks" / "site.yml").is_file():
            raise SystemExit(f"bench: {self.path} has no playbooks/site.yml")
        link = scratch / label / "ansible_collections" / "inferfleet" / "gpu"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(self.path)
        self.collections = str(scratch / label)

    def env(self, base: dict) -> dict:
        env = dict(base)
        env["ANSIBLE_CONFIG"] = str(self.path / "ansible.cfg")
        env["ANSIBLE_COLLECTIONS_PATH"] = self.collections
        return env

    def play(self, inv: str) -> list[str]:
        args = [a.replace("@lab/", f"@{self.path}/lab/") for a in SITE_NOOP_ARGS]
        return ["ansible-playbook", "-i", inv, str(self.path / "playbooks" / "site.yml"), *args]


def parse_trees(specs: list[str] | None, scratch: Path) -> list[Tree]:
    out = []
    for spec in specs or [f"this={ROOT}"]:
        label, sep, path = spec.partition("=")
        if not sep or not label.isidentifier():
            raise SystemExit(f"bench: --tree wants LABEL=PATH, got {spec!r}")
        out.append(Tree(label, Path(path), scratch))
    return out


def variant_env(variant: str, cache_dir: str) -> dict:
    env = strategy_env("mitogen" if variant == "mitogen" else "linear")
    env["ANSIBLE_PIPELINING"] = "False" if variant == "stock" else "True"
    if variant == "factcache":
        env.update(ANSIBLE_GATHERING="smart", ANSIBLE_CACHE_PLUGIN="jsonfile",
                   ANSIBLE_CACHE_PLUGIN_CONNECTION=cache_dir, ANSIBLE_CACHE_PLUGIN_TIMEOUT="86400")
    return env


def recap(output: str) -> dict:
    """PLAY RECAP per host: {host: {ok, changed, skipped, ...}}."""
    hosts = {}
    for line in output.split("PLAY RECAP")[-1].splitlines():
        m = re.match(r"^(\S+)\s+:\s+(ok=\d+.*)$", line)
        if m:
            hosts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return hosts


def timed_play(cmd: list[str], env: dict, what: str, log: Path | None = None) -> tuple[float, dict]:
    """Run a playbook; with ``log`` its output (and, through ansible.posix.profile_tasks, each task's time)
    is kept in that file."""
    if log is not None:
        env = dict(env)
        enabled = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c]
        env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join(enabled + ["ansible.posix.profile_tasks"])
        env["PROFILE_TASKS_TASK_OUTPUT_LIMIT"] = "all"
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        bad = [ln for ln in lines if "UNREACHABLE" in ln or "FAILED" in ln or "fatal" in ln]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n" + "\n".join((bad or lines)[-20:]))
    return took, recap(proc.stdout)


def _runs(hosts: dict) -> dict:
    """Task runs (ok + skipped) and changes: the busiest host and a plain node (the last one)."""
    if not hosts:
        return {}
    names = sorted(hosts, key=labsite._natural)
    busiest = max(names, key=lambda h: hosts[h].get("ok", 0) + hosts[h].get("skipped", 0))
    plain = names[-1]
    return {"changed": sum(h.get("changed", 0) for h in hosts.values()),
            "runs_busiest": hosts[busiest].get("ok", 0) + hosts[busiest].get("skipped", 0),
            "runs_node": hosts[plain].get("ok", 0) + hosts[plain].get("skipped", 0),
            "skipped_node": hosts[plain].get("skipped", 0)}


def run_noop(n: int, variants: list[str], repeat: int, name: str, trees: list[Tree],
             json_out: str | None = None, logs: str | None = None, rounds: int = 1) -> dict:
    """Boot N nodes, converge site.yml once (vLLM off) with the last tree, then time the no-op re-run
    per variant and per tree, the trees side by side (one after the other for each variant)."""
    inv = str(labstate.inventory_path(name))
    res: dict = {"nodes": n, "load": os.getloadavg()[0], "trees": [t.label for t in trees], "runs": {}}

    def save():
        if json_out:
            Path(json_out).write_text(json.dumps(res, indent=1))

    subprocess.run(lab("down", "--name", name), cwd=ROOT, capture_output=True, check=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-factcache-") as cache_dir:
            res["boot"] = timed(lab(*lab_up_args(n, name)), what="lab up")
            adhoc = ["ansible", "-i", inv, "all", "-m", "ansible.builtin.ping"]
            pings = [timed(adhoc, trees[-1].env(variant_env("pipelining", cache_dir)), "ping")
                     for _run in range(repeat)]
            res["ping"], res["pings"] = min(pings), pings
            save()
            res["converge"], _hosts = timed_play(trees[-1].play(inv), trees[-1].env(variant_env("factcache", cache_dir)),
                                                 "site.yml (converge)",
                                                 Path(logs) / f"{n}-converge.log" if logs else None)
            print(f"bench: {n} nodes, converge {res['converge']:.1f} s, ping {res['ping']:.2f} s "
                  f"(runs {', '.join(f'{p:.2f}' for p in pings)}), load {os.getloadavg()[0]:.1f}",
                  file=sys.stderr, flush=True)
            for variant in variants:
                for rnd in range(rounds):
                    # the trees in turn, the order reversed every other round (a load that drifts during
                    # the run then falls on each tree alike)
                    for tree in (trees if rnd % 2 == 0 else trees[::-1]):
                        load0 = os.getloadavg()[0]
                        took, hosts = timed_play(tree.play(inv), tree.env(variant_env(variant, cache_dir)),
                                                 f"site.yml no-op ({variant}, {tree.label})",
                                                 Path(logs) / f"{n}-{variant}-{tree.label}-{rnd + 1}.log" if logs else None)
                        key = f"{variant}/{tree.label}"
                        every = res["runs"].get(key, {}).get("all", []) + [took]
                        row = {"seconds": statistics.median(every), "all": every,
                               "ratio": statistics.median(every) / res["ping"],
                               "load": max(load0, os.getloadavg()[0], res["runs"].get(key, {}).get("load", 0)),
                               **_runs(hosts)}
                        res["runs"][key] = row
                        save()
                        print(f"bench: {n} nodes, no-op site.yml {variant:<10} {tree.label:<8} {took:6.1f} s "
                              f"(x{took / res['ping']:.1f} the ping floor {res['ping']:.2f} s); changed "
                              f"{row.get('changed')}, task runs per node {row.get('runs_node')} "
                              f"({row.get('skipped_node')} skipped), busiest host {row.get('runs_busiest')}; "
                              f"load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
            res["load"] = max([res["load"], os.getloadavg()[0]] + [r["load"] for r in res["runs"].values()])
    finally:
        subprocess.run(lab("down", "--name", name), cwd=ROOT, capture_output=True, check=False)
    save()
    return res


def format_noop_markdown(results: list[dict], variants: list[str]) -> str:
    trees = results[0]["trees"] if results else []
    head = [f"no-op {v} ({t})" for v in variants for t in trees]
    lines = ["| nodes | ping (floor) | converge | " + " | ".join(head) + " | load |",
             "| ---: | ---: | ---: | " + " | ".join("---:" for _h in head) + " | ---: |"]
    for r in results:
        cells = [f"{r['converge']:.1f} s (x{r['converge'] / r['ping']:.1f})"]
        for v in variants:
            for t in trees:
                row = r["runs"].get(f"{v}/{t}")
                if row and len(row.get("all", [])) > 1:
                    cells.append(f"{row['seconds']:.1f} s (x{row['ratio']:.1f}) [{min(row['all']):.1f}-{max(row['all']):.1f}]")
                else:
                    cells.append(f"{row['seconds']:.1f} s (x{row['ratio']:.1f})" if row else "-")
        lines.append(f"| {r['nodes']} | {r['ping']:.2f} s | " + " | ".join(cells) + f" | {r['load']:.1f} |")
    return "\n".join(lines)


def format_text(results: list[dict]) -> str:
    head = f"{'nodes':>5} {'strategy':<8} " + " ".join(f"{s:>14}" for s in STEPS) + "   mem/node  load"
    lines = [head, "-" * len(head)]
    for r in results:
        cells = []
        for s in STEPS:
            cells.append(f"{r[s]:6.2f}s x{r[s] / r['ping']:5.2f}")
        lines.append(f"{r['nodes']:>5} {r['strategy']:<8} " + " ".join(f"{c:>14}" for c in cells)
                     + f"   {r['mem_kib'] / 1024:5.1f} MiB  {r['load']:4.1f}")
    lines.append("(x = ratio to the ping floor of the same fleet and strategy)")
    lines += _mitogen_lines(results)
    return "\n".join(lines)


def _mitogen_lines(results: list[dict]) -> list[str]:
    out = []
    by = {(r["nodes"], r["strategy"]): r for r in results}
    for n in sorted({r["nodes"] for r in results}):
        lin, mit = by.get((n, "linear")), by.get((n, "mitogen"))
        if lin and mit:
            parts = [f"{s} {mit[s] / lin[s]:.2f}" for s in ("ping", "facts", "site-1", "site-2", "tasks-20")]
            out.append(f"mitogen/linear time at {n} nodes: " + ", ".join(parts))
    return out


def format_markdown(results: list[dict]) -> str:
    lines = ["| nodes | strategy | boot | ping (floor) | facts | site.yml 1st | site.yml 2nd | 20 tasks "
             "| RAM/node | load |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        cells = [f"{r[s]:.2f} s (x{r[s] / r['ping']:.2f})" for s in STEPS]
        lines.append(f"| {r['nodes']} | {r['strategy']} | " + " | ".join(cells)
                     + f" | {r['mem_kib'] / 1024:.1f} MiB | {r['load']:.1f} |")
    extra = _mitogen_lines(results)
    if extra:
        lines.append("")
        lines += [f"- {e}" for e in extra]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, nargs="+", default=[4, 16])
    p.add_argument("--strategy", nargs="+", choices=["linear", "mitogen"], default=["linear", "mitogen"])
    p.add_argument("--repeat", type=int, default=3, help="runs of ping and facts (best is kept)")
    p.add_argument("--name", default="bench", help="lab name to use (taken down before and after)")
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    p.add_argument("--site-noop", action="store_true",
                   help="time the no-op re-run of the whole site.yml (vLLM off) per variant instead")
    p.add_argument("--variant", nargs="+", choices=NOOP_VARIANTS, default=list(NOOP_VARIANTS),
                   help="with --site-noop: the variants to time, in this order")
    p.add_argument("--tree", action="append", metavar="LABEL=PATH",
                   help="with --site-noop: a collection tree to time (repeatable, side by side; default: this "
                        "one); the converge runs with the last")
    p.add_argument("--json", metavar="FILE", help="with --site-noop: write the results here as they come")
    p.add_argument("--rounds", type=int, default=1, help="with --site-noop: runs per variant and tree (the "
                   "median is reported; the trees' order alternates per round)")
    p.add_argument("--logs", metavar="DIR", help="with --site-noop: keep each run's output here, with "
                   "ansible.posix.profile_tasks' time per task")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (the lab needs it)")
    # `timeout` sends SIGTERM: leave through the finally blocks, which take the lab down
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit("bench: terminated; taking the lab down"))
    if args.site_noop:
        noop = []
        with tempfile.TemporaryDirectory(prefix="bench-trees-") as scratch:
            trees = parse_trees(args.tree, Path(scratch))
            for n in args.nodes:
                print(f"bench: {n} nodes, no-op site.yml ({', '.join(t.label for t in trees)}) ...",
                      file=sys.stderr, flush=True)
                noop.append(run_noop(n, args.variant, args.repeat, args.name, trees,
                                     f"{args.json}.{n}" if args.json and len(args.nodes) > 1 else args.json,
                                     args.logs, args.rounds))
        print(format_noop_markdown(noop, args.variant))
        return 0
    results = []
    for n in args.nodes:
        for strategy in args.strategy:
            print(f"bench: {n} nodes, {strategy} ...", file=sys.stderr, flush=True)
            results.append(run_one(n, strategy, args.repeat, args.name))
            print(format_text(results[-1:]).splitlines()[2], file=sys.stderr, flush=True)
    print(format_text(results))
    if args.markdown:
        print()
        print(format_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
