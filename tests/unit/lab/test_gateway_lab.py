"""The lab's gateway lines (`make lab`) and `make lab-deploy`'s gateway address and load report."""
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lab import site
from lab import state as st

REPO = Path(__file__).resolve().parents[3]


def _host(addresses):
    return {"ok": 1, "changed": 0, "failed": 0, "skipped": 0, "unreachable": 0, "topology": None,
            "parts": {}, "changed_tasks": [], "failures": [], "instances": [], "addresses": addresses,
            "reboot_required": False}


def test_summary_ends_with_endpoints_then_key_file_then_gateway():
    report = {"hosts": {
        "l-node1": _host(["endpoint: http://10.0.0.11:8000/v1 model: m",
                          "api-key-file: /run/inferfleet-lab/l/api-key",
                          "gateway: http://10.0.0.11:8080/v1 model: m"]),
        "l-node2": _host(["endpoint: http://10.0.0.12:8000/v1 model: m"]),
    }}
    lines = site.format_summary("l", report, 0).splitlines()
    assert lines[-4:] == ["endpoint: http://10.0.0.11:8000/v1 model: m",
                          "endpoint: http://10.0.0.12:8000/v1 model: m",
                          "api-key-file: /run/inferfleet-lab/l/api-key",
                          "gateway: http://10.0.0.11:8080/v1 model: m"]


def test_gateway_url_is_the_first_gateway_host(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "RUN_DIR", tmp_path)
    inv = tmp_path / "l" / "inventory.yml"
    inv.parent.mkdir()
    inv.write_text("""
all:
  children:
    lab_nodes:
      hosts:
        l-node1: {ansible_host: 10.213.9.11}
        l-node2: {ansible_host: 10.213.9.12}
    gateways:
      hosts:
        l-node2: {}
""")
    monkeypatch.setattr(st, "inventory_path", lambda name, run_dir=tmp_path: tmp_path / name / "inventory.yml")
    assert site.gateway_url("l") == "http://10.213.9.12:8080/v1"
    inv.write_text("all:\n  children:\n    lab_nodes:\n      hosts:\n        l-node1: {ansible_host: 10.0.0.1}\n")
    assert site.gateway_url("l") is None


class _Chat(BaseHTTPRequestHandler):
    fail_every = 0
    count = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).count += 1
        ok = self.headers.get("Authorization") == "Bearer k" and not (
            self.fail_every and self.count % self.fail_every == 0)
        has_image = isinstance(body["messages"][0]["content"], list)
        data = json.dumps({"choices": [{"message": {"content": "x"}}], "image": has_image} if ok
                          else {"error": "no"}).encode()
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _load(tmp_path, fail_every):
    handler = type("H", (_Chat,), {"fail_every": fail_every, "count": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "key").write_text("k\n")
    try:
        proc = subprocess.run([sys.executable, str(REPO / "bench" / "gateway_load.py"),
                               "--url", f"http://127.0.0.1:{server.server_port}/v1", "--model", "m",
                               "--key-file", str(tmp_path / "key"), "--duration", "1.5",
                               "--report", str(tmp_path / "r.json")],
                              capture_output=True, text=True, timeout=60, check=False)
    finally:
        server.shutdown()
    return proc.returncode, json.loads((tmp_path / "r.json").read_text())


def test_load_loop_counts_image_and_text_requests(tmp_path):
    rc, report = _load(tmp_path, 0)
    assert rc == 0
    assert report["failures"] == 0
    assert report["requests"] > 4
    assert 0 < report["image_requests"] < report["requests"]
    assert report["longest_stall_s"] < 1.5


def test_load_loop_reports_failures_and_exits_non_zero(tmp_path):
    rc, report = _load(tmp_path, 3)
    assert rc == 1
    assert report["failures"] > 0
    assert report["errors"][0]["error"].startswith("HTTP 503")
