# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Block devices: the kind table, readers of their queues under ``/sys/block``, the udev rule renderer.

Plain functions that take a ``root`` path; nothing here calls Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os
import re

from ansible_collections.inferfleet.gpu.plugins.module_utils import sysfs

# The one table of block-device kinds, by the kernel's name for the device.
# Both the facts (``gpu_topology``'s ``block_devices[].kind``) and the
# ``io_scheduler`` rules (``kinds``, and the udev KERNEL globs that persist
# them) use it, so a kind a fact reports is the kind a rule selects.
# (kind, whole-disk name regex, udev KERNEL glob, virtual: not a disk a
# model's weights live on). First match wins; anything else is ``other``.
KIND_TABLE = (
    ("nvme", r"^nvme\d+n\d+$", "nvme[0-9]*n[0-9]*", False),
    ("scsi", r"^sd[a-z]+$", "sd[a-z]*", False),
    ("virtio", r"^vd[a-z]+$", "vd[a-z]*", False),
    ("xen", r"^xvd[a-z]+$", "xvd[a-z]*", False),
    ("mmc", r"^mmcblk\d+$", "mmcblk[0-9]*", False),
    ("loop", r"^loop\d+$", "loop[0-9]*", True),
    ("zram", r"^zram\d+$", "zram[0-9]*", True),
    ("ram", r"^ram\d+$", "ram[0-9]*", True),
    ("dm", r"^dm-\d+$", "dm-[0-9]*", True),
    ("md", r"^md\d+$", "md[0-9]*", True),
    ("nbd", r"^nbd\d+$", "nbd[0-9]*", True),
    ("rbd", r"^rbd\d+$", "rbd[0-9]*", True),
    ("drbd", r"^drbd\d+$", "drbd[0-9]*", True),
    ("cdrom", r"^sr\d+$", "sr[0-9]*", True),
    ("floppy", r"^fd\d+$", "fd[0-9]*", True),
)
_KIND_RES = [(kind, re.compile(regex)) for kind, regex, _glob, _virtual in KIND_TABLE]
KINDS = tuple(kind for kind, _regex, _glob, _virtual in KIND_TABLE) + ("other",)
VIRTUAL_KINDS = frozenset(kind for kind, _regex, _glob, virtual in KIND_TABLE if virtual)
# udev KERNEL globs for each kind (whole disks; ENV{DEVTYPE}=="disk" filters partitions).
KIND_UDEV_GLOBS = dict((kind, glob) for kind, _regex, glob, _virtual in KIND_TABLE)
QUEUE_ATTRS = ("scheduler", "read_ahead_kb", "nr_requests")
# The schedulers of the multi-queue block layer (the only one since Linux 5.0); a rule naming another is
# refused even when no device it selects is present, since the persisted udev rule would fail later.
BLK_MQ_SCHEDULERS = ("none", "mq-deadline", "bfq", "kyber")
# Single-queue schedulers removed in Linux 5.0 (anticipatory already in 2.6.33), with their blk-mq successor.
LEGACY_SCHEDULERS = {"noop": "none", "deadline": "mq-deadline", "cfq": "bfq", "anticipatory": "mq-deadline"}


def kind_of(name):
    """The kind of a block device from its kernel name (``nvme0n1`` -> ``nvme``)."""
    for kind, regex in _KIND_RES:
        if regex.match(name):
            return kind
    return "other"


def queue_path(root, name, attr):
    return os.path.join(root, "sys/block", name, "queue", attr)


def read_device(root, name):
    """One device: name, kind, rotational, scheduler, schedulers, read_ahead_kb, nr_requests."""
    scheduler, schedulers = sysfs.read_choice(queue_path(root, name, "scheduler"))
    rotational = sysfs.read(queue_path(root, name, "rotational"))
    return {
        "name": name,
        "kind": kind_of(name),
        "rotational": None if rotational is None else rotational == "1",
        "scheduler": scheduler,
        "schedulers": schedulers,
        "read_ahead_kb": sysfs.read_int(queue_path(root, name, "read_ahead_kb")),
        "nr_requests": sysfs.read_int(queue_path(root, name, "nr_requests")),
    }


def list_devices(root):
    """Every whole block device under ``root/sys/block`` that has a queue, sorted by name."""
    base = sysfs.under_root(root, "/sys/block")
    names = sorted(sysfs.listdir(base))
    return [read_device(root, n) for n in names if os.path.isdir(os.path.join(base, n, "queue"))]


def rule_matches(rule, device):
    """Whether a rule (``devices`` / ``pattern`` / ``kinds`` / ``rotational``) selects a device."""
    if rule.get("devices") and device["name"] not in rule["devices"]:
        return False
    if rule.get("pattern") and not fnmatch.fnmatchcase(device["name"], rule["pattern"]):
        return False
    if rule.get("kinds") and device["kind"] not in rule["kinds"]:
        return False
    if rule.get("rotational") is not None and device["rotational"] != rule["rotational"]:
        return False
    return True


def assign(rules, devices):
    """``{name: rule index}``: the first rule that selects each device."""
    out = {}
    for device in devices:
        for index, rule in enumerate(rules):
            if rule_matches(rule, device):
                out[device["name"]] = index
                break
    return out


def write_queue_attr(root, name, attr, value):
    sysfs.write_value(queue_path(root, name, attr), value)


def _udev_kernel_globs(rule):
    if rule.get("devices"):
        return list(rule["devices"])
    if rule.get("pattern"):
        return [rule["pattern"]]
    return [KIND_UDEV_GLOBS[k] for k in rule.get("kinds") or [] if k in KIND_UDEV_GLOBS]


def render_udev(rules, header):
    """udev rules text that sets the queue attributes of ``rules`` on add/change."""
    lines = ["# " + h for h in header]
    for rule in rules:
        sets = ['ATTR{queue/scheduler}="%s"' % rule["scheduler"]]
        for attr in ("read_ahead_kb", "nr_requests"):
            if rule.get(attr) is not None:
                sets.append('ATTR{queue/%s}="%d"' % (attr, rule[attr]))
        for glob in _udev_kernel_globs(rule):
            match = ['ACTION=="add|change"', 'SUBSYSTEM=="block"', 'ENV{DEVTYPE}=="disk"', 'KERNEL=="%s"' % glob]
            if rule.get("rotational") is not None:
                match.append('ATTR{queue/rotational}=="%d"' % (1 if rule["rotational"] else 0))
            lines.append(", ".join(match + sets))
    return "\n".join(lines) + "\n"
