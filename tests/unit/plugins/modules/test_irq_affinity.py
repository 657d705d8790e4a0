"""Unit tests of inferfleet.gpu.irq_affinity (and module_utils.irq) on /proc trees built in tmp_path."""
import errno
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.inferfleet.gpu.plugins.module_utils import irq as irqs
from ansible_collections.inferfleet.gpu.plugins.modules import irq_affinity

KTHREAD = irqs.PF_KTHREAD


def make_tree(tmp_path, online="0-3", default="f", irq_map=None, threads=None):
    """irq_map: {irq: (affinity cpulist, [handler names])}; threads: {pid: (comm, flags, cpus)}."""
    (tmp_path / "sys/devices/system/cpu").mkdir(parents=True)
    (tmp_path / "sys/devices/system/cpu/online").write_text(online + "\n")
    base = tmp_path / "proc/irq"
    base.mkdir(parents=True)
    (base / "default_smp_affinity").write_text(default + "\n")
    for irq, (cpus, actions) in (irq_map or {}).items():
        (base / str(irq)).mkdir()
        (base / str(irq) / "smp_affinity_list").write_text(cpus + "\n")
        for action in actions:
            (base / str(irq) / action).mkdir()
    for pid, (comm, flags, cpus) in (threads or {}).items():
        (tmp_path / "proc" / str(pid)).mkdir()
        (tmp_path / "proc" / str(pid) / "stat").write_text(
            "%d (%s) S 2 0 0 0 -1 %d 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n" % (pid, comm, flags))
        (tmp_path / "proc" / str(pid) / "status").write_text(
            "Name:\t%s\nCpus_allowed:\tf\nCpus_allowed_list:\t%s\n" % (comm, cpus))
    return base


def run(tmp_path, capsys, check=False, diff=False, **args):
    args.setdefault("root", str(tmp_path))
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    args["_ansible_remote_tmp"] = str(tmp_path / "remote_tmp")
    args["_ansible_keep_remote_files"] = False
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            irq_affinity.main()
    return json.loads(capsys.readouterr().out)


IRQS = {
    1: ("0-3", ["i8042"]),
    24: ("0", ["virtio0-config"]),     # already within the wanted CPUs: left alone
    25: ("2", ["nvme0q1"]),
    26: ("1-3", ["eth0-rx-0", "eth0-tx-0"]),
}


def test_moves_irqs_off_the_other_cpus(tmp_path, capsys):
    base = make_tree(tmp_path, irq_map=IRQS)
    res = run(tmp_path, capsys, cpus="0", diff=True)
    assert res["changed"] is True
    assert res["moved"] == [1, 25, 26]
    assert res["changed_items"] == ["runtime:default_smp_affinity", "runtime:irq/1", "runtime:irq/25", "runtime:irq/26"]
    assert res["default_smp_affinity"] == {"before": "0-3", "after": "0"}
    assert (base / "default_smp_affinity").read_text() == "00000001\n"
    for irq in (1, 25, 26):
        assert (base / str(irq) / "smp_affinity_list").read_text() == "0\n"
    assert (base / "24/smp_affinity_list").read_text() == "0\n"
    assert res["irq_count"] == 4
    assert "irq/26 eth0-rx-0,eth0-tx-0: 1-3" in res["diff"]["before"]
    assert "irq/26 eth0-rx-0,eth0-tx-0: 0" in res["diff"]["after"]


def test_second_run_changes_nothing(tmp_path, capsys):
    make_tree(tmp_path, irq_map=IRQS)
    run(tmp_path, capsys, cpus="0")
    res = run(tmp_path, capsys, cpus="0")
    assert res["changed"] is False
    assert res["changed_items"] == [] and res["moved"] == []


def test_check_mode_predicts_and_writes_nothing(tmp_path, capsys):
    base = make_tree(tmp_path, irq_map=IRQS)
    res = run(tmp_path, capsys, cpus="0-1", check=True)
    assert res["changed"] is True
    assert res["moved"] == [1, 25, 26]
    assert (base / "default_smp_affinity").read_text() == "f\n"
    assert (base / "25/smp_affinity_list").read_text() == "2\n"


def test_drift_is_repaired_and_reported(tmp_path, capsys):
    base = make_tree(tmp_path, irq_map=IRQS)
    run(tmp_path, capsys, cpus="0")
    (base / "25/smp_affinity_list").write_text("0-3\n")
    res = run(tmp_path, capsys, cpus="0")
    assert res["changed_items"] == ["runtime:irq/25"]
    assert (base / "25/smp_affinity_list").read_text() == "0\n"


def test_refused_irqs_are_reported_not_changed(tmp_path, capsys, monkeypatch):
    make_tree(tmp_path, irq_map=IRQS)
    real = irqs.write_irq_affinity

    def managed(root, irq, cpus):
        if irq == 25:  # a managed IRQ: the kernel answers EIO
            raise OSError(errno.EIO, "Input/output error")
        real(root, irq, cpus)

    monkeypatch.setattr(irqs, "write_irq_affinity", managed)
    res = run(tmp_path, capsys, cpus="0")
    assert res["moved"] == [1, 26]
    assert res["refused"] == [{"irq": 25, "actions": ["nvme0q1"], "affinity": "2",
                               "error": "[Errno 5] Input/output error"}]
    assert "runtime:irq/25" not in res["changed_items"]
    again = run(tmp_path, capsys, cpus="0")
    assert again["changed"] is False and [r["irq"] for r in again["refused"]] == [25]


def test_switches_limit_what_is_written(tmp_path, capsys):
    base = make_tree(tmp_path, irq_map=IRQS)
    res = run(tmp_path, capsys, cpus="0", default_affinity=False, move_irqs=False)
    assert res["changed"] is False
    assert (base / "default_smp_affinity").read_text() == "f\n"
    assert (base / "1/smp_affinity_list").read_text() == "0-3\n"


def test_kernel_threads_on_the_other_cpus_are_reported(tmp_path, capsys):
    make_tree(tmp_path, irq_map=IRQS, threads={
        10: ("ksoftirqd/1", KTHREAD, "1"),
        11: ("ksoftirqd/0", KTHREAD, "0"),
        12: ("migration/3", KTHREAD, "3"),
        13: ("kworker/u8:2-events_unbound", KTHREAD | irqs.PF_NO_SETAFFINITY, "0-3"),
        14: ("rcu_preempt", KTHREAD, "0-3"),
        15: ("sshd", 0x400100, "0-3"),           # not a kernel thread
        16: ("kworker/2:1H-kblockd", KTHREAD, "2"),
    })
    res = run(tmp_path, capsys, cpus="0")
    assert res["kernel_threads"] == {
        "pinned": {"ksoftirqd/N": 1, "migration/N": 1, "kworker/uN:N-events_unbound": 1, "kworker/N:NH-kblockd": 1},
        "unbound": {"rcu_preempt": 1}}


@pytest.mark.parametrize("cpus, message", [
    ("", "irq_affinity cpus: empty"),
    ("0-", "invalid cpulist item"),
    ("0,7", "cpus=0,7: CPUs 7 are not online (online: 0-3)"),
])
def test_bad_cpus_fail_before_anything_changes(tmp_path, capsys, cpus, message):
    base = make_tree(tmp_path, irq_map=IRQS)
    res = run(tmp_path, capsys, cpus=cpus)
    assert res["failed"] is True
    assert message in res["msg"]
    assert (base / "default_smp_affinity").read_text() == "f\n"
    assert (base / "1/smp_affinity_list").read_text() == "0-3\n"


def test_no_proc_irq_is_not_an_error(tmp_path, capsys):
    (tmp_path / "sys/devices/system/cpu").mkdir(parents=True)
    (tmp_path / "sys/devices/system/cpu/online").write_text("0-1\n")
    res = run(tmp_path, capsys, cpus="0")
    assert res["changed"] is False and res["irq_count"] == 0
    assert res["default_smp_affinity"] == {"before": "", "after": ""}


def test_thread_kind():
    assert irqs.thread_kind("ksoftirqd/12") == "ksoftirqd/N"
    assert irqs.thread_kind("kworker/3:1H-kblockd") == "kworker/N:NH-kblockd"
