"""Bad input to host_tuning fails before anything changes.

Runs ansible-playbook against this machine (connection local) with the role's
files pointed at scratch paths in tmp_path and ``host_tuning_container: true``
(so even a broken validation could not write the running kernel).  Each bad
value must fail with a message naming the variable, the value and what is
allowed, and leave the scratch files, the fstab copy and the runtime values
exactly as they were.  A control run with good values proves the same files
do get written when validation passes (so the test can tell).
"""
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from helpers import ANSIBLE_PLAYBOOK, run_playbook


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="reads /sys and runs blkid as root"),
    pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="no ansible-playbook next to this Python"),
]

PLAYBOOK = """\
- name: host_tuning validation test
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - inferfleet.gpu.host_tuning
  post_tasks:
    - name: Hand the CPU partition to the test
      ansible.builtin.copy:
        content: "{{ host_tuning_cpu_partition | default({}) | to_json }}"
        dest: "{{ playbook_dir }}/partition.json"
        mode: "0644"
"""

RUNTIME_FILES = [
    "/proc/sys/vm/swappiness", "/proc/sys/vm/dirty_ratio", "/proc/sys/vm/max_map_count",
    "/proc/sys/net/core/somaxconn", "/proc/sys/kernel/sched_rt_runtime_us",
    "/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/mm/transparent_hugepage/defrag",
    "/proc/swaps",
]


def first_block_device_with_scheduler():
    for name in sorted(os.listdir("/sys/block")):
        path = Path("/sys/block", name, "queue/scheduler")
        if path.exists() and "[" in path.read_text():
            return name, path.read_text().replace("[", "").replace("]", "").split()
    return None, []


def snapshot(paths):
    out = {}
    for path in paths:
        try:
            out[str(path)] = Path(path).read_text()
        except OSError:
            out[str(path)] = None
    return out


@pytest.fixture()
def scratch(tmp_path):
    fstab = tmp_path / "fstab"
    fstab.write_text("/swapfile none swap sw 0 0\n")
    base = {
        "ansible_python_interpreter": sys.executable,
        "host_tuning_container": True,
        "host_tuning_sysctl_file": str(tmp_path / "sysctl.d/60-inferfleet.conf"),
        "host_tuning_thp_tmpfiles_path": str(tmp_path / "tmpfiles.d/60-inferfleet-thp.conf"),
        "host_tuning_cpufreq_tmpfiles_path": str(tmp_path / "tmpfiles.d/60-inferfleet-cpufreq.conf"),
        "host_tuning_io_scheduler_udev_rule_path": str(tmp_path / "udev/60-inferfleet-io-scheduler.rules"),
        "host_tuning_swap_fstab_path": str(fstab),
        "host_tuning_model_volume_fstab_path": str(fstab),
        "host_tuning_cpu_partition_systemd_dir": str(tmp_path / "systemd"),
        "host_tuning_cpu_partition_irqbalance_path": str(tmp_path / "default/irqbalance"),
    }
    (tmp_path / "default").mkdir()
    (tmp_path / "default/irqbalance").write_text("#IRQBALANCE_ONESHOT=\n#IRQBALANCE_BANNED_CPULIST=\n")
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    written = [base["host_tuning_sysctl_file"], base["host_tuning_thp_tmpfiles_path"],
               base["host_tuning_io_scheduler_udev_rule_path"], str(tmp_path / "systemd")]
    return tmp_path, base, written


def run(tmp_path, extra_vars):
    (tmp_path / "vars.json").write_text(json.dumps(extra_vars))
    return run_playbook(tmp_path / "site.yml", extra_vars=tmp_path / "vars.json", cwd=tmp_path,
                        env={"ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
                             "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote")})


DEV, OFFERED = first_block_device_with_scheduler()
# A multi-queue scheduler this device does not offer (the legacy names are refused earlier, by name).
NOT_OFFERED = next((s for s in ("kyber", "bfq", "mq-deadline", "none") if s not in (OFFERED or [])), None)

BAD = {
    "swappiness_300": (
        {"host_tuning_sysctl": {"vm.swappiness": 300}},
        ["host_tuning_sysctl", "vm.swappiness must be an integer 0..200, got 300"]),
    "rt_unlimited": (
        {"host_tuning_sysctl_extra": {"kernel.sched_rt_runtime_us": -1}},
        ["kernel.sched_rt_runtime_us=-1 is refused", "host_tuning_sysctl_allow_rt_unlimited"]),
    "unknown_thp_mode": (
        {"host_tuning_thp_mode": "sometimes"},
        ["host_tuning_thp_mode", "sometimes", "always, madvise, never"]),
    "scheduler_not_offered": (
        {"host_tuning_io_scheduler_rules": [{"devices": [DEV], "scheduler": NOT_OFFERED}]},
        ["host_tuning_io_scheduler_rules", "does not offer '%s' for %s" % (NOT_OFFERED, DEV),
         "it offers %s" % ", ".join(OFFERED or [])]),
    # no mmc device here: the rule selects nothing, but its scheduler would be written into the udev rule
    "legacy_scheduler_no_device": (
        {"host_tuning_io_scheduler_rules": [{"kinds": ["mmc"], "scheduler": "cfq"}]},
        ["host_tuning_io_scheduler_rules", "'cfq' is not a scheduler of the multi-queue block layer",
         "allowed: none, mq-deadline, bfq, kyber"]),
    "legacy_noop_pattern": (
        {"host_tuning_io_scheduler_rules": [{"pattern": "inferfleet-none*", "scheduler": "noop"}]},
        ["host_tuning_io_scheduler_rules", "'noop' is not a scheduler", "successor is 'none'"]),
    "partition_without_housekeeping": (
        {"host_tuning_cpu_partition_housekeeping_cpus": ""},
        ["host_tuning_cpu_partition_housekeeping_cpus=", "no CPU is left for the system"]),
    "partition_housekeeping_out_of_range": (
        {"host_tuning_cpu_partition_housekeeping_cpus": "0-9999"},
        ["host_tuning_cpu_partition_housekeeping_cpus=0-9999", "host_tuning_cpu_partition_enabled=false"]),
    "partition_slice_inside_system": (
        {"host_tuning_cpu_partition_slice": "system-vllm.slice"},
        ["host_tuning_cpu_partition_slice=system-vllm.slice", "not one of the confined units nor below"]),
    "missing_device": (
        {"host_tuning_model_volume_device": "/dev/inferfleet-no-such-disk"},
        ["host_tuning_model_volume_device: /dev/inferfleet-no-such-disk does not exist"]),
    "nobarrier": (
        {"host_tuning_model_volume_device": "/dev/inferfleet-no-such-disk",
         "host_tuning_model_volume_options": ["noatime", "nobarrier"]},
        ["host_tuning_model_volume_options: nobarrier refused", "removed in Linux 4.19", "Unknown parameter 'nobarrier'"]),
    "root_mount_point": (
        {"host_tuning_model_volume_device": "/dev/inferfleet-no-such-disk", "host_tuning_model_volume_path": "/"},
        ["host_tuning_model_volume_path: / is refused", "not a system path"]),
    "usr_mount_point": (
        {"host_tuning_model_volume_device": "/dev/inferfleet-no-such-disk", "host_tuning_model_volume_path": "/usr/"},
        ["host_tuning_model_volume_path: /usr/ is refused"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_before_anything_changes(scratch, case):
    if case == "scheduler_not_offered" and (DEV is None or NOT_OFFERED is None):
        pytest.skip("no block device with a scheduler here")
    tmp_path, base, written = scratch
    overrides, expected = BAD[case]
    fstab = Path(base["host_tuning_swap_fstab_path"])
    before_fstab = fstab.read_text()
    before_runtime = snapshot(RUNTIME_FILES)
    result = run(tmp_path, dict(base, **overrides))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-3000:]
    for text in expected:
        assert text in output, (text, output[-3000:])
    for path in written:
        assert not os.path.exists(path), "%s was written although the input was bad" % path
    assert fstab.read_text() == before_fstab
    assert snapshot(RUNTIME_FILES) == before_runtime
    assert (tmp_path / "default/irqbalance").read_text() == "#IRQBALANCE_ONESHOT=\n#IRQBALANCE_BANNED_CPULIST=\n"
    # every task that ran before the failure only read
    assert "changed=0" in result.stdout


def test_good_input_writes_the_persisted_files(scratch):
    """Control: the same run with good input writes what the bad runs must not."""
    tmp_path, base, written = scratch
    before_runtime = snapshot(RUNTIME_FILES)
    result = run(tmp_path, base)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    for path in written:
        assert os.path.exists(path), path
    assert "vm.swappiness=1" in Path(base["host_tuning_sysctl_file"]).read_text().splitlines()
    assert Path(base["host_tuning_swap_fstab_path"]).read_text().startswith("# /swapfile none swap sw 0 0")
    # container mode: the running kernel is untouched
    assert snapshot(RUNTIME_FILES) == before_runtime
    # the CPU partition: files only (container), from the same plan as vllm_service
    partition = json.loads((tmp_path / "partition.json").read_text())
    system, instances = partition["system_cpus"], partition["instance_cpus"]
    assert system and instances
    systemd = tmp_path / "systemd"
    for unit, section in (("system.slice", "Slice"), ("user.slice", "Slice"), ("init.scope", "Scope")):
        text = (systemd / (unit + ".d/60-inferfleet-cpu-partition.conf")).read_text()
        assert "[%s]\nAllowedCPUs=%s\n" % (section, system) in text, text
    assert (systemd / "inferfleet.slice").read_text().rstrip().endswith("[Slice]")
    irq_unit = (systemd / "sysinit.target.wants/inferfleet-irq-affinity.service")
    assert irq_unit.is_symlink() and "echo %s > \"$$f\"" % system in irq_unit.read_text()
    assert "IRQBALANCE_BANNED_CPULIST=%s\n" % instances in (tmp_path / "default/irqbalance").read_text()
    # the summary names every persisted file of the partition it wrote (the fleet report's drift items)
    for item in ("persisted:inferfleet.slice", "persisted:system.slice.d", "persisted:user.slice.d",
                 "persisted:init.scope.d", "persisted:inferfleet-irq-affinity.service"):
        assert item in result.stdout, item
    # one clear message per part that skipped its runtime writes
    for part in ("sysctl", "thp", "swap", "io_scheduler", "cpu_partition"):
        assert result.stdout.count("host_tuning %s: this host is a container" % part) == 1, part
    shutil.rmtree(tmp_path / "ansible-local", ignore_errors=True)


def test_multi_node_topology_turns_numa_balancing_off(scratch):
    """gpu_topology facts with two NUMA nodes add kernel.numa_balancing=0 to the drop-in; one node does not."""
    tmp_path, base, _unused = scratch
    two = dict(base, gpu_topology={"numa_nodes": [{"id": 0}, {"id": 1}]})
    result = run(tmp_path, two)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    lines = Path(base["host_tuning_sysctl_file"]).read_text().splitlines()
    assert "kernel.numa_balancing=0" in lines
    one = dict(base, gpu_topology={"numa_nodes": [{"id": 0}]})
    result = run(tmp_path, one)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    lines = Path(base["host_tuning_sysctl_file"]).read_text().splitlines()
    # the role owns the drop-in: the key it no longer sets is removed
    assert not any(line.startswith("kernel.numa_balancing") for line in lines)
    assert "removed:kernel.numa_balancing" in result.stdout
