# -*- coding: utf-8 -*-
"""The gateway role's HAProxy backend (gateway_backend: haproxy), rendered by Ansible from an inventory of
serving hosts, checked by a real ``haproxy -c`` and driven through its runtime API by the role's own
drain.yml / undrain.yml.

HAProxy is Debian's package unpacked into a temporary directory (``dpkg-deb -x``; nothing installed, no
service): see ``helpers.haproxy_binary``. It runs as this user: for ``haproxy -c`` the rendered
``user haproxy`` / ``group haproxy`` (the package's account, absent here) become ``nobody`` / ``nogroup``;
for the running instance the global section is replaced (no chroot, the socket in the test's directory).
"""

import json
import os
import re
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from helpers import run_playbook, write_play, write_vars

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / "roles" / "gateway"


def endpoints(addr, ports):
    return [{"unit": f"inferfleet-vllm-{i}.service", "index": i, "address": addr, "port": p,
             "url": f"http://{addr}:{p}/v1", "model": "m"} for i, p in enumerate(ports)]


INVENTORY = {"all": {"hosts": {
    "gpu2": {"vllm_service_endpoints": endpoints("10.0.0.12", [8000])},
    "gpu1": {"vllm_service_endpoints": endpoints("10.0.0.11", [8000, 8001])},
    "gw": {},
}}}
SENTINEL = "# the configuration before this run\n"


def _playbook(tmp_path, inventory, tasks, overrides):
    """The role's defaults and vars, then ``overrides``, for ``tasks`` on host gw (local connection)."""
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(inventory))
    play = write_play(tmp_path, tasks, hosts="gw", vars_files=[
        ROLE / "defaults" / "main.yml", ROLE / "vars" / "main.yml", write_vars(tmp_path, overrides)])
    return run_playbook(play, inventory=tmp_path / "inv.yml")


def render(tmp_path, **overrides):
    """Validate, then render haproxy.cfg and the drop-in over files that hold a sentinel; return
    (rc, config text, drop-in text, output)."""
    cfg, dropin = tmp_path / "haproxy.cfg", tmp_path / "inferfleet.conf"
    cfg.write_text(SENTINEL)
    dropin.write_text(SENTINEL)
    tasks = """
    - name: Validate
      ansible.builtin.import_tasks: %(role)s/tasks/validate.yml
    - name: Render the configuration
      ansible.builtin.template:
        src: %(role)s/templates/haproxy.cfg.j2
        dest: "%(cfg)s"
        mode: "0644"
    - name: Render the drop-in
      ansible.builtin.template:
        src: %(role)s/templates/haproxy-dropin.conf.j2
        dest: "%(dropin)s"
        mode: "0644"
""" % {"role": ROLE, "cfg": cfg, "dropin": dropin}
    proc = _playbook(tmp_path, INVENTORY, tasks, dict({"gateway_backend": "haproxy"}, **overrides))
    return proc.returncode, cfg.read_text(), dropin.read_text(), proc.stdout + proc.stderr


def section(cfg, head):
    """The directive lines of one section (comments dropped)."""
    out, inside = [], False
    for line in cfg.splitlines():
        if line and not line.startswith((" ", "#")):
            inside = line.strip() == head
            continue
        if inside and line.strip() and not line.strip().startswith("#"):
            out.append(line.strip())
    return out


def haproxy_check(haproxy, tmp_path, cfg):
    exe, env = haproxy
    checked = tmp_path / "checked.cfg"
    checked.write_text(re.sub(r"(?m)^    group haproxy$", "    group nogroup",
                              re.sub(r"(?m)^    user haproxy$", "    user nobody", cfg)))
    return subprocess.run([exe, "-c", "-f", str(checked)], env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("policy, balance", [
    ("round_robin", ["balance roundrobin"]),
    ("power_of_two", ["balance leastconn"]),
    ("consistent_hash", ["balance hdr(X-Session-ID)", "hash-type consistent"]),
])
def test_each_policy_renders_a_valid_config(haproxy, tmp_path, policy, balance):
    rc, cfg, _dropin, out = render(tmp_path, gateway_policy=policy)
    assert rc == 0, out
    backend = section(cfg, "backend vllm")
    assert [d for d in backend if d.startswith(("balance", "hash-type"))] == balance
    assert "option httpchk GET /health" in backend
    # every instance of every serving host, named ADDR:PORT (drain.yml uses the same name)
    assert [d for d in backend if d.startswith("server ")] == [
        "server 10.0.0.11:8000 10.0.0.11:8000", "server 10.0.0.11:8001 10.0.0.11:8001",
        "server 10.0.0.12:8000 10.0.0.12:8000"]
    check = haproxy_check(haproxy, tmp_path, cfg)
    assert check.returncode == 0, check.stdout + check.stderr


def test_streaming_metrics_and_socket(tmp_path):
    rc, cfg, _dropin, out = render(tmp_path, gateway_request_timeout=900, gateway_metrics_port=29123)
    assert rc == 0, out
    defaults = section(cfg, "defaults")
    assert "timeout server 900s" in defaults and "timeout client 900s" in defaults
    assert "option http-no-delay" in defaults
    # nothing that buffers a response or a request body
    assert not re.search(r"(?m)^\s*(compression|filter|option http-buffer-request|cache)\b", cfg)
    assert section(cfg, "frontend gateway")[0] == "bind 0.0.0.0:8080"
    metrics = section(cfg, "frontend metrics")
    assert metrics[0] == "bind 127.0.0.1:29123"
    assert "http-request use-service prometheus-exporter if { path /metrics }" in metrics
    assert "stats socket /run/haproxy/admin.sock mode 660 level admin" in section(cfg, "global")
    assert {"user haproxy", "group haproxy", "chroot /var/lib/haproxy"} <= set(section(cfg, "global"))


def test_no_metrics_frontend_when_disabled(haproxy, tmp_path):
    rc, cfg, _dropin, out = render(tmp_path, gateway_metrics_enabled=False)
    assert rc == 0, out
    assert "frontend metrics" not in cfg and "prometheus-exporter" not in cfg
    assert haproxy_check(haproxy, tmp_path, cfg).returncode == 0


def test_dropin_hardens_and_moves_runtime_files(tmp_path):
    rc, _cfg, dropin, out = render(tmp_path)
    assert rc == 0, out
    lines = [ln for ln in dropin.splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "[Service]"
    for want in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateDevices=yes", "RuntimeDirectory=haproxy",
                 "BindReadOnlyPaths=", "LimitNOFILE=65536",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SYS_CHROOT CAP_SETUID CAP_SETGID CAP_KILL",
                 'Environment="PIDFILE=/run/haproxy/haproxy.pid" "EXTRAOPTS=-S /run/haproxy/master.sock"'):
        assert want in lines, want
    rc, _cfg, dropin, out = render(tmp_path, gateway_hardening_enabled=False)
    assert rc == 0, out
    assert "ProtectSystem=strict" not in dropin.splitlines() and "RuntimeDirectory=haproxy" in dropin.splitlines()


@pytest.mark.parametrize("overrides, named", [
    ({"gateway_policy": "cache_aware"}, ["gateway_backend=haproxy", "gateway_policy=cache_aware",
                                         "round_robin, power_of_two, consistent_hash", "vllm_router"]),
    ({"gateway_backend": "nginx"}, ["gateway_backend=nginx", "allowed: vllm_router, haproxy"]),
    ({"gateway_haproxy_deb_dir": "debs"}, ["gateway_haproxy_deb_dir=debs"]),
    ({"gateway_haproxy_stats_socket": "admin.sock"}, ["gateway_haproxy_stats_socket=admin.sock"]),
])
def test_refused_input_changes_nothing(tmp_path, overrides, named):
    rc, cfg, dropin, out = render(tmp_path, **overrides)
    assert rc != 0
    for word in named:
        assert word in out, word
    # the files the role would write are as they were
    assert cfg == SENTINEL and dropin == SENTINEL


def test_cache_aware_stays_allowed_for_the_router(tmp_path):
    rc, _cfg, _dropin, out = render(tmp_path, gateway_backend="vllm_router", gateway_policy="cache_aware")
    assert rc == 0, out


# --- drain.yml / undrain.yml against a running HAProxy ---------------------------------------------

class _Health(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _show_stat(sock):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b"show stat\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    rows = [ln.split(",") for ln in data.decode().splitlines() if ln.startswith("vllm,")]
    return {r[1]: r[17] for r in rows if r[1] not in ("BACKEND", "FRONTEND")}


def test_drain_and_undrain_through_the_runtime_api(haproxy, tmp_path):
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Health) for _n in range(2)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    urls = [f"http://127.0.0.1:{s.server_address[1]}" for s in servers]
    inv = {"all": {"hosts": {"gw": {"ansible_connection": "local"}}}}
    sock = str(tmp_path / "admin.sock")
    # the role's configuration, with a global section for an unprivileged test process
    rc, cfg, _dropin, out = render(tmp_path, gateway_serving_hosts=[], gateway_extra_worker_urls=urls,
                                   gateway_port=18793, gateway_metrics_port=18794, gateway_listen_address="127.0.0.1",
                                   gateway_health_check_interval=1)
    assert rc == 0, out
    run_cfg = re.sub(r"(?s)^.*?\ndefaults\n", "global\n    stats socket %s mode 600 level admin\n\ndefaults\n" % sock, cfg)
    (tmp_path / "run.cfg").write_text(run_cfg)
    exe, env = haproxy
    proc = subprocess.Popen([exe, "-db", "-f", str(tmp_path / "run.cfg")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _n in range(50):
            if os.path.exists(sock) and set(_show_stat(sock).values()) == {"UP"}:
                break
            time.sleep(0.2)
        name = urls[0].split("://")[1]
        assert _show_stat(sock)[name] == "UP"
        common = {"gateway_backend": "haproxy", "gateway_haproxy_stats_socket": sock, "gateway_drain_host": "gw",
                  "gateway_drain_worker_url": urls[0], "gateway_drain_timeout": 10, "gateway_readiness_timeout": 20}
        drain = _playbook(tmp_path, inv, """
    - name: Drain
      ansible.builtin.include_tasks: %s/tasks/drain.yml
    - name: What HAProxy says now
      ansible.builtin.command: cat /dev/null
      changed_when: false
""" % ROLE, common)
        assert drain.returncode == 0, drain.stdout + drain.stderr
        assert _show_stat(sock)[name].startswith("DRAIN")
        assert _show_stat(sock)[urls[1].split("://")[1]] == "UP"
        both = _playbook(tmp_path, inv, """
    - name: Drain
      ansible.builtin.include_tasks: %(role)s/tasks/drain.yml
    - name: Undrain
      ansible.builtin.include_tasks: %(role)s/tasks/undrain.yml
""" % {"role": ROLE}, common)
        assert both.returncode == 0, both.stdout + both.stderr
        assert _show_stat(sock)[name] == "UP"
        # a worker the gateway does not route to is left alone (and not put back)
        other = _playbook(tmp_path, inv, """
    - name: Drain
      ansible.builtin.include_tasks: %(role)s/tasks/drain.yml
    - name: Undrain
      ansible.builtin.include_tasks: %(role)s/tasks/undrain.yml
""" % {"role": ROLE}, dict(common, gateway_drain_worker_url="http://127.0.0.1:1"))
        assert other.returncode == 0, other.stdout + other.stderr
        assert "changed=0" in other.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for s in servers:
            s.shutdown()


class _StandinRouter(BaseHTTPRequestHandler):
    """Stand-in for vllm-router's admin API (tests only): /list_workers, /remove_worker, /add_worker."""

    def log_message(self, *args):
        pass

    def _reply(self, obj):
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._reply({"urls": sorted(self.server.workers)})

    def do_POST(self):
        from urllib.parse import parse_qs, urlparse
        url = parse_qs(urlparse(self.path).query)["url"][0]
        if self.path.startswith("/remove_worker"):
            self.server.workers.discard(url)
        else:
            self.server.workers.add(url)
        self.server.calls.append(self.path.split("?")[0])
        self._reply({})


def test_router_drain_is_remembered_and_undone(tmp_path):
    """With the router backend, undrain puts back what drain took out (the HAProxy tasks, skipped, must
    not hide the drain: a regression that left every worker out of the router after a rolling restart)."""
    router = ThreadingHTTPServer(("127.0.0.1", 0), _StandinRouter)
    router.workers, router.calls = {"http://10.0.0.11:8000", "http://10.0.0.12:8000"}, []
    threading.Thread(target=router.serve_forever, daemon=True).start()
    try:
        inv = {"all": {"hosts": {"gw": {"ansible_connection": "local"}}}}
        proc = _playbook(tmp_path, inv, """
    - name: Drain
      ansible.builtin.include_tasks: %(role)s/tasks/drain.yml
    - name: Out of the router now
      ansible.builtin.uri:
        url: "http://127.0.0.1:%(port)d/list_workers"
      register: listed
      failed_when: gateway_drain_worker_url in listed.json.urls
    - name: Undrain
      ansible.builtin.include_tasks: %(role)s/tasks/undrain.yml
""" % {"role": ROLE, "port": router.server_address[1]},
            {"gateway_backend": "vllm_router", "gateway_port": router.server_address[1], "gateway_drain_host": "gw",
             "gateway_drain_worker_url": "http://10.0.0.11:8000"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert router.calls == ["/remove_worker", "/add_worker"]
        assert router.workers == {"http://10.0.0.11:8000", "http://10.0.0.12:8000"}
    finally:
        router.shutdown()
