"""Unit tests of inferfleet.gpu.io_scheduler on /sys/block trees built in tmp_path."""

import pytest

from ansible_collections.inferfleet.gpu.plugins.modules import io_scheduler
from helpers import run_module

MQ = "[mq-deadline] kyber bfq none\n"


def add_dev(root, name, scheduler=MQ, rotational="0", read_ahead="128", nr_requests="64"):
    queue = root / "sys/block" / name / "queue"
    queue.mkdir(parents=True)
    (queue / "scheduler").write_text(scheduler)
    (queue / "rotational").write_text(rotational + "\n")
    (queue / "read_ahead_kb").write_text(read_ahead + "\n")
    (queue / "nr_requests").write_text(nr_requests + "\n")
    return queue


@pytest.fixture()
def fleet(tmp_path):
    return {
        "nvme0n1": add_dev(tmp_path, "nvme0n1"),
        "nvme1n1": add_dev(tmp_path, "nvme1n1", scheduler="[none] mq-deadline\n"),
        "sda": add_dev(tmp_path, "sda", scheduler="mq-deadline [none]\n"),        # SATA SSD
        "sdb": add_dev(tmp_path, "sdb", scheduler="[bfq] mq-deadline none\n", rotational="1"),  # HDD
        "vda": add_dev(tmp_path, "vda", scheduler="[mq-deadline] none\n", rotational="1"),
    }


RULES = [{"kinds": ["nvme"], "scheduler": "none"},
         {"kinds": ["scsi"], "rotational": False, "scheduler": "mq-deadline"}]


def run(tmp_path, capsys, check=False, diff=False, **args):
    args.setdefault("root", str(tmp_path))
    return run_module(io_scheduler, tmp_path, capsys, check=check, diff=diff, **args)


def test_kind_rules_pick_the_right_devices(tmp_path, capsys, fleet):
    res = run(tmp_path, capsys, rules=RULES)
    assert res["changed"] is True
    assert sorted(res["devices"]) == ["nvme0n1", "nvme1n1", "sda"]
    assert res["changed_items"] == ["runtime:nvme0n1:scheduler", "runtime:sda:scheduler",
                                    "persisted:%s/etc/udev/rules.d/60-inferfleet-io-scheduler.rules" % tmp_path]
    assert (fleet["nvme0n1"] / "scheduler").read_text() == "none"
    assert (fleet["sda"] / "scheduler").read_text() == "mq-deadline"
    # HDD and virtio untouched
    assert (fleet["sdb"] / "scheduler").read_text() == "[bfq] mq-deadline none\n"
    assert (fleet["vda"] / "scheduler").read_text() == "[mq-deadline] none\n"
    assert res["devices"]["nvme0n1"]["before"] == {"scheduler": "mq-deadline"}
    rules = (tmp_path / "etc/udev/rules.d/60-inferfleet-io-scheduler.rules").read_text()
    assert ('ACTION=="add|change", SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", KERNEL=="nvme[0-9]*n[0-9]*", '
            'ATTR{queue/scheduler}="none"') in rules
    assert ('KERNEL=="sd[a-z]*", ATTR{queue/rotational}=="0", ATTR{queue/scheduler}="mq-deadline"') in rules


def test_idempotent(tmp_path, capsys, fleet):
    run(tmp_path, capsys, rules=RULES)
    res = run(tmp_path, capsys, rules=RULES)
    assert res["changed"] is False, res["changed_items"]


def test_check_mode_and_diff(tmp_path, capsys, fleet):
    res = run(tmp_path, capsys, check=True, diff=True, rules=RULES)
    assert res["changed"] is True
    assert (fleet["nvme0n1"] / "scheduler").read_text() == MQ
    assert not (tmp_path / "etc").exists()
    assert res["diff"][0]["before"] == "nvme0n1 scheduler: mq-deadline\nnvme1n1 scheduler: none\nsda scheduler: none\n"
    assert res["diff"][0]["after"] == "nvme0n1 scheduler: none\nnvme1n1 scheduler: none\nsda scheduler: mq-deadline\n"
    assert "KERNEL==" in res["diff"][1]["after"]


def test_pattern_with_read_ahead_and_nr_requests(tmp_path, capsys, fleet):
    rules = [{"pattern": "nvme1*", "scheduler": "mq-deadline", "read_ahead_kb": 4096, "nr_requests": 256}]
    res = run(tmp_path, capsys, rules=rules)
    assert res["changed_items"][:3] == ["runtime:nvme1n1:scheduler", "runtime:nvme1n1:read_ahead_kb",
                                        "runtime:nvme1n1:nr_requests"]
    assert (fleet["nvme1n1"] / "read_ahead_kb").read_text() == "4096"
    assert (fleet["nvme1n1"] / "nr_requests").read_text() == "256"
    assert (fleet["nvme0n1"] / "read_ahead_kb").read_text() == "128\n"
    text = (tmp_path / "etc/udev/rules.d/60-inferfleet-io-scheduler.rules").read_text()
    assert 'KERNEL=="nvme1*", ATTR{queue/scheduler}="mq-deadline", ATTR{queue/read_ahead_kb}="4096", ' \
           'ATTR{queue/nr_requests}="256"' in text


def test_first_rule_wins(tmp_path, capsys, fleet):
    rules = [{"devices": ["nvme0n1"], "scheduler": "kyber"}, {"kinds": ["nvme"], "scheduler": "none"}]
    res = run(tmp_path, capsys, rules=rules)
    assert res["devices"]["nvme0n1"]["rule"] == 0
    assert (fleet["nvme0n1"] / "scheduler").read_text() == "kyber"
    assert res["devices"]["nvme1n1"]["rule"] == 1


def test_refuses_scheduler_not_offered_and_names_offered(tmp_path, capsys, fleet):
    res = run(tmp_path, capsys, rules=[{"devices": ["nvme1n1"], "scheduler": "bfq"}])
    assert res["failed"] is True
    assert "does not offer 'bfq' for nvme1n1" in res["msg"]
    assert "it offers none, mq-deadline" in res["msg"]
    assert (fleet["nvme1n1"] / "scheduler").read_text() == "[none] mq-deadline\n"
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("legacy, successor", [("noop", "none"), ("deadline", "mq-deadline"), ("cfq", "bfq"),
                                               ("anticipatory", "mq-deadline")])
def test_refuses_legacy_scheduler_even_without_a_matching_device(tmp_path, capsys, fleet, legacy, successor):
    """No mmc device exists: the rule selects nothing, yet its scheduler would land in the udev rule."""
    res = run(tmp_path, capsys, rules=[{"kinds": ["nvme"], "scheduler": "none"}, {"kinds": ["mmc"], "scheduler": legacy}])
    assert res["failed"] is True
    assert "rules[1].scheduler: %r is not a scheduler of the multi-queue block layer" % legacy in res["msg"]
    assert "its blk-mq successor is %r" % successor in res["msg"]
    assert "allowed: none, mq-deadline, bfq, kyber" in res["msg"]
    assert (fleet["nvme0n1"] / "scheduler").read_text() == MQ
    assert not (tmp_path / "etc").exists()


def test_refuses_unknown_scheduler_name(tmp_path, capsys, fleet):
    res = run(tmp_path, capsys, rules=[{"pattern": "mmcblk*", "scheduler": "fifo"}])
    assert res["failed"] is True
    assert "'fifo' is not a scheduler of the multi-queue block layer; allowed: none, mq-deadline, bfq, kyber" in res["msg"]
    assert not (tmp_path / "etc").exists()


def test_refuses_unknown_device(tmp_path, capsys, fleet):
    res = run(tmp_path, capsys, rules=[{"devices": ["nvme9n1"], "scheduler": "none"}])
    assert res["failed"] is True
    assert "no block device 'nvme9n1'" in res["msg"] and "sda" in res["msg"]


def test_rule_needs_a_selector(tmp_path, capsys, fleet):
    res = run(tmp_path, capsys, rules=[{"scheduler": "none"}])
    assert res["failed"] is True
    assert "devices, pattern, kinds" in res["msg"]


def test_runtime_false_reports_no_runtime_change(tmp_path, capsys, fleet):
    res = run(tmp_path, capsys, rules=RULES, runtime=False)
    assert res["changed_items"] == ["persisted:%s/etc/udev/rules.d/60-inferfleet-io-scheduler.rules" % tmp_path]
    assert (fleet["nvme0n1"] / "scheduler").read_text() == MQ
    assert res["devices"]["nvme0n1"]["after"] == {"scheduler": "mq-deadline"}


def test_rule_matching_nothing_is_reported(tmp_path, capsys):
    add_dev(tmp_path, "vda", scheduler="[mq-deadline] none\n")
    res = run(tmp_path, capsys, rules=RULES, persist=False)
    assert res["changed"] is False
    assert res["unmatched"] == [0, 1]
