"""Readers and the udev renderer of module_utils.blockdev."""
import fnmatch

import pytest

from ansible_collections.inferfleet.gpu.plugins.module_utils import blockdev


@pytest.mark.parametrize("name,kind", [
    ("nvme0n1", "nvme"), ("nvme12n3", "nvme"), ("sda", "scsi"), ("sdaa", "scsi"), ("vda", "virtio"),
    ("xvdb", "xen"), ("mmcblk0", "mmc"), ("loop7", "loop"), ("zram0", "zram"), ("dm-3", "dm"),
    ("md127", "md"), ("nbd0", "nbd"), ("sr0", "cdrom"), ("ram0", "ram"), ("drbd1", "drbd"), ("fd0", "floppy"),
    ("nvme0c0n1", "other"), ("sda1", "other"),
])
def test_kind_of(name, kind):
    assert blockdev.kind_of(name) == kind


@pytest.mark.parametrize("kind,name", [
    ("nvme", "nvme3n2"), ("scsi", "sdab"), ("virtio", "vdc"), ("xen", "xvda"), ("mmc", "mmcblk1"),
    ("loop", "loop12"), ("zram", "zram1"), ("ram", "ram15"), ("dm", "dm-0"), ("md", "md0"), ("nbd", "nbd15"),
    ("rbd", "rbd0"), ("drbd", "drbd0"), ("cdrom", "sr1"), ("floppy", "fd0"),
])
def test_one_kind_table_for_facts_rules_and_udev(kind, name):
    """The name rule and the udev glob of a kind select the same devices (io_scheduler persists by glob)."""
    assert kind in blockdev.KINDS
    assert blockdev.kind_of(name) == kind
    assert fnmatch.fnmatchcase(name, blockdev.KIND_UDEV_GLOBS[kind])
    others = [k for k in blockdev.KIND_UDEV_GLOBS if k != kind and fnmatch.fnmatchcase(name, blockdev.KIND_UDEV_GLOBS[k])]
    assert others == []


def test_every_kind_has_a_udev_glob_and_io_scheduler_offers_it():
    from ansible_collections.inferfleet.gpu.plugins.modules import io_scheduler

    assert set(blockdev.KINDS) - {"other"} == set(blockdev.KIND_UDEV_GLOBS)
    assert set(blockdev.VIRTUAL_KINDS) == {"loop", "zram", "ram", "dm", "md", "nbd", "rbd", "drbd", "cdrom", "floppy"}
    assert "choices: [%s]" % ", ".join(blockdev.KINDS) in io_scheduler.DOCUMENTATION


def test_list_devices_reads_queue(tmp_path):
    queue = tmp_path / "sys/block/nvme0n1/queue"
    queue.mkdir(parents=True)
    (queue / "scheduler").write_text("[none] mq-deadline\n")
    (queue / "rotational").write_text("0\n")
    (queue / "read_ahead_kb").write_text("128\n")
    (tmp_path / "sys/block/zram0/queue").mkdir(parents=True)  # no scheduler file
    (tmp_path / "sys/block/nothing").mkdir()  # no queue: not listed
    devices = blockdev.list_devices(str(tmp_path))
    assert devices == [
        {"name": "nvme0n1", "kind": "nvme", "rotational": False, "scheduler": "none",
         "schedulers": ["none", "mq-deadline"], "read_ahead_kb": 128, "nr_requests": None},
        {"name": "zram0", "kind": "zram", "rotational": None, "scheduler": None, "schedulers": [],
         "read_ahead_kb": None, "nr_requests": None},
    ]


def test_list_devices_without_sys(tmp_path):
    assert blockdev.list_devices(str(tmp_path)) == []


def test_this_machine_has_devices():
    devices = blockdev.list_devices("/")
    if not devices:
        pytest.skip("no /sys/block here")
    assert all(d["name"] and d["kind"] in blockdev.KINDS for d in devices)
    assert any(d["schedulers"] for d in devices)


def test_assign_first_match_and_filters():
    devs = [{"name": "sda", "kind": "scsi", "rotational": True},
            {"name": "sdb", "kind": "scsi", "rotational": False},
            {"name": "nvme0n1", "kind": "nvme", "rotational": False}]
    rules = [{"kinds": ["scsi"], "rotational": False, "scheduler": "mq-deadline"},
             {"pattern": "nvme*", "scheduler": "none"}]
    assert blockdev.assign(rules, devs) == {"sdb": 0, "nvme0n1": 1}


def test_render_udev_devices_each_get_a_line():
    text = blockdev.render_udev([{"devices": ["sda", "sdb"], "scheduler": "bfq", "nr_requests": 32}], ["h"])
    lines = text.splitlines()
    assert lines[0] == "# h"
    assert lines[1] == ('ACTION=="add|change", SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", KERNEL=="sda", '
                        'ATTR{queue/scheduler}="bfq", ATTR{queue/nr_requests}="32"')
    assert 'KERNEL=="sdb"' in lines[2]
