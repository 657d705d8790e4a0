"""Which unit settings keep a vLLM server fast next to a CPU-bound neighbour?

One vLLM instance (a systemd unit of inferfleet.gpu.vllm_service) on one host, the same offered
load (streaming chat requests from this machine), with and without a CPU-bound neighbour started
on that host as an ordinary service (``systemd-run``: one busy Python loop per host CPU, each
counting its iterations, so the neighbour's own progress is measured too). Variants:

  untuned    all host CPUs, SCHED_OTHER, nice 0           (an untuned unit)
  affinity   the unit's CPUs, SCHED_OTHER, nice 0         (CPU/NUMA affinity only)
  fifo       the unit's CPUs, SCHED_FIFO 80               (the often-recommended setting)
  partition  the unit's CPUs, SCHED_OTHER, the rest of the host confined to the housekeeping CPUs
  nice       the unit's CPUs, SCHED_OTHER, nice -10
  weight     the unit's CPUs, SCHED_OTHER, CPUWeight=1000 (cgroup share; nice only orders threads
             inside one cgroup)

Variants are applied to the running server, to every thread of every process of the unit
(``taskset -a``, ``chrt -a``, ``renice`` per thread, ``systemctl set-property --runtime``), so no
restart sits between runs and the conditions can be interleaved: each round visits every
variant, with and without the neighbour, in an order rotated per round (A B C .. then B C .. A),
so drift of a shared machine spreads over all of them. The unit is put back as found at the end
(also on Ctrl-C). Partitioning is applied as ``AllowedCPUs=`` + ``CPUAffinity=`` on the neighbour's
unit (the "rest of the host"); where the vLLM unit runs in its own slice, ``--partition-slices``
also sets ``AllowedCPUs=`` on system.slice, user.slice and init.scope at runtime.

Runs unchanged against a lab node (``--lab NAME``) or any host reachable as root over SSH
(``--ssh root@HOST [--ssh-key KEY] --url http://HOST:8000/v1``): on a GPU host pick the unit of
one instance with ``--unit`` and the CPUs the neighbour should fill with ``--neighbour-workers``
(default: every CPU of the host). Prints a Markdown table (median and spread over the rounds, and
the ratios to ``untuned``); ``--json FILE`` keeps every run.

    .venv/bin/python bench/noisy_neighbour.py --lab NAME [--rounds 3] [--requests 40]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

VARIANTS = {
    "untuned": {"cpus": "all", "policy": "other", "nice": 0},
    "affinity": {"cpus": "unit", "policy": "other", "nice": 0},
    "fifo": {"cpus": "unit", "policy": "fifo", "priority": 80, "nice": 0},
    "partition": {"cpus": "unit", "policy": "other", "nice": 0, "partition": True},
    "nice": {"cpus": "unit", "policy": "other", "nice": -10},
    "weight": {"cpus": "unit", "policy": "other", "nice": 0, "weight": 1000},
}
NEIGHBOUR_UNIT = "inferfleet-noisy-neighbour"
NEIGHBOUR_CODE = r"""
import os, sys, time
n = int(sys.argv[1]); d = "/run/" + sys.argv[2]
os.makedirs(d, exist_ok=True)
for i in range(n):
    if os.fork() == 0:
        c = 0; t = time.monotonic(); path = "%s/%d.count" % (d, i)
        while True:
            c += 1
            if c % 200000 == 0 and time.monotonic() - t > 0.2:
                with open(path + ".tmp", "w") as f: f.write("%d\n" % c)
                os.replace(path + ".tmp", path); t = time.monotonic()
os.wait()
"""
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


class Host:
    """Commands on the serving host over SSH (one multiplexed connection)."""

    def __init__(self, target: str, key: str | None):
        self.base = ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
                     "LogLevel=ERROR", "-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/nn-ssh-%C", "-o",
                     "ControlPersist=300"] + (["-i", key] if key else []) + [target]

    def run(self, script: str, check: bool = True) -> str:
        out = subprocess.run(self.base + ["bash", "-c", shlex.quote(script)], capture_output=True, text=True,
                             check=False)
        if check and out.returncode != 0:
            raise RuntimeError("on host: %s\n%s%s" % (script[:200], out.stdout, out.stderr))
        return out.stdout


def cpulist(text: str) -> list[int]:
    out = []
    for part in text.replace(" ", ",").split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out += range(int(lo), int(hi) + 1)
        elif part.strip():
            out.append(int(part))
    return sorted(set(out))


def fmt_cpus(cpus: list[int]) -> str:
    return ",".join(str(c) for c in cpus)


def discover(host: Host, unit: str) -> dict:
    props = dict(line.split("=", 1) for line in host.run(
        "systemctl show %s -p MainPID,ControlGroup,AllowedCPUs,CPUAffinity,CPUSchedulingPolicy,"
        "CPUSchedulingPriority,Nice,CPUWeight,ActiveState; echo NPROC=$(getconf _NPROCESSORS_ONLN); "
        "echo CONTROLLERS=$(cat /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null)" % shlex.quote(unit)
    ).splitlines() if "=" in line)
    if props.get("ActiveState") != "active":
        raise SystemExit("noisy_neighbour: %s is %s on the host" % (unit, props.get("ActiveState")))
    cpus = cpulist(props.get("AllowedCPUs") or props.get("CPUAffinity") or "")
    all_cpus = list(range(int(props["NPROC"])))
    return {"props": props, "unit_cpus": cpus or all_cpus, "all_cpus": all_cpus,
            "housekeeping": [c for c in all_cpus if c not in cpus] or all_cpus,
            "cgroup": props["ControlGroup"], "controllers": props.get("CONTROLLERS", "")}


def apply(host: Host, unit: str, info: dict, variant: dict) -> None:
    """Set CPUs, policy, nice (every thread of every process of the unit) and CPUWeight."""
    cpus = fmt_cpus(info["all_cpus"] if variant["cpus"] == "all" else info["unit_cpus"])
    chrt = "-f -p %d" % variant["priority"] if variant["policy"] == "fifo" else "-o -p 0"
    host.run(
        "set -e; for p in $(cat /sys/fs/cgroup%s/cgroup.procs); do taskset -a -p -c %s $p >/dev/null; "
        "chrt -a %s $p; for t in /proc/$p/task/*; do renice -n %d -p ${t##*/} >/dev/null; done; done; "
        "systemctl set-property --runtime %s CPUWeight=%s"
        % (info["cgroup"], cpus, chrt, variant["nice"], shlex.quote(unit),
           variant.get("weight", "")))


def restore(host: Host, unit: str, info: dict) -> None:
    p = info["props"]
    policy = {"1": "fifo", "2": "rr"}.get(p.get("CPUSchedulingPolicy", "0"), "other")
    apply(host, unit, info, {"cpus": "unit", "policy": policy, "priority": int(p.get("CPUSchedulingPriority") or 0),
                             "nice": int(p.get("Nice") or 0)})
    host.run("systemctl stop %s 2>/dev/null; systemctl reset-failed %s 2>/dev/null; "
             "systemctl set-property --runtime system.slice AllowedCPUs=; "
             "systemctl set-property --runtime user.slice AllowedCPUs=; "
             "systemctl set-property --runtime init.scope AllowedCPUs=; true" % (NEIGHBOUR_UNIT, NEIGHBOUR_UNIT),
             check=False)


def start_neighbour(host: Host, info: dict, workers: int, partition: bool, slices: bool) -> None:
    props = []
    if partition:
        hk = fmt_cpus(info["housekeeping"])
        props = ["-p", "AllowedCPUs=" + hk, "-p", "CPUAffinity=" + hk.replace(",", " ")]
        if slices:
            host.run("for u in system.slice user.slice init.scope; do systemctl set-property --runtime $u "
                     "AllowedCPUs=%s; done" % hk)
    host.run("rm -rf /run/%s; systemd-run --quiet --collect --unit %s -p Type=exec %s /usr/bin/python3 -c %s %d %s"
             % (NEIGHBOUR_UNIT, NEIGHBOUR_UNIT, " ".join(shlex.quote(a) for a in props),
                shlex.quote(NEIGHBOUR_CODE), workers, NEIGHBOUR_UNIT))
    time.sleep(1.0)


def stop_neighbour(host: Host, slices: bool) -> None:
    host.run("systemctl stop %s; systemctl reset-failed %s 2>/dev/null; true" % (NEIGHBOUR_UNIT, NEIGHBOUR_UNIT),
             check=False)
    if slices:
        host.run("for u in system.slice user.slice init.scope; do systemctl set-property --runtime $u AllowedCPUs=; "
                 "done", check=False)


def neighbour_count(host: Host) -> int:
    out = host.run("cat /run/%s/*.count 2>/dev/null; true" % NEIGHBOUR_UNIT, check=False)
    return sum(int(x) for x in out.split() if x.isdigit())


def one_request(url: str, model: str, prompt: str, max_tokens: int, api_key: str | None) -> dict:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=120)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                       "temperature": 0, "ignore_eos": True, "stream": True,
                       "stream_options": {"include_usage": True}})
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = "Bearer " + api_key
    start = time.perf_counter()
    ttft, tokens = None, 0
    try:
        conn.request("POST", parts.path.rstrip("/") + "/chat/completions", body, headers)
        resp = conn.getresponse()
        if resp.status != 200:
            return {"ok": False, "error": "HTTP %d" % resp.status}
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            msg = json.loads(line[6:])
            if msg.get("choices") and msg["choices"][0].get("delta", {}).get("content") and ttft is None:
                ttft = time.perf_counter() - start
            if msg.get("usage"):
                tokens = msg["usage"].get("completion_tokens", tokens)
        e2e = time.perf_counter() - start
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return {"ok": False, "error": str(exc)}
    finally:
        conn.close()
    if ttft is None:
        return {"ok": False, "error": "no token"}
    return {"ok": True, "ttft": ttft, "e2e": e2e, "tokens": tokens,
            "tpot": (e2e - ttft) / (tokens - 1) if tokens > 1 else 0.0}


def load(url: str, model: str, prompts: list[str], concurrency: int, max_tokens: int, api_key: str | None) -> dict:
    results, lock, queue = [], threading.Lock(), list(prompts)

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                prompt = queue.pop(0)
            res = one_request(url, model, prompt, max_tokens, api_key)
            with lock:
                results.append(res)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _index in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ok = [r for r in results if r["ok"]]

    def pct(key, p):
        vals = sorted(r[key] * 1000 for r in ok)
        if not vals:
            return None
        return vals[min(len(vals) - 1, int(round(p / 100.0 * (len(vals) - 1))))]

    return {"wall_s": wall, "completed": len(ok), "failed": len(results) - len(ok), "req_s": len(ok) / wall,
            "p50_ttft_ms": pct("ttft", 50), "p99_ttft_ms": pct("ttft", 99),
            "p50_tpot_ms": pct("tpot", 50), "p99_tpot_ms": pct("tpot", 99)}


def make_prompts(run_id: str, n: int, words: int, seed: int) -> list[str]:
    """The same lengths every run; a unique first word so no run hits another's prefix cache."""
    rng = random.Random(seed)
    return ["%s-%d %s" % (run_id, i, " ".join(rng.choice(WORDS) for _word in range(words))) for i in range(n)]


def lab_target(name: str) -> tuple[str, str, str]:
    import yaml  # the lab's inventory; only needed with --lab
    inv = yaml.safe_load(Path("/run/inferfleet-lab/%s/inventory.yml" % name).read_text())
    hosts = inv["all"]["children"]["lab_nodes"]["hosts"]
    node = hosts[sorted(hosts)[0]]
    return "root@" + node["ansible_host"], node["ansible_ssh_private_key_file"], node["ansible_host"]


def summarise(runs: list[dict], variants: list[str]) -> str:
    keys = ("req_s", "p50_ttft_ms", "p99_ttft_ms", "p50_tpot_ms", "p99_tpot_ms", "neighbour_it_s")
    agg = {}
    for v in variants:
        for noisy in (False, True):
            sel = [r for r in runs if r["variant"] == v and r["neighbour"] == noisy]
            agg[(v, noisy)] = {k: [r[k] for r in sel if r.get(k) is not None] for k in keys}
            agg[(v, noisy)]["failed"] = sum(r["failed"] for r in sel)
            agg[(v, noisy)]["n"] = len(sel)

    def med(vals):
        return statistics.median(vals) if vals else None

    def cell(vals, digits=1):
        if not vals:
            return "-"
        return "%.*f [%.*f-%.*f]" % (digits, med(vals), digits, min(vals), digits, max(vals))

    def ratio(v, noisy, key):
        a, b = med(agg[(v, noisy)][key]), med(agg[("untuned", noisy)][key]) if ("untuned", noisy) in agg else None
        return "%.2f" % (a / b) if a is not None and b else "-"

    lines = ["| variant | neighbour | runs | req/s | P50 TTFT ms | P99 TTFT ms | P50 TPOT ms | P99 TPOT ms | failed "
             "| neighbour Mit/s | req/s ÷ untuned | P99 TTFT ÷ untuned | P99 TPOT ÷ untuned | neighbour ÷ untuned |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for v in variants:
        for noisy in (False, True):
            a = agg[(v, noisy)]
            lines.append("| %s | %s | %d | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s |" % (
                v, "yes" if noisy else "no", a["n"], cell(a["req_s"], 2), cell(a["p50_ttft_ms"]),
                cell(a["p99_ttft_ms"]), cell(a["p50_tpot_ms"]), cell(a["p99_tpot_ms"]), a["failed"],
                cell([x / 1e6 for x in a["neighbour_it_s"]], 2) if noisy else "-", ratio(v, noisy, "req_s"),
                ratio(v, noisy, "p99_ttft_ms"), ratio(v, noisy, "p99_tpot_ms"),
                ratio(v, noisy, "neighbour_it_s") if noisy else "-"))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--lab", help="a lab that is up (python -m lab up + make lab): its first node")
    where.add_argument("--ssh", help="root@HOST of a serving host")
    ap.add_argument("--ssh-key", help="SSH private key (with --ssh)")
    ap.add_argument("--url", help="the instance's base URL (default http://HOST:8000/v1)")
    ap.add_argument("--unit", default="inferfleet-vllm-0.service")
    ap.add_argument("--model", help="served model name (default: the first of /v1/models)")
    ap.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"),
                    help="API key (default: the OPENAI_API_KEY environment variable, else none)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=40, help="requests per run")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--prompt-words", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--neighbour-workers", type=int, help="busy loops (default: every CPU of the host)")
    ap.add_argument("--partition-slices", action="store_true",
                    help="partition: also AllowedCPUs= on system.slice/user.slice/init.scope (only when the "
                         "vLLM unit runs in a slice of its own)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write every run here")
    args = ap.parse_args(argv)

    if args.lab:
        target, key, address = lab_target(args.lab)
    else:
        target, key, address = args.ssh, args.ssh_key, args.ssh.split("@")[-1]
    url = args.url or "http://%s:8000/v1" % address
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or "untuned" not in variants:
        raise SystemExit("noisy_neighbour: --variants must include untuned and only: %s" % ", ".join(VARIANTS))
    host = Host(target, key)
    info = discover(host, args.unit)
    model = args.model
    if not model:
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        conn.request("GET", parts.path.rstrip("/") + "/models",
                     headers={"Authorization": "Bearer " + args.api_key} if args.api_key else {})
        model = json.loads(conn.getresponse().read())["data"][0]["id"]
    workers = args.neighbour_workers or len(info["all_cpus"])
    print("noisy_neighbour: %s %s on %s, unit CPUs %s, housekeeping %s, host CPUs %d, cgroup controllers "
          "delegated: %s; neighbour %d busy loop(s); %d round(s) x %d variant(s) x {quiet, neighbour}, %d requests "
          "at concurrency %d, %d tokens each" % (args.unit, model, target, fmt_cpus(info["unit_cpus"]),
                                                 fmt_cpus(info["housekeeping"]), len(info["all_cpus"]),
                                                 info["controllers"] or "none", workers, args.rounds,
                                                 len(variants), args.requests, args.concurrency, args.max_tokens),
          flush=True)
    runs = []
    try:
        for rnd in range(args.rounds):
            order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
            for v in order:
                apply(host, args.unit, info, VARIANTS[v])
                for noisy in ((False, True) if rnd % 2 == 0 else (True, False)):
                    if noisy:
                        start_neighbour(host, info, workers, VARIANTS[v].get("partition", False),
                                        args.partition_slices)
                    run_id = "r%d-%s-%s" % (rnd, v, "n" if noisy else "q")
                    load(url, model, make_prompts(run_id + "w", 2, args.prompt_words, args.seed), 1,
                         args.max_tokens, args.api_key)
                    c0, t0 = (neighbour_count(host), time.monotonic()) if noisy else (0, 0)
                    res = load(url, model, make_prompts(run_id, args.requests, args.prompt_words, args.seed),
                               args.concurrency, args.max_tokens, args.api_key)
                    if noisy:
                        res["neighbour_it_s"] = (neighbour_count(host) - c0) / (time.monotonic() - t0)
                        stop_neighbour(host, args.partition_slices)
                    res.update(variant=v, neighbour=noisy, round=rnd)
                    runs.append(res)
                    extra = "  neighbour %.2f Mit/s" % (res["neighbour_it_s"] / 1e6) if noisy else ""
                    values = (rnd + 1, v, "neighbour" if noisy else "quiet", res["req_s"], res["p50_ttft_ms"] or 0,
                              res["p99_ttft_ms"] or 0, res["p50_tpot_ms"] or 0, res["p99_tpot_ms"] or 0,
                              res["failed"], extra)
                    print("  round %d %-9s %-9s %5.2f req/s  P50/P99 TTFT %6.1f/%6.1f ms  P50/P99 TPOT %6.1f/%6.1f ms"
                          "  failed %d%s" % values, flush=True)
    finally:
        restore(host, args.unit, info)
    with open("/proc/loadavg") as handle:
        print("load average at the end (this machine): " + " ".join(handle.read().split()[:3]))
    print()
    print(summarise(runs, variants))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "unit": info, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
