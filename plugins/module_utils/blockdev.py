# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readers of block device queues under ``/sys/block`` and the udev rule renderer.

Plain functions that take a ``root`` path; nothing here calls Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os
import re

from ansible_collections.inferfleet.gpu.plugins.module_utils.thp import parse_choice

# Kernel name -> kind.  Order matters: first match wins.
_KIND_RES = [
    ("nvme", re.compile(r"^nvme\d+n\d+$")),
    ("scsi", re.compile(r"^sd[a-z]+$")),
    ("virtio", re.compile(r"^vd[a-z]+$")),
    ("xen", re.compile(r"^xvd[a-z]+$")),
    ("mmc", re.compile(r"^mmcblk\d+$")),
    ("loop", re.compile(r"^loop\d+$")),
    ("zram", re.compile(r"^zram\d+$")),
    ("dm", re.compile(r"^dm-\d+$")),
    ("md", re.compile(r"^md\d+$")),
    ("nbd", re.compile(r"^nbd\d+$")),
    ("rbd", re.compile(r"^rbd\d+$")),
]
KINDS = tuple(kind for kind, regex in _KIND_RES) + ("other",)
# udev KERNEL globs for each kind (whole disks; ENV{DEVTYPE}=="disk" filters partitions).
KIND_UDEV_GLOBS = {
    "nvme": "nvme[0-9]*n[0-9]*",
    "scsi": "sd[a-z]*",
    "virtio": "vd[a-z]*",
    "xen": "xvd[a-z]*",
    "mmc": "mmcblk[0-9]*",
    "loop": "loop[0-9]*",
    "zram": "zram[0-9]*",
    "dm": "dm-[0-9]*",
    "md": "md[0-9]*",
    "nbd": "nbd[0-9]*",
    "rbd": "rbd[0-9]*",
}
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


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def queue_path(root, name, attr):
    return os.path.join(root, "sys/block", name, "queue", attr)


def read_device(root, name):
    """One device: name, kind, rotational, scheduler, schedulers, read_ahead_kb, nr_requests."""
    sched_text = _read(queue_path(root, name, "scheduler"))
    scheduler, schedulers = (None, None)
    if sched_text is not None:
        scheduler, schedulers = parse_choice(sched_text)
        if schedulers is None and scheduler is not None:
            schedulers = [scheduler]
    rotational = _read(queue_path(root, name, "rotational"))
    return {
        "name": name,
        "kind": kind_of(name),
        "rotational": None if rotational is None else rotational == "1",
        "scheduler": scheduler,
        "schedulers": schedulers or [],
        "read_ahead_kb": _int(_read(queue_path(root, name, "read_ahead_kb"))),
        "nr_requests": _int(_read(queue_path(root, name, "nr_requests"))),
    }


def list_devices(root):
    """Every whole block device under ``root/sys/block`` that has a queue, sorted by name."""
    base = os.path.join(root, "sys/block")
    try:
        names = sorted(os.listdir(base))
    except (IOError, OSError):
        return []
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
    with open(queue_path(root, name, attr), "w") as handle:
        handle.write(str(value))


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
