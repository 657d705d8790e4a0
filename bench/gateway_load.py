"""A load loop of image and text chat requests through the gateway; reports failures and stalls.

    python bench/gateway_load.py --url http://ADDR:PORT/v1 --model NAME [--key-file PATH]
        [--concurrency 2] [--duration SECONDS | --stop-file PATH] [--report PATH]

Each of ``--concurrency`` workers sends chat completions back to back, alternating one with a
small PNG image (a base64 data URL) and a text-only one, until ``--duration`` seconds have passed,
``--stop-file`` exists, or SIGTERM/SIGINT. Then one JSON object is printed (and written to
``--report``): ``requests``, ``failures`` (any answer other than 200 with a choice, or a transport
error), ``errors`` (the first few, with the time they happened), ``longest_stall_s`` (the longest
interval in which no request completed), ``max_latency_s`` and ``p50/p99_latency_s``. Exit status 0
only when every request succeeded. Standard library only: it runs on the controller as it is.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib


def png_data_url(width: int = 64, height: int = 48) -> str:
    rows = b"".join(
        b"\x00" + b"".join(bytes(((x * 255) // width, (y * 255) // height, 128)) for x in range(width))
        for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def chat_body(model: str, image: str | None, n: int, max_tokens: int) -> dict:
    text = f"Request {n}: describe this in one word." if image else f"Request {n}: say one word."
    content = ([{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": text}]
               if image else text)
    return {"model": model, "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens, "temperature": 0}


def post(url: str, body: dict, key: str | None, timeout: float) -> tuple[int, dict | str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")[:300]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class Load:
    def __init__(self, args: argparse.Namespace, key: str | None):
        self.args, self.key = args, key
        self.url = args.url.rstrip("/") + "/chat/completions"
        self.image = png_data_url()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.done: list[float] = []  # completion times (successes), seconds since start
        self.latencies: list[float] = []
        self.requests = self.failures = self.images = 0
        self.errors: list[dict] = []

    def worker(self, wid: int) -> None:
        n = wid
        while not self.stop.is_set():
            n += self.args.concurrency
            with_image = n % 2 == 0
            start = time.monotonic()
            try:
                status, answer = post(self.url, chat_body(self.args.model, self.image if with_image else None, n,
                                                          self.args.max_tokens), self.key, self.args.timeout)
                ok = status == 200 and isinstance(answer, dict) and bool(answer.get("choices"))
                why = None if ok else f"HTTP {status}: {str(answer)[:200]}"
            except Exception as exc:  # noqa: BLE001 - every transport error is a failed request
                ok, why = False, f"{type(exc).__name__}: {exc}"
            end = time.monotonic()
            with self.lock:
                self.requests += 1
                self.images += with_image
                if ok:
                    self.done.append(end - self.t0)
                    self.latencies.append(end - start)
                else:
                    self.failures += 1
                    if len(self.errors) < 10:
                        self.errors.append({"at_s": round(end - self.t0, 2), "image": with_image, "error": why})

    def should_stop(self) -> bool:
        if self.args.duration and time.monotonic() - self.t0 >= self.args.duration:
            return True
        return bool(self.args.stop_file and os.path.exists(self.args.stop_file))

    def report(self) -> dict:
        end = time.monotonic() - self.t0
        marks = [0.0] + sorted(self.done) + [end]
        return {
            "url": self.args.url, "seconds": round(end, 1), "concurrency": self.args.concurrency,
            "requests": self.requests, "image_requests": self.images, "failures": self.failures,
            "longest_stall_s": round(max(b - a for a, b in zip(marks, marks[1:])), 2),
            "max_latency_s": round(max(self.latencies, default=0.0), 2),
            "p50_latency_s": round(percentile(self.latencies, 0.5), 2),
            "p99_latency_s": round(percentile(self.latencies, 0.99), 2),
            "errors": self.errors,
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the gateway's OpenAI base URL, http://ADDR:PORT/v1")
    ap.add_argument("--model", required=True, help="served model name")
    ap.add_argument("--key-file", help="file holding the API key (sent as a Bearer token)")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=300.0, help="per-request timeout, seconds")
    ap.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: no limit)")
    ap.add_argument("--stop-file", help="stop once this file exists")
    ap.add_argument("--report", help="also write the JSON report here")
    args = ap.parse_args(argv)
    key = open(args.key_file, encoding="utf-8").read().strip() if args.key_file else os.environ.get("OPENAI_API_KEY")
    load = Load(args, key)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: load.stop.set())
    threads = [threading.Thread(target=load.worker, args=(i,), daemon=True) for i in range(args.concurrency)]
    for t in threads:
        t.start()
    while not load.stop.is_set():
        if load.should_stop():
            load.stop.set()
        load.stop.wait(0.5)
    for t in threads:
        t.join(args.timeout + 5)
    result = load.report()
    text = json.dumps(result)
    if args.report:
        with open(args.report + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(args.report + ".tmp", args.report)
    print(text, flush=True)
    return 0 if result["failures"] == 0 and result["requests"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
