#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: irq_affinity
short_description: Keep interrupts off the model servers' CPUs and report what cannot be moved
version_added: 0.1.0
description:
  - Sets C(/proc/irq/default_smp_affinity) (the CPUs of IRQs requested from now on) to O(cpus), and moves every
    IRQ whose C(smp_affinity_list) includes a CPU outside O(cpus) onto O(cpus). An IRQ already within O(cpus)
    (for example pinned to one of them by irqbalance) is left as it is.
  - Reports the IRQs the kernel refuses to move (managed IRQs of multi-queue drivers answer EIO) and the kernel
    threads that run on the CPUs outside O(cpus) (per-CPU threads such as C(ksoftirqd/N) cannot move).
  - Runtime only; persisting across reboots is the caller's job (a boot unit and irqbalance's
    C(IRQBALANCE_BANNED_CPULIST), as the M(inferfleet.gpu.host_tuning) role does).
author:
  - inferfleet engineers (@inferfleet)
options:
  cpus:
    description:
      - The CPUs interrupts may use (cpulist such as V(0,56,112,168)). Must be non-empty and online.
    type: str
    required: true
  default_affinity:
    description: Set C(/proc/irq/default_smp_affinity).
    type: bool
    default: true
  move_irqs:
    description: Move the existing IRQs.
    type: bool
    default: true
  root:
    description: Root of the tree holding C(proc/irq) and C(sys/devices/system/cpu). Tests pass a tree in a temporary directory.
    type: path
    default: /
attributes:
  check_mode:
    description: Predicts the IRQs it would move (it cannot know in advance which the kernel refuses).
    support: full
  diff_mode:
    description: Returns the default affinity and each moved IRQ's affinity before and after.
    support: full
  platform:
    description: Linux hosts with their own kernel (not containers sharing the host's C(/proc/irq)).
    support: full
    platforms: [posix]
notes:
  - The values are written with plain writes (procfs files cannot be renamed over).
  - In check mode a refused IRQ is predicted as a change; the real run reports it under RV(refused) instead.
"""

EXAMPLES = r"""
- name: Interrupts only on the housekeeping CPUs
  inferfleet.gpu.irq_affinity:
    cpus: "0,56,112,168"
  register: irq

- name: Say what stays on the model servers' CPUs
  ansible.builtin.debug:
    msg: "{{ irq.refused | length }} IRQs refused; pinned kernel threads: {{ irq.kernel_threads.pinned }}"
"""

RETURN = r"""
default_smp_affinity:
  description: The CPUs of C(/proc/irq/default_smp_affinity) before and after (cpulists).
  returned: always
  type: dict
  sample: {"before": "0-3", "after": "0"}
moved:
  description: IRQs moved onto O(cpus) (predicted in check mode).
  returned: always
  type: list
  elements: int
  sample: [24, 25]
refused:
  description: IRQs the kernel did not let move, with their handlers, affinity and the error.
  returned: always
  type: list
  elements: dict
  sample: [{"irq": 27, "actions": ["virtio1-req.0"], "affinity": "1", "error": "[Errno 5] Input/output error"}]
irq_count:
  description: How many IRQs have an affinity file.
  returned: always
  type: int
kernel_threads:
  description:
    - Kernel threads allowed on the CPUs outside O(cpus), by kind (digits replaced by N), as
      C(pinned) (bound there or not movable, for example C(ksoftirqd/N), C(migration/N)) and C(unbound).
  returned: always
  type: dict
  sample: {"pinned": {"ksoftirqd/N": 1, "migration/N": 1}, "unbound": {"rcu_preempt": 1}}
changed_items:
  description: What changed, as C(runtime:default_smp_affinity) and C(runtime:irq/<n>).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferfleet.gpu.plugins.module_utils import irq as irqs
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import CpuListError, format_cpulist, parse_cpulist


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            cpus=dict(type="str", required=True),
            default_affinity=dict(type="bool", default=True),
            move_irqs=dict(type="bool", default=True),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )


def online_cpus(root):
    try:
        with open("%s/sys/devices/system/cpu/online" % root.rstrip("/")) as handle:
            return parse_cpulist(handle.read())
    except (IOError, OSError, CpuListError):
        return None


def wanted_cpus(module, root):
    text = module.params["cpus"]
    try:
        cpus = parse_cpulist(text)
    except CpuListError as exc:
        module.fail_json(msg="irq_affinity cpus: %s" % exc)
    if not cpus:
        module.fail_json(msg="irq_affinity cpus: empty; give the CPUs interrupts may use, e.g. 0")
    online = online_cpus(root)
    if online is not None and not cpus <= online:
        module.fail_json(msg="irq_affinity cpus=%s: CPUs %s are not online (online: %s)"
                         % (text, format_cpulist(cpus - online), format_cpulist(online)))
    return cpus, online


def apply_default(module, root, cpus, result, diff):
    before = irqs.read_default_affinity(root)
    result["default_smp_affinity"] = {"before": format_cpulist(before or ()), "after": format_cpulist(before or ())}
    if before is None or not module.params["default_affinity"] or before == cpus:
        return
    result["changed_items"].append("runtime:default_smp_affinity")
    result["default_smp_affinity"]["after"] = format_cpulist(cpus)
    diff["before"].append("default_smp_affinity: %s\n" % format_cpulist(before))
    diff["after"].append("default_smp_affinity: %s\n" % format_cpulist(cpus))
    if not module.check_mode:
        try:
            irqs.write_default_affinity(root, cpus)
        except (IOError, OSError) as exc:
            module.fail_json(msg="irq_affinity: writing %s to /proc/irq/default_smp_affinity failed: %s"
                             % (format_cpulist(cpus), exc), **result)


def apply_irqs(module, root, cpus, result, diff):
    found = irqs.read_irqs(root)
    result["irq_count"] = len(found)
    if not module.params["move_irqs"]:
        return
    for item in found:
        if not item["affinity"] - cpus:
            continue
        label = "irq/%d" % item["irq"]
        if module.check_mode:
            moved = True
        else:
            error = None
            try:
                irqs.write_irq_affinity(root, item["irq"], cpus)
            except (IOError, OSError) as exc:
                error = str(exc)
            after = irqs.read_irq_affinity(root, item["irq"])
            moved = error is None and after is not None and not after - cpus
            if not moved:
                result["refused"].append({"irq": item["irq"], "actions": item["actions"],
                                          "affinity": format_cpulist(after if after is not None else item["affinity"]),
                                          "error": error or "the kernel kept affinity %s"
                                          % format_cpulist(after if after is not None else item["affinity"])})
        if moved:
            result["moved"].append(item["irq"])
            result["changed_items"].append("runtime:" + label)
            diff["before"].append("%s %s: %s\n" % (label, ",".join(item["actions"]), format_cpulist(item["affinity"])))
            diff["after"].append("%s %s: %s\n" % (label, ",".join(item["actions"]), format_cpulist(cpus)))


def main():
    module = build_module()
    root = module.params["root"]
    cpus, online = wanted_cpus(module, root)
    result = dict(changed=False, changed_items=[], moved=[], refused=[], irq_count=0,
                  default_smp_affinity={"before": "", "after": ""}, kernel_threads={})
    diff = {"before": [], "after": []}
    apply_default(module, root, cpus, result, diff)
    apply_irqs(module, root, cpus, result, diff)
    others = (online or set()) - cpus
    result["kernel_threads"] = irqs.kernel_threads_on(root, others) if others else {"pinned": {}, "unbound": {}}
    result["changed"] = bool(result["changed_items"])
    if module._diff and result["changed"]:
        result["diff"] = {"before": "".join(diff["before"]), "after": "".join(diff["after"]),
                          "before_header": "/proc/irq", "after_header": "/proc/irq"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
