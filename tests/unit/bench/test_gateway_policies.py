"""bench/gateway_policies.py end to end through a real HAProxy (Debian's, unpacked, run as this user)
in front of two stand-in vLLM servers: streamed answers, per-server prefix-cache counters, and the
hash policy keeping every conversation on one server while round robin spreads it.

The stand-in servers (named stand-ins, tests only) answer /health, /v1/models, /metrics and streamed
chat completions; each counts the prompt tokens it saw and calls a request a prefix-cache hit when the
same conversation was on it before.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "bench"))
import gateway_policies  # noqa: E402


class _StandinVllm(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, code, data, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        srv = self.server
        if self.path == "/health":
            self._send(200, b"")
        elif self.path == "/v1/models":
            self._send(200, json.dumps({"data": [{"id": "m"}]}).encode())
        elif self.path == "/metrics":
            self._send(200, ("vllm:prefix_cache_queries_total{model_name=\"m\"} %d\n"
                             "vllm:prefix_cache_hits_total{model_name=\"m\"} %d\n" % (srv.queries, srv.hits)).encode(),
                       "text/plain")
        else:
            self._send(404, b"")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        tokens = len(json.dumps(body["messages"]).split())
        with srv.lock:
            srv.queries += tokens
            if body["user"] in srv.seen:
                srv.hits += tokens // 2
            srv.seen.add(body["user"])
            srv.sessions.setdefault(body["user"], 0)
            srv.sessions[body["user"]] += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in ({"role": "assistant"}, {"content": "word"}):
            line = ("data: " + json.dumps({"choices": [{"delta": event}]}) + "\n\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        done = b"data: [DONE]\n\n"
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))


def _standin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandinVllm)
    server.lock, server.queries, server.hits, server.seen, server.sessions = threading.Lock(), 0, 0, set(), {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _run(haproxy, tmp_path, policy, monkeypatch):
    servers = [_standin(), _standin()]
    exe, env = haproxy
    monkeypatch.setenv("LD_LIBRARY_PATH", env["LD_LIBRARY_PATH"])
    out = tmp_path / "rows.json"
    try:
        rc = gateway_policies.main(["--haproxy", exe, "--model", "m", "--policies", policy, "--sessions", "6",
                                    "--turns", "3", "--prompt-words", "20", "--port", "18791",
                                    "--json-out", str(out),
                                    "--workers", *[f"http://127.0.0.1:{s.server_address[1]}" for s in servers]])
    finally:
        for s in servers:
            s.shutdown()
    return rc, json.loads(out.read_text())[0], servers


def test_hash_policy_keeps_each_conversation_on_one_server(haproxy, tmp_path, monkeypatch):
    rc, row, servers = _run(haproxy, tmp_path, "haproxy:consistent_hash", monkeypatch)
    assert rc == 0, row
    assert row["requests"] == 18 and row["failures"] == 0
    # every session on exactly one server: the hash on X-Session-ID
    for sid in set(servers[0].sessions) | set(servers[1].sessions):
        assert (sid in servers[0].sessions) != (sid in servers[1].sessions), sid
    assert row["prefix_cache_hit_rate"] > 0
    assert row["ttft_p99_s"] >= row["ttft_p50_s"] > 0


def test_round_robin_spreads_conversations_over_both(haproxy, tmp_path, monkeypatch):
    rc, row, servers = _run(haproxy, tmp_path, "haproxy:round_robin", monkeypatch)
    assert rc == 0, row
    assert row["requests"] == 18
    split = [sid for sid in servers[0].sessions if sid in servers[1].sessions]
    assert split, "round robin sent no conversation to both servers"
    assert all(v > 0 for v in row["prompt_tokens_per_worker"].values())
