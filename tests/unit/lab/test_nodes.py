"""Pure parts of node handling: binds, sizes, the nspawn command, mounts, cgroups, limits,
and the demotion of a node's real-time threads."""
import os
import signal
import subprocess
import sys

import pytest

from lab import mounts, site, state as st
from lab.nspawn import limits, nodes


@pytest.mark.parametrize("spec,want", [
    ("/srv/wheels:/opt/wheels", {"src": "/srv/wheels", "dst": "/opt/wheels", "ro": False}),
    ("/srv/models:/models:ro", {"src": "/srv/models", "dst": "/models", "ro": True}),
    ("/srv/x/:/x:rw", {"src": "/srv/x", "dst": "/x", "ro": False}),
    ("/srv/same", {"src": "/srv/same", "dst": "/srv/same", "ro": False}),
])
def test_parse_bind(spec, want):
    assert nodes.parse_bind(spec) == want


@pytest.mark.parametrize("spec", ["", "rel:/x", "/a:rel", "/a:/b:/c", "/a::ro"])
def test_parse_bind_rejects(spec):
    with pytest.raises(ValueError, match="is not allowed"):
        nodes.parse_bind(spec)


@pytest.mark.parametrize("dst", ["/proc", "/proc/sys", "/sys/block", "/dev/loop0", "/"])
def test_kernel_paths_are_never_bind_targets(dst):
    with pytest.raises(ValueError, match="not allowed"):
        nodes.check_bind({"src": "/tmp", "dst": dst, "ro": False})


@pytest.mark.parametrize("text,size", [("2G", 2 << 30), ("512M", 512 << 20), ("1GiB", 1 << 30),
                                       ("1.5G", 3 << 29), (str(400 << 20), 400 << 20)])
def test_parse_size(text, size):
    assert nodes.parse_size(text) == size


@pytest.mark.parametrize("text,why", [("big", "use a size"), ("100M", "too small"), ("", "use a size")])
def test_parse_size_rejects(text, why):
    with pytest.raises(ValueError, match=why):
        nodes.parse_size(text)


def test_nspawn_command(tmp_path):
    binds = [{"src": "/w", "dst": "/opt/w", "ro": True}, {"src": "/m", "dst": "/m", "ro": False}]
    doc = st.new_state("lab", 3, 2, "/r", "/k", binds=binds, data_dir=tmp_path)
    node = doc["nodes"][1]
    node["loop"] = "/dev/loop9"
    cmd = nodes.nspawn_command(doc, node)
    assert cmd[:2] == ["systemd-nspawn", "--boot"]
    assert f"--directory={tmp_path}/lab/node2/root" in cmd
    assert "--machine=lab-node2" in cmd and "--hostname=lab-node2" in cmd
    assert "--network-namespace-path=/run/netns/inferlab-lab-node2" in cmd
    assert "--bind-ro=/w:/opt/w" in cmd and "--bind=/m:/m" in cmd and "--bind=/dev/loop9" in cmd
    assert "--register=no" in cmd
    assert not any(a.startswith(("--capability", "--system-call-filter")) for a in cmd)


MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
100 22 0:50 / /var/lib/inferfleet-lab/lab/node1/root rw shared:2 - overlay overlay rw
101 22 0:51 / /var/lib/inferfleet-lab/lab/node10/root rw shared:3 - overlay overlay rw
102 100 0:52 / /var/lib/inferfleet-lab/lab/node1/root/mnt rw shared:4 - xfs /dev/loop0 rw
103 22 0:53 / /var/lib/inferfleet-lab/lab2/node1/root rw shared:5 - overlay overlay rw
"""


def test_mounts_under_deepest_first_and_no_prefix_confusion(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text(MOUNTINFO)
    got = mounts.mounts_under("/var/lib/inferfleet-lab/lab/node1", str(mi))
    assert got == ["/var/lib/inferfleet-lab/lab/node1/root/mnt", "/var/lib/inferfleet-lab/lab/node1/root"]
    assert len(mounts.mounts_under("/var/lib/inferfleet-lab/lab", str(mi))) == 3
    assert mounts.is_mountpoint("/var/lib/inferfleet-lab/lab2/node1/root", str(mi))
    assert not mounts.is_mountpoint("/var/lib/inferfleet-lab/lab2", str(mi))


def test_cgroup_pids_and_removal_on_a_tree(tmp_path):
    for h in ("systemd", "unified"):
        sub = tmp_path / h / "inferlab" / "lab-node1" / "init.scope"
        sub.mkdir(parents=True)
        (sub / "cgroup.procs").write_text("11\n12\n")
        (sub.parent / "cgroup.procs").write_text("10\n")
    assert nodes.cgroup_pids("inferlab/lab-node1", tmp_path) == {10, 11, 12}
    assert nodes.cgroup_pids("inferlab/lab-node2", tmp_path) == set()
    # real cgroup dirs hold only virtual files; here rmdir fails while files exist
    for f in tmp_path.rglob("cgroup.procs"):
        f.unlink()
    nodes.remove_cgroup("inferlab/lab-node1", tmp_path)
    assert not (tmp_path / "systemd" / "inferlab").exists()
    assert (tmp_path / "systemd").is_dir()


def test_inotify_limit_raised_once_and_restored_by_last_lab(tmp_path):
    sysctl = tmp_path / "max_user_instances"
    sysctl.write_text("128\n")
    rec = limits.raise_limit(run_dir=tmp_path, sysctl=sysctl, wanted=8192)
    assert rec == {"original": 128, "set": 8192} and sysctl.read_text().strip() == "8192"
    # a second lab does not overwrite the recorded original
    assert limits.raise_limit(run_dir=tmp_path, sysctl=sysctl)["original"] == 128
    (tmp_path / "lab1").mkdir()
    (tmp_path / "lab1" / "state.json").write_text("{}")
    assert limits.restore_if_last(run_dir=tmp_path, sysctl=sysctl) is None
    assert sysctl.read_text().strip() == "8192"
    (tmp_path / "lab1" / "state.json").unlink()
    assert "restored to 128" in limits.restore_if_last(run_dir=tmp_path, sysctl=sysctl)
    assert sysctl.read_text().strip() == "128"
    assert not limits.record_path(tmp_path).exists()


def test_inotify_limit_left_alone_when_someone_else_changed_it(tmp_path):
    sysctl = tmp_path / "max_user_instances"
    sysctl.write_text("128\n")
    limits.raise_limit(run_dir=tmp_path, sysctl=sysctl, wanted=1024)
    sysctl.write_text("4096\n")
    assert "someone else" in limits.restore_if_last(run_dir=tmp_path, sysctl=sysctl)
    assert sysctl.read_text().strip() == "4096"


def test_limit_never_lowered(tmp_path):
    sysctl = tmp_path / "max_user_instances"
    sysctl.write_text("100000\n")
    assert limits.raise_limit(run_dir=tmp_path, sysctl=sysctl, wanted=8192)["set"] == 100000
    assert sysctl.read_text().strip() == "100000"


def _host(**kw):
    h = {"ok": 3, "changed": 1, "failed": 0, "skipped": 0, "unreachable": 0, "topology": None,
         "parts": {}, "changed_tasks": [], "failures": [], "instances": [], "addresses": [],
         "reboot_required": False}
    h.update(kw)
    return h


def test_site_summary_is_the_shipped_table():
    report = {"check_mode": False, "hosts": {
        "l-node1": _host(parts={"host_tuning": {"sysctl": ["vm.swappiness"]}},
                         topology={"cpus": 2, "cpus_online": "0-1", "numa_nodes": 1, "gpus": 0,
                                   "nvswitch_count": 0, "block_devices": ["loop3"]})}}
    text = site.format_summary("l", report, 0)
    assert text.splitlines()[0] == "== lab l: playbooks/site.yml exit 0 =="
    assert "l-node1  [2 CPUs, 1 NUMA, 0 GPUs]  ok=3 changed=1 failed=0" in text
    assert "  host_tuning:   sysctl (vm.swappiness)" in text
    assert "said:" not in text
    assert "(no host ran a task)" in site.format_summary("l", {}, 2)
    report["hosts"]["l-node10"] = report["hosts"]["l-node2"] = report["hosts"]["l-node1"]
    text = site.format_summary("l", report, 0)
    assert text.index("l-node2  [") < text.index("l-node10  [")


def test_site_env_enables_the_shipped_callback(tmp_path):
    env = site.with_fleet_report(site.ansible_env(base={"PATH": "/usr/bin", "ANSIBLE_CALLBACKS_ENABLED": "timer"}),
                                 str(tmp_path / "s.json"))
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "timer,inferfleet.gpu.fleet_report"
    assert env["INFERFLEET_FLEET_REPORT_JSON"] == str(tmp_path / "s.json")
    assert env["INFERFLEET_FLEET_REPORT_DISPLAY"] == "false"
    assert env["ANSIBLE_CONFIG"].endswith("ansible.cfg")
    assert env["ANSIBLE_COLLECTIONS_PATH"].endswith(".build")
    assert env["PATH"].split(":")[0].endswith(".venv/bin")
    assert "ANSIBLE_CALLBACK_PLUGINS" not in env


def test_device_rules_allow_only_pseudo_devices_and_the_own_disk(tmp_path):
    rules = nodes.device_rules("/dev/loop7", rdev=(7, 7))
    assert rules[-1] == "b 7:7 rwm"
    assert not any(r.startswith("a") or r in ("b *:* rwm", "c *:* rwm") for r in rules)
    assert "b 7:8 rwm" not in rules
    assert nodes.device_rules(None) == list(nodes.DEVICE_ALLOW)
    (tmp_path / "devices").mkdir()
    nodes.limit_devices("inferlab/l-node1", rules, root=tmp_path)
    d = tmp_path / "devices" / "inferlab" / "l-node1"
    # on a real cgroup each write is one rule; here the last write wins, the deny comes first
    assert (d / "devices.deny").read_text() == "a"
    assert (d / "devices.allow").read_text() == "b 7:7 rwm"


def test_device_limit_skipped_without_a_devices_hierarchy(tmp_path):
    nodes.limit_devices("inferlab/l-node1", ["c 1:3 rwm"], root=tmp_path)
    assert not (tmp_path / "devices").exists()


def test_pure_cgroup_v2_host_puts_nodes_under_its_root(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "systemd").mkdir()  # ignored on a pure v2 host
    assert nodes.hierarchy_roots(tmp_path) == [tmp_path]
    assert nodes.cgroup_dirs("inferlab/l-node1", tmp_path) == [tmp_path / "inferlab" / "l-node1"]
    (tmp_path / "inferlab" / "l-node1" / "payload").mkdir(parents=True)
    nodes.remove_cgroup("inferlab/l-node1", tmp_path)
    assert not (tmp_path / "inferlab").exists()


def test_hybrid_host_uses_the_named_hierarchies(tmp_path):
    for h in ("systemd", "unified", "devices", "memory"):
        (tmp_path / h).mkdir()
    assert nodes.hierarchy_roots(tmp_path) == [tmp_path / "systemd", tmp_path / "unified", tmp_path / "devices"]


@pytest.mark.parametrize("machine,owned", [("a-node1", True), ("a-node12", True), ("a-nodex-node1", False),
                                           ("a-node1x", False), ("ab-node1", False), ("a-node", False)])
def test_node_ownership_by_name(machine, owned):
    from lab.nspawn import commands
    assert commands.is_node_of("a", machine) is owned


def test_site_summary_ends_with_the_addresses_in_order():
    report = {"hosts": {
        "l-node2": _host(addresses=["endpoint: http://10.0.0.12:8000/v1 model: m"]),
        "l-node1": _host(addresses=["gateway: http://10.0.0.11:30000/v1 model: m",
                                    "endpoint: http://10.0.0.11:8000/v1 model: m",
                                    "prometheus: http://10.0.0.11:9090"])}}
    lines = site.format_summary("l", report, 0).splitlines()
    assert lines[-4:] == ["prometheus: http://10.0.0.11:9090",
                          "endpoint: http://10.0.0.11:8000/v1 model: m",
                          "endpoint: http://10.0.0.12:8000/v1 model: m",
                          "gateway: http://10.0.0.11:30000/v1 model: m"]


def _task_stat(tid: int, comm: str, policy: int, rtprio: int) -> str:
    # fields 3..52 of proc_pid_stat(5); field 40 is rt_priority, field 41 policy
    rest = ["S"] + ["0"] * 49
    rest[40 - 3], rest[41 - 3] = str(rtprio), str(policy)
    return f"{tid} ({comm}) " + " ".join(rest) + "\n"


def test_realtime_threads_of_a_fake_proc_are_demoted(tmp_path):
    threads = {100: [(100, "python3", 0, 0), (101, "vllm worker) x", 1, 50), (102, "rr", 2, 10)],
               200: [(200, "sshd", 0, 0)],
               300: [(301, "dl", 6, 0)]}  # 300 itself already exited: only its thread is left
    for pid, tasks in threads.items():
        for tid, comm, policy, rtprio in tasks:
            d = tmp_path / str(pid) / "task" / str(tid)
            d.mkdir(parents=True)
            (d / "stat").write_text(_task_stat(tid, comm, policy, rtprio))
    assert nodes.realtime_threads({100, 200, 300, 999}, tmp_path) == {101: 1, 102: 2, 301: 6}
    calls = []
    assert nodes.demote_realtime({100, 200, 300, 999}, tmp_path, set_other=calls.append) == [101, 102, 301]
    assert calls == [101, 102, 301]
    assert nodes.demote_realtime({200}, tmp_path, set_other=calls.append) == []


def test_a_thread_gone_before_its_demotion_is_skipped(tmp_path):
    d = tmp_path / "5" / "task" / "5"
    d.mkdir(parents=True)
    (d / "stat").write_text(_task_stat(5, "x", 1, 1))

    def gone(tid):
        raise ProcessLookupError(tid)
    assert nodes.demote_realtime({5}, tmp_path, set_other=gone) == []


@pytest.fixture
def fifo_child():
    """A sleeping child at the lowest SCHED_FIFO priority (root only); always demoted and killed."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        try:
            os.sched_setscheduler(child.pid, os.SCHED_FIFO, os.sched_param(1))
        except PermissionError:
            pytest.skip("setting SCHED_FIFO needs CAP_SYS_NICE")
        yield child
    finally:
        if child.poll() is None:
            try:
                os.sched_setscheduler(child.pid, os.SCHED_OTHER, os.sched_param(0))
            except OSError:
                pass
            child.kill()
        child.wait()


def test_a_real_fifo_thread_is_demoted(fifo_child):
    """The reader sees the FIFO child, the demotion puts it back on SCHED_OTHER."""
    pid = fifo_child.pid
    assert nodes.realtime_threads({pid}) == {pid: os.SCHED_FIFO}
    assert nodes.demote_realtime({pid}) == [pid]
    assert os.sched_getscheduler(pid) == os.SCHED_OTHER
    assert nodes.realtime_threads({pid}) == {}


def test_stop_demotes_a_fifo_process_of_the_node_before_killing_it(fifo_child, monkeypatch):
    """``stop`` on a node whose cgroup holds a real FIFO child: when the SIGKILL comes the
    child is already on SCHED_OTHER."""
    child = fifo_child
    killed = []
    real_kill = os.kill

    def kill(pid, sig):
        killed.append((pid, sig, os.sched_getscheduler(pid)))
        real_kill(pid, sig)
    monkeypatch.setattr(nodes, "nspawn_pids", lambda machine: [])
    monkeypatch.setattr(nodes, "cgroup_pids", lambda cgroup, root=None: {child.pid} if child.poll() is None else set())
    monkeypatch.setattr(nodes, "remove_cgroup", lambda cgroup, root=None: None)
    monkeypatch.setattr(nodes.os, "kill", kill)
    monkeypatch.setattr(nodes, "_reap", lambda pid: child.poll())
    node = {"hostname": "md-unit-test-node1", "cgroup": "inferlab/md-unit-test-node1", "pid": None}
    assert nodes.stop(node, timeout=0.3) == {child.pid}
    assert killed and killed[0][:2] == (child.pid, signal.SIGKILL)
    assert {policy for _pid, _sig, policy in killed} == {os.SCHED_OTHER}
    assert child.poll() is not None
