"""Compare the gateway's routing policies against real vLLM servers: prefix-cache hit rate and TTFT.

    python bench/gateway_policies.py --router PATH/TO/vllm-router --key-file KEYFILE --model NAME \\
        --workers http://10.213.3.11:8000 http://10.213.3.12:8000 [--policies ...] [--sessions 6 --turns 4] \\
        [--haproxy PATH/TO/haproxy [--haproxy-lib DIR] --policies haproxy:power_of_two haproxy:consistent_hash ...]

For each policy a vllm-router (the same pinned wheel the gateway role installs) is started on this
machine in front of the given vLLM servers (``haproxy:POLICY``: Debian's HAProxy with the backend the
gateway role writes for that policy: roundrobin, leastconn, or hdr(X-Session-ID) with hash-type
consistent; ``python -m lab.assets`` unpacks one, nothing installed), and the same workload is sent
through it: ``--sessions``
multi-turn conversations (each with its own long system prompt, a fresh one per policy so that no
policy inherits another's cache; every third conversation opens with an image), ``--concurrency``
at a time, each turn resending the whole conversation with ``X-Session-ID`` and the body's ``user``
set to the conversation. Streaming answers give the time to first token (TTFT); each server's
``/metrics`` counters ``vllm:prefix_cache_hits_total`` / ``vllm:prefix_cache_queries_total`` before
and after give the prefix-cache hit rate (tokens). One JSON line per policy, then a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_load import png_data_url, percentile  # noqa: E402

POLICIES = ["round_robin", "power_of_two", "consistent_hash", "cache_aware"]
# The role's mapping (roles/gateway/templates/haproxy.cfg.j2); HAProxy has no cache_aware.
HAPROXY_BALANCE = {"round_robin": "balance roundrobin", "power_of_two": "balance leastconn",
                   "consistent_hash": "balance hdr(X-Session-ID)\n    hash-type consistent"}
ALL_POLICIES = POLICIES + ["haproxy:" + p for p in HAPROXY_BALANCE]
WORDS = ("fleet gateway router prefix cache token image vision model server instance restart drain "
         "latency throughput kernel memory numa socket batch request answer policy").split()


def metrics(worker: str) -> dict:
    text = urllib.request.urlopen(worker + "/metrics", timeout=10).read().decode()
    out = {}
    for name in ("prefix_cache_hits_total", "prefix_cache_queries_total"):
        vals = re.findall(r"(?m)^vllm:%s(?:\{[^}]*\})? ([0-9.eE+-]+)" % name, text)
        out[name] = sum(float(v) for v in vals)
    return out


def wait_ready(base: str, key: str | None, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            req = urllib.request.Request(base + "/v1/models", headers={"Authorization": f"Bearer {key}"} if key else {})
            if urllib.request.urlopen(req, timeout=5).status == 200:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(1)
    raise SystemExit(f"router at {base} not ready in {timeout} s")


def stream_chat(base: str, key: str | None, body: dict, session: str) -> tuple[float, str]:
    """(TTFT seconds, the answer text) of one streamed chat completion."""
    req = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-Session-ID": session,
                                          **({"Authorization": f"Bearer {key}"} if key else {})})
    t0 = time.monotonic()
    ttft, text = None, []
    with urllib.request.urlopen(req, timeout=300) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0].get("delta", {})
            if ttft is None and (delta.get("content") or delta.get("role") is None):
                ttft = time.monotonic() - t0
            text.append(delta.get("content") or "")
    return (ttft if ttft is not None else time.monotonic() - t0), "".join(text)


def system_prompt(policy: str, s: int, nonce: str, words: int) -> str:
    body = " ".join(WORDS[(s * 7 + i * 3) % len(WORDS)] for i in range(words))
    return f"[{policy} {nonce} conversation {s}] You are a terse assistant. Context: {body}"


def haproxy_config(policy: str, port: int, workers: list[str]) -> str:
    """The gateway role's HAProxy settings that matter here (balance, checks, timeouts, streaming)."""
    servers = "\n".join(f"    server {w.split('://', 1)[1]} {w.split('://', 1)[1]}" for w in workers)
    return f"""global
    log stdout format raw local0 warning
defaults
    mode http
    timeout connect 5s
    timeout client 1800s
    timeout server 1800s
    timeout check 5s
    option http-no-delay
    retries 5
    option redispatch 1
    retry-on conn-failure empty-response
frontend gateway
    bind 127.0.0.1:{port}
    default_backend vllm
backend vllm
    {HAPROXY_BALANCE[policy]}
    option httpchk GET /health
    http-check expect status 200
    default-server check inter 5s fall 3 rise 2
{servers}
"""


def start_proxy(args: argparse.Namespace, policy: str, tmp: Path) -> subprocess.Popen:
    if policy.startswith("haproxy:"):
        if not args.haproxy:
            raise SystemExit(f"{policy} needs --haproxy")
        cfg = tmp / "haproxy.cfg"
        cfg.write_text(haproxy_config(policy.split(":", 1)[1], args.port, args.workers))
        env = dict(os.environ, **({"LD_LIBRARY_PATH": args.haproxy_lib} if args.haproxy_lib else {}))
        return subprocess.Popen([args.haproxy, "-db", "-f", str(cfg)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.Popen([args.router, "--host", "127.0.0.1", "--port", str(args.port), "--policy", policy,
                             "--prometheus-port", str(args.port + 1), "--health-check-interval-secs", "5",
                             "--worker-urls", *args.workers],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_policy(args: argparse.Namespace, key: str | None, policy: str) -> dict:
    base = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory(prefix="gateway-policies-") as tmp:
        router = start_proxy(args, policy, Path(tmp))
        try:
            return measure(args, key, policy, base)
        finally:
            router.terminate()
            router.wait(timeout=30)


def measure(args: argparse.Namespace, key: str | None, policy: str, base: str) -> dict:
    wait_ready(base, key)
    before = {w: metrics(w) for w in args.workers}
    nonce = uuid.uuid4().hex[:8]
    image = png_data_url()
    ttfts: list[float] = []
    failures = []
    lock = threading.Lock()
    queue = list(range(args.sessions))

    def conversation(s: int) -> None:
        sid = f"{policy}-{nonce}-{s}"
        msgs = [{"role": "system", "content": system_prompt(policy, s, nonce, args.prompt_words)}]
        for turn in range(args.turns):
            text = f"Turn {turn}: one word please."
            content = ([{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": text}]
                       if turn == 0 and s % 3 == 0 else text)
            msgs.append({"role": "user", "content": content})
            body = {"model": args.model, "messages": msgs, "max_tokens": args.max_tokens, "temperature": 0,
                    "stream": True, "user": sid}
            try:
                ttft, answer = stream_chat(base, key, body, sid)
                with lock:
                    ttfts.append(ttft)
                msgs.append({"role": "assistant", "content": answer})
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    failures.append(f"{sid} turn {turn}: {exc}")
                return

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                s = queue.pop(0)
            conversation(s)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _n in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - t0
    after = {w: metrics(w) for w in args.workers}
    hits = sum(after[w]["prefix_cache_hits_total"] - before[w]["prefix_cache_hits_total"] for w in args.workers)
    queries = sum(after[w]["prefix_cache_queries_total"] - before[w]["prefix_cache_queries_total"]
                  for w in args.workers)
    per_worker = {w: int(after[w]["prefix_cache_queries_total"] - before[w]["prefix_cache_queries_total"])
                  for w in args.workers}
    return {"policy": policy, "requests": len(ttfts), "failures": len(failures), "seconds": round(seconds, 1),
            "prefix_cache_hit_rate": round(hits / queries, 3) if queries else 0.0,
            "ttft_p50_s": round(percentile(ttfts, 0.5), 3), "ttft_p99_s": round(percentile(ttfts, 0.99), 3),
            "prompt_tokens_per_worker": per_worker, "errors": failures[:3]}


def plot(rows: list[dict], path: str, title: str = "") -> None:
    """Bar charts of P99 TTFT and prefix-cache hit rate per policy (matplotlib, imported only here)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["policy"].replace("haproxy:", "HAProxy\n") for r in rows]
    colors = ["tab:orange" if r["policy"].startswith("haproxy:") else "tab:blue" for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    ax1.bar(names, [r["ttft_p99_s"] for r in rows], color=colors)
    ax1.bar(names, [r["ttft_p50_s"] for r in rows], color="none", edgecolor="black", hatch="//")
    ax1.set_ylabel("TTFT (s): bar P99, hatched P50")
    ax2.bar(names, [100 * r["prefix_cache_hit_rate"] for r in rows], color=colors)
    ax2.set_ylabel("prefix-cache hit rate (%)")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=8, rotation=30)
    fig.suptitle(title or "gateway policies: vllm-router (blue) and HAProxy (orange)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--router", help="the vllm-router executable (same pinned version as the role)")
    ap.add_argument("--haproxy", help="an haproxy executable, for the haproxy:POLICY runs")
    ap.add_argument("--haproxy-lib", help="LD_LIBRARY_PATH for it (an unpacked Debian package)")
    ap.add_argument("--workers", nargs="+", required=True, help="vLLM base URLs, http://ADDR:PORT")
    ap.add_argument("--model", required=True)
    ap.add_argument("--key-file")
    ap.add_argument("--policies", nargs="+", default=POLICIES, choices=ALL_POLICIES)
    ap.add_argument("--sessions", type=int, default=6)
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--prompt-words", type=int, default=300)
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--port", type=int, default=18181)
    ap.add_argument("--json-out", help="also write the rows to this JSON file")
    ap.add_argument("--plot", help="also draw P99 TTFT and the hit rate per policy into this PNG (matplotlib)")
    args = ap.parse_args(argv)
    if not args.router and any(not p.startswith("haproxy:") for p in args.policies):
        ap.error("--router is needed for the vllm-router policies")
    key = Path(args.key_file).read_text().strip() if args.key_file else None
    rows = []
    for policy in args.policies:
        row = run_policy(args, key, policy)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1) + "\n")
    if args.plot:
        plot(rows, args.plot)
    print("\n| policy | requests | failures | prefix-cache hit rate | TTFT p50 (s) | TTFT p99 (s) | prompt tokens per worker |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['policy']} | {r['requests']} | {r['failures']} | {r['prefix_cache_hit_rate']:.1%} | "
              f"{r['ttft_p50_s']} | {r['ttft_p99_s']} | {' / '.join(map(str, r['prompt_tokens_per_worker'].values()))} |")
    return 0 if all(r["failures"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
