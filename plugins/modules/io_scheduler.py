#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: io_scheduler
short_description: Set the I/O scheduler of block devices at runtime and persist it with a udev rule
version_added: 0.1.0
description:
  - Selects whole block devices under C(/sys/block) by name, glob pattern, kind (nvme, scsi, virtio, ...)
    and rotational flag, and sets C(queue/scheduler) and optionally C(queue/read_ahead_kb) and
    C(queue/nr_requests).
  - Persists the same selection as a udev rules file so the values come back after a reboot or a hot-plug.
  - Refuses a scheduler the kernel does not offer for a selected device, naming the ones it does, and a name
    that no multi-queue kernel has (the legacy C(noop), C(deadline), C(cfq)) whether or not a device is selected.
  - The first rule that selects a device wins.
author:
  - inferfleet engineers (@inferfleet)
options:
  rules:
    description:
      - What to set on which devices. Each rule needs at least one of O(rules[].devices),
        O(rules[].pattern) or O(rules[].kinds).
    type: list
    elements: dict
    required: true
    suboptions:
      devices:
        description: Kernel names of devices (C(nvme0n1), C(sda)). Each must exist.
        type: list
        elements: str
      pattern:
        description: A shell glob over kernel names (C(nvme*), C(loop7)).
        type: str
      kinds:
        description: Device kinds, derived from the kernel name.
        type: list
        elements: str
        choices: [nvme, scsi, virtio, xen, mmc, loop, zram, ram, dm, md, nbd, rbd, drbd, cdrom, floppy, other]
      rotational:
        description: Only devices whose C(queue/rotational) is this (V(false) for SSD/NVMe).
        type: bool
      scheduler:
        description:
          - The scheduler, one of the multi-queue block layer's (C(none), C(mq-deadline), C(bfq), C(kyber)), checked
            even when no device the rule selects is present; the legacy C(noop), C(deadline), C(cfq) and
            C(anticipatory) are refused.
          - It must also be offered by the kernel for every device the rule selects.
        type: str
        required: true
      read_ahead_kb:
        description: C(queue/read_ahead_kb) to set.
        type: int
      nr_requests:
        description: C(queue/nr_requests) to set.
        type: int
  runtime:
    description: Write the values to sysfs now. Set to V(false) in containers that share the host kernel.
    type: bool
    default: true
  persist:
    description: Write the udev rules file O(udev_rule_path).
    type: bool
    default: true
  udev_rule_path:
    description: The udev rules file (below O(root)).
    type: path
    default: /etc/udev/rules.d/60-inferfleet-io-scheduler.rules
  root:
    description: Root of the tree holding C(sys/block) and C(etc/). Tests pass a tree in a temporary directory.
    type: path
    default: /
extends_documentation_fragment:
  - inferfleet.gpu.attributes.runtime_and_persisted
notes:
  - Runtime values are written to sysfs with a plain write; the udev file is written atomically.
  - The udev rule applies at the next add/change event (boot, hot-plug, C(udevadm trigger)).
"""

EXAMPLES = r"""
- name: none on NVMe, mq-deadline on SATA/SAS SSDs, HDDs untouched
  inferfleet.gpu.io_scheduler:
    rules:
      - kinds: [nvme]
        scheduler: none
      - kinds: [scsi]
        rotational: false
        scheduler: mq-deadline

- name: One device by name, with read-ahead
  inferfleet.gpu.io_scheduler:
    rules:
      - devices: [nvme0n1]
        scheduler: none
        read_ahead_kb: 4096
"""

RETURN = r"""
devices:
  description: Each selected device with its rule index and its queue values before and after.
  returned: always
  type: dict
  sample: {"nvme0n1": {"rule": 0, "kind": "nvme", "before": {"scheduler": "mq-deadline"}, "after": {"scheduler": "none"}}}
unmatched:
  description: Indexes of rules that selected no device.
  returned: always
  type: list
  elements: int
  sample: [1]
udev_rule:
  description: The udev rules file and whether it changed.
  returned: always
  type: dict
  sample: {"path": "/etc/udev/rules.d/60-inferfleet-io-scheduler.rules", "changed": true}
changed_items:
  description: What changed, as C(runtime:<device>:<attr>) and C(persisted:<file>).
  returned: always
  type: list
  elements: str
  sample: ["runtime:nvme0n1:scheduler"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferfleet.gpu.plugins.module_utils import blockdev, sysfs

HEADER = ["Managed by inferfleet.gpu.io_scheduler: block device queue settings."]


def build_module():
    rule_spec = dict(
        devices=dict(type="list", elements="str"),
        pattern=dict(type="str"),
        kinds=dict(type="list", elements="str", choices=list(blockdev.KINDS)),
        rotational=dict(type="bool"),
        scheduler=dict(type="str", required=True),
        read_ahead_kb=dict(type="int"),
        nr_requests=dict(type="int"),
    )
    return AnsibleModule(
        argument_spec=dict(
            rules=dict(type="list", elements="dict", required=True, options=rule_spec,
                       required_one_of=[["devices", "pattern", "kinds"]]),
            runtime=dict(type="bool", default=True),
            persist=dict(type="bool", default=True),
            udev_rule_path=dict(type="path", default="/etc/udev/rules.d/60-inferfleet-io-scheduler.rules"),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )


def validate(module, rules, devices, assigned):
    by_name = dict((d["name"], d) for d in devices)
    for index, rule in enumerate(rules):
        wanted = rule["scheduler"]
        if wanted not in blockdev.BLK_MQ_SCHEDULERS:
            hint = ""
            if wanted in blockdev.LEGACY_SCHEDULERS:
                hint = (" (%r is a single-queue scheduler, removed in Linux 5.0; its blk-mq successor is %r)"
                        % (wanted, blockdev.LEGACY_SCHEDULERS[wanted]))
            module.fail_json(msg="io_scheduler rules[%d].scheduler: %r is not a scheduler of the multi-queue block "
                             "layer%s; allowed: %s" % (index, wanted, hint, ", ".join(blockdev.BLK_MQ_SCHEDULERS)))
        for name in rule.get("devices") or []:
            if name not in by_name:
                module.fail_json(msg="io_scheduler rules[%d].devices: no block device %r; the devices are %s"
                                 % (index, name, ", ".join(sorted(by_name)) or "none"))
        for attr in ("read_ahead_kb", "nr_requests"):
            if rule.get(attr) is not None and rule[attr] < (0 if attr == "read_ahead_kb" else 1):
                module.fail_json(msg="io_scheduler rules[%d].%s must be >= %d, got %d"
                                 % (index, attr, 0 if attr == "read_ahead_kb" else 1, rule[attr]))
    for name, index in sorted(assigned.items()):
        offered = by_name[name]["schedulers"]
        wanted = rules[index]["scheduler"]
        if wanted not in offered:
            module.fail_json(msg="io_scheduler rules[%d].scheduler: the kernel does not offer %r for %s; it offers %s"
                             % (index, wanted, name, ", ".join(offered) or "no scheduler"))


def apply_runtime(module, root, rules, devices, assigned, result):
    by_name = dict((d["name"], d) for d in devices)
    for name, index in sorted(assigned.items()):
        device = by_name[name]
        rule = rules[index]
        before = dict((a, device[a]) for a in blockdev.QUEUE_ATTRS if rule.get(a) is not None)
        after = dict((a, rule[a]) for a in before)
        for attr in blockdev.QUEUE_ATTRS:
            if attr not in before or before[attr] == after[attr]:
                continue
            result["changed_items"].append("runtime:%s:%s" % (name, attr))
            if module.check_mode or not module.params["runtime"]:
                continue
            try:
                blockdev.write_queue_attr(root, name, attr, after[attr])
            except (IOError, OSError) as exc:
                module.fail_json(msg="io_scheduler rules[%d].%s: writing %r to %s failed: %s"
                                 % (index, attr, after[attr], blockdev.queue_path(root, name, attr), exc))
        result["devices"][name] = {"rule": index, "kind": device["kind"], "rotational": device["rotational"],
                                   "before": before, "after": after}


def apply_persisted(module, root, rules, result, diffs):
    path = sysfs.under_root(root, module.params["udev_rule_path"])
    text = sysfs.read_text(path)
    new_text = blockdev.render_udev(rules, HEADER)
    changed = text != new_text
    result["udev_rule"] = {"path": path, "changed": changed}
    if changed:
        result["changed_items"].append("persisted:" + path)
        diffs.append({"before": text or "", "after": new_text, "before_header": path, "after_header": path})
        if not module.check_mode:
            sysfs.write_atomic(module, path, new_text)


def runtime_diff(result):
    before, after = [], []
    for name, dev in sorted(result["devices"].items()):
        for attr in sorted(dev["before"]):
            before.append("%s %s: %s\n" % (name, attr, dev["before"][attr]))
            after.append("%s %s: %s\n" % (name, attr, dev["after"][attr]))
    return {"before": "".join(before), "after": "".join(after),
            "before_header": "runtime /sys/block", "after_header": "runtime /sys/block"}


def main():
    module = build_module()
    params = module.params
    root = params["root"]
    rules = params["rules"]
    devices = blockdev.list_devices(root)
    assigned = blockdev.assign(rules, devices)
    validate(module, rules, devices, assigned)
    result = dict(changed=False, changed_items=[], devices={},
                  unmatched=[i for i in range(len(rules)) if i not in assigned.values()],
                  udev_rule={"path": None, "changed": False})
    diffs = []
    apply_runtime(module, root, rules, devices, assigned, result)
    if not params["runtime"]:
        # Nothing was written: report the runtime as it is, not as a change.
        result["changed_items"] = []
        for dev in result["devices"].values():
            dev["after"] = dict(dev["before"])
    elif any(i.startswith("runtime:") for i in result["changed_items"]):
        diffs.append(runtime_diff(result))
    if params["persist"]:
        apply_persisted(module, root, rules, result, diffs)
    result["changed"] = bool(result["changed_items"])
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
