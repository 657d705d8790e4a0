"""One download per fleet: vllm_service's seeder and fan-out, two hosts, against a hub stand-in.

The role's own tasks (artefacts.yml: the revision resolved once; model.yml and
fanout.yml: the download, the seeder's server, the fetches, every checksum) run
in ansible-playbook for two inventory hosts on the local connection, each with
its own model volume and digest cache.  What is not here is stood in for, by
named stand-ins under tests/standins: the hub (hf_hub: its revision API and its
file downloads, every request counted), the ``hf download`` command (hf_cli) and
``systemd-run``/``systemctl`` (systemd: PID 1 here is not systemd).  The seeder's
server is the real one the role starts (``python -m http.server``), fetched
from by the real ``get_url``.
"""
import hashlib
import json
import os
import socket
import sys

import pytest

from helpers import ROOT, VENV_BIN, run_playbook

sys.path.insert(0, str(ROOT / "tests"))
from standins.hf_hub import StandinHub  # noqa: E402

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
REPO_ID = "Qwen/Qwen3-VL-Tiny-Standin"
DIR_NAME = "Qwen--Qwen3-VL-Tiny-Standin"
STANDINS = ROOT / "tests" / "standins"
SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
FILES = ["config.json", "model.safetensors.index.json", "tokenizer/tokenizer.json"] + SHARDS
HOSTS = ["node1", "node2"]

PLAY = """
- hosts: all
  gather_facts: false
  serial: "{{ test_serial | default('100%') }}"
  tasks:
    - name: The role's artefacts (the revision, resolved once for the play)
      ansible.builtin.include_role:
        name: inferfleet.gpu.vllm_service
        tasks_from: artefacts.yml
    - name: The role's model placement (download, seeder, fan-out, checksums)
      ansible.builtin.include_role:
        name: inferfleet.gpu.vllm_service
        tasks_from: model.yml
    - name: Hand the result to the test
      ansible.builtin.copy:
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        content: "{{ {'model_dir': __vllm_service_model_dir, 'model': __vllm_service_register_model,
                      'fanout': __vllm_service_fanout | default(none)} | to_json }}"
        mode: "0644"
"""


def make_model(path):
    (path / "tokenizer").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "qwen3_vl_moe"}))
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": SHARDS[0], "b": SHARDS[1]}}))
    (path / "tokenizer" / "tokenizer.json").write_text(json.dumps({"version": "1.0"}))
    for i, name in enumerate(SHARDS):
        (path / name).write_bytes(bytes(range(256)) * 512 + bytes([i]) * 4096)
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sha256s(directory):
    return {rel: hashlib.sha256((directory / rel).read_bytes()).hexdigest() for rel in FILES}


class Fleet(object):
    """Two hosts on the local connection, each with its own model volume, and the stand-ins' state."""

    def __init__(self, tmp_path, hub_url):
        self.tmp = tmp_path
        self.port = free_port()
        self.state = tmp_path / "systemd"
        self.state.mkdir()
        venv = tmp_path / "venv" / "bin"
        venv.mkdir(parents=True)
        (venv / "python").symlink_to(sys.executable)
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for directory, name, script in ((venv, "hf", STANDINS / "hf_cli" / "hf.py"),
                                        (self.bin, "systemd-run", STANDINS / "systemd" / "systemd_run.py"),
                                        (self.bin, "systemctl", STANDINS / "systemd" / "systemctl.py")):
            (directory / name).write_text("#!/bin/sh\nexec '%s' '%s' \"$@\"\n" % (sys.executable, script))
            (directory / name).chmod(0o755)
        self.out = tmp_path / "out"
        self.out.mkdir()
        hosts = {}
        for host in HOSTS:
            hosts[host] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                           "ansible_host": "127.0.0.1",
                           "vllm_service_model_volume": str(tmp_path / host / "models"),
                           "vllm_service_model_hash_cache": str(tmp_path / host / "model-hashes.json")}
        self.inventory = tmp_path / "inventory.json"
        self.inventory.write_text(json.dumps({"all": {"hosts": hosts, "vars": {
            "vllm_service_venv": str(tmp_path / "venv"), "vllm_service_model": REPO_ID,
            "vllm_service_model_source": "hub", "vllm_service_model_hub_url": hub_url,
            "vllm_service_model_fanout_port": self.port,
            # no rollback record of this machine is read
            "vllm_service_unit_prefix": "fo-test-%d" % os.getpid(),
            "out_dir": str(self.out)}}}))
        self.play = tmp_path / "play.yml"
        self.play.write_text(PLAY)

    def run(self, **extra):
        for result in self.out.glob("*.json"):
            result.unlink()
        extra_vars = None
        if extra:
            extra_vars = self.tmp / "extra.json"
            extra_vars.write_text(json.dumps(extra))
        path = "%s:%s:%s" % (self.bin, VENV_BIN, os.environ.get("PATH", ""))
        return run_playbook(self.play, inventory=self.inventory, extra_vars=extra_vars, timeout=300,
                            env={"PATH": path, "INFERFLEET_STANDIN_SYSTEMD": str(self.state)})

    def revision(self, host):
        return self.tmp / host / "models" / DIR_NAME / COMMIT

    def result(self, host):
        path = self.out / ("%s.json" % host)
        return json.loads(path.read_text()) if path.exists() else None

    def servers_started(self):
        log = self.state / "systemd-run.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def stops(self):
        log = self.state / "systemctl.log"
        return log.read_text().splitlines() if log.exists() else []

    def serving(self):
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0


def file_downloads(hub):
    return sorted(r["path"].split("/resolve/%s/" % COMMIT, 1)[1] for r in hub.requests if "/resolve/" in r["path"])


@pytest.fixture()
def source(tmp_path):
    return make_model(tmp_path / "hub-files")


@pytest.fixture()
def hub(source):
    with StandinHub(REPO_ID, str(source), {"main": COMMIT}) as standin:
        yield standin


def test_hub_once_then_from_the_seeder(tmp_path, hub, source):
    fleet = Fleet(tmp_path, hub.url)
    proc = fleet.run()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every file came from the hub exactly once (the seeder's download), the revision was resolved once.
    assert file_downloads(hub) == sorted(FILES)
    assert len([r for r in hub.requests if "blobs=true" in r["query"]]) == 1
    seeder, peer = fleet.result("node1"), fleet.result("node2")
    assert seeder["fanout"]["seeder"] == "node1" and seeder["fanout"]["peers"] == ["node2"]
    assert seeder["model"]["complete"] and peer["model"]["complete"]
    # The second host's files are the seeder's, byte for byte, and the hub's.
    assert sha256s(fleet.revision("node2")) == sha256s(fleet.revision("node1")) == sha256s(source)
    assert (fleet.revision("node2") / ".inferfleet-manifest.json").exists()
    # One transient server, on the seeder's revision directory and address only, stopped at the end.
    (server,) = fleet.servers_started()
    assert server["unit"] == "inferfleet-model-fanout.service"
    assert server["command"][1:] == ["-m", "http.server", "--bind", "127.0.0.1", "--directory",
                                     str(fleet.revision("node1")), str(fleet.port)]
    assert "DynamicUser=yes" in server["properties"] and "ProtectSystem=strict" in server["properties"]
    assert fleet.stops()[-1] == "stop inferfleet-model-fanout.service"
    assert not (fleet.state / "inferfleet-model-fanout.service.pid").exists()
    assert not fleet.serving()


def test_hosts_that_have_it_fetch_nothing_and_seed(tmp_path, hub, source):
    fleet = Fleet(tmp_path, hub.url)
    assert fleet.run().returncode == 0
    hub.requests.clear()
    # Both have it: nothing is fetched, no server starts.
    proc = fleet.run()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert file_downloads(hub) == []
    assert len(fleet.servers_started()) == 1
    assert fleet.result("node1")["fanout"]["seeder"] is None
    # node1 loses its copy: node2, which has it verified, seeds; the hub is not asked for a file.
    for rel in FILES:
        (fleet.revision("node1") / rel).unlink()
    proc = fleet.run()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert file_downloads(hub) == []
    assert fleet.result("node1")["fanout"] == dict(fleet.result("node1")["fanout"], seeder="node2", peers=["node1"])
    assert fleet.servers_started()[-1]["command"][-2] == str(fleet.revision("node2"))
    assert sha256s(fleet.revision("node1")) == sha256s(source)
    assert not fleet.serving()


def test_a_later_batch_fetches_from_a_host_of_an_earlier_one(tmp_path, hub, source):
    """serial: 1 (deploy.yml's default): node1 downloads alone, node2 fetches from it in the next batch."""
    fleet = Fleet(tmp_path, hub.url)
    proc = fleet.run(test_serial=1)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert file_downloads(hub) == sorted(FILES)
    assert fleet.result("node1")["fanout"]["seeder"] is None
    fanout = fleet.result("node2")["fanout"]
    assert (fanout["seeder"], fanout["peers"], fanout["driver"]) == ("node1", ["node2"], "node2")
    assert sha256s(fleet.revision("node2")) == sha256s(source)
    (server,) = fleet.servers_started()
    assert server["command"][-2] == str(fleet.revision("node1"))
    assert not fleet.serving()


def test_fanout_disabled_every_host_downloads(tmp_path, hub):
    fleet = Fleet(tmp_path, hub.url)
    proc = fleet.run(vllm_service_model_fanout_enabled=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert file_downloads(hub) == sorted(FILES * 2)
    assert fleet.servers_started() == []


def test_a_failed_seeder_fails_clearly_and_nobody_fetches(tmp_path, source):
    # The hub hands the seeder a shard with one byte flipped (same size).
    with StandinHub(REPO_ID, str(source), {"main": COMMIT}, corrupt=[SHARDS[1]]) as hub:
        fleet = Fleet(tmp_path, hub.url)
        proc = fleet.run()
        assert proc.returncode != 0
        assert file_downloads(hub) == sorted(FILES)
    out = proc.stdout
    assert "node1, the seeder of %s at commit %s for node2" % (REPO_ID, COMMIT) in out, out
    assert "%s differs from its expected sha256" % SHARDS[1] in out
    assert "node1, the seeder of %s at commit %s, failed" % (REPO_ID, COMMIT) in out
    assert "node2 fetched nothing from it" in out
    assert fleet.servers_started() == []
    assert not any((fleet.revision("node2") / rel).exists() for rel in FILES)
