#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: thp
short_description: Set transparent hugepages at runtime and persist them across reboots
version_added: 0.1.0
description:
  - Sets C(enabled) and C(defrag) of transparent hugepages (THP) and the C(defrag) switch of khugepaged
    under C(/sys/kernel/mm/transparent_hugepage/).
  - Persists the values in a tmpfiles.d file (C(w) lines) that systemd-tmpfiles applies at every boot;
    this works whether or not systemd runs at the time the module runs.
  - Optionally also sets C(transparent_hugepage=) on the kernel command line in C(/etc/default/grub);
    that takes effect only after a reboot, so the module then returns RV(reboot_required=true) and never reboots.
  - Reports the runtime and the persisted state separately, each with its before and after.
author:
  - inferfleet engineers (@inferfleet)
options:
  enabled:
    description:
      - THP mode (C(/sys/kernel/mm/transparent_hugepage/enabled)).
      - Refused when the running kernel does not offer it.
    type: str
    choices: [always, madvise, never]
  defrag:
    description:
      - THP defrag mode (C(/sys/kernel/mm/transparent_hugepage/defrag)).
    type: str
    choices: [always, defer, defer+madvise, madvise, never]
  khugepaged_defrag:
    description:
      - Whether khugepaged may defragment (C(/sys/kernel/mm/transparent_hugepage/khugepaged/defrag)).
    type: bool
  runtime:
    description:
      - Write the values to sysfs now. Set to V(false) in containers that share the host kernel.
    type: bool
    default: true
  persist:
    description:
      - Write the tmpfiles.d file named by O(tmpfiles_path).
    type: bool
    default: true
  tmpfiles_path:
    description:
      - The tmpfiles.d file that re-applies the values at boot (below O(root)).
    type: path
    default: /etc/tmpfiles.d/60-inferfleet-thp.conf
  kernel_cmdline:
    description:
      - Also put C(transparent_hugepage=<enabled>) into C(GRUB_CMDLINE_LINUX_DEFAULT) of O(grub_defaults_path).
      - Needs a reboot (and C(update-grub)) to take effect; the module returns RV(reboot_required).
    type: bool
    default: false
  grub_defaults_path:
    description:
      - The grub defaults file (below O(root)).
    type: path
    default: /etc/default/grub
  root:
    description:
      - Root of the tree holding C(sys/), C(proc/) and C(etc/). Tests pass a tree in a temporary directory.
    type: path
    default: /
extends_documentation_fragment:
  - inferfleet.gpu.attributes.runtime_and_persisted
notes:
  - Runtime values are written to sysfs with a plain write (sysfs files cannot be renamed over);
    the tmpfiles.d and grub files are written atomically.
"""

EXAMPLES = r"""
- name: THP always, defrag only on madvise, persisted with tmpfiles.d
  inferfleet.gpu.thp:
    enabled: always
    defrag: madvise
    khugepaged_defrag: true

- name: In a container, only write the persisted configuration
  inferfleet.gpu.thp:
    enabled: always
    defrag: madvise
    runtime: false
"""

RETURN = r"""
runtime:
  description: Runtime values under /sys before and after (attributes not requested are left out of C(after)).
  returned: always
  type: dict
  sample: {"before": {"enabled": "madvise", "defrag": "madvise", "khugepaged_defrag": "1"},
           "after": {"enabled": "always", "defrag": "madvise", "khugepaged_defrag": "1"}, "changed": true}
persisted:
  description: Values in the tmpfiles.d file before and after.
  returned: always
  type: dict
  sample: {"path": "/etc/tmpfiles.d/60-inferfleet-thp.conf", "before": {}, "after": {"enabled": "always"}, "changed": true}
cmdline:
  description: The C(transparent_hugepage=) value in the grub defaults before and after (when O(kernel_cmdline=true)).
  returned: always
  type: dict
  sample: {"before": null, "after": "always", "changed": true, "booted": null}
changed_items:
  description: Which items changed, as C(runtime:<attr>), C(persisted:<attr>) and C(cmdline).
  returned: always
  type: list
  elements: str
  sample: ["runtime:enabled", "persisted:enabled"]
reboot_required:
  description: True when the kernel command line was changed or differs from the booted one.
  returned: always
  type: bool
  sample: false
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferfleet.gpu.plugins.module_utils import sysfs, thp as thp_utils

HEADER = ["Managed by inferfleet.gpu.thp: transparent hugepages, applied at boot by systemd-tmpfiles."]


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            enabled=dict(type="str", choices=list(thp_utils.ENABLED_MODES)),
            defrag=dict(type="str", choices=list(thp_utils.DEFRAG_MODES)),
            khugepaged_defrag=dict(type="bool"),
            runtime=dict(type="bool", default=True),
            persist=dict(type="bool", default=True),
            tmpfiles_path=dict(type="path", default="/etc/tmpfiles.d/60-inferfleet-thp.conf"),
            kernel_cmdline=dict(type="bool", default=False),
            grub_defaults_path=dict(type="path", default="/etc/default/grub"),
            root=dict(type="path", default="/"),
        ),
        required_one_of=[["enabled", "defrag", "khugepaged_defrag"]],
        required_if=[["kernel_cmdline", True, ["enabled"]]],
        supports_check_mode=True,
    )


def wanted_values(params):
    wanted = {}
    for attr in ("enabled", "defrag"):
        if params[attr] is not None:
            wanted[attr] = params[attr]
    if params["khugepaged_defrag"] is not None:
        wanted["khugepaged_defrag"] = "1" if params["khugepaged_defrag"] else "0"
    return wanted


def check_offered(module, runtime, wanted):
    """Refuse a mode the running kernel does not offer, naming the ones it does."""
    for attr, value in wanted.items():
        state = runtime.get(attr)
        if state and state["choices"] is not None and value not in state["choices"]:
            module.fail_json(msg="thp %s: the kernel does not offer %r; it offers %s (%s)"
                             % (attr, value, ", ".join(state["choices"]), state["path"]))


def apply_runtime(module, root, wanted, result):
    runtime = thp_utils.read_runtime(root)
    check_offered(module, runtime, wanted)
    before = dict((a, s["value"]) for a, s in runtime.items() if s is not None)
    after = dict(before)
    for attr, value in wanted.items():
        if runtime[attr] is None:
            module.fail_json(msg="thp %s: %s does not exist; is THP built into this kernel?"
                             % (attr, thp_utils.sys_path(root, attr)))
        if before.get(attr) != value:
            result["changed_items"].append("runtime:" + attr)
            after[attr] = value
            if not module.check_mode:
                try:
                    thp_utils.write_attr(root, attr, value)
                except (IOError, OSError) as exc:
                    module.fail_json(msg="thp %s: writing %r to %s failed: %s"
                                     % (attr, value, thp_utils.sys_path(root, attr), exc))
    if not module.check_mode and result["changed_items"]:
        after = dict((a, s["value"]) for a, s in thp_utils.read_runtime(root).items() if s is not None)
    result["runtime"] = {"before": before, "after": after,
                         "changed": any(i.startswith("runtime:") for i in result["changed_items"])}


def apply_persisted(module, root, wanted, result, diffs):
    path = sysfs.under_root(root, module.params["tmpfiles_path"])
    text = sysfs.read_text(path)
    before = thp_utils.parse_tmpfiles(text)
    new_text = thp_utils.render_tmpfiles(wanted, HEADER)
    changed = text != new_text
    for attr in thp_utils.ATTRS:
        if before.get(attr) != wanted.get(attr):
            result["changed_items"].append("persisted:" + attr)
    if changed and not any(i.startswith("persisted:") for i in result["changed_items"]):
        result["changed_items"].append("persisted:file")
    if changed:
        diffs.append({"before": text or "", "after": new_text,
                      "before_header": path, "after_header": path})
        if not module.check_mode:
            sysfs.write_atomic(module, path, new_text)
    result["persisted"] = {"path": path, "before": before, "after": wanted, "changed": changed}


def apply_cmdline(module, root, wanted, result, diffs):
    path = sysfs.under_root(root, module.params["grub_defaults_path"])
    text = sysfs.read_text(path)
    before = thp_utils.grub_cmdline_value(text)
    booted = thp_utils.proc_cmdline_value(root)
    value = wanted["enabled"]
    changed = before != value
    if changed:
        new_text = thp_utils.set_grub_cmdline(text, value)
        result["changed_items"].append("cmdline")
        diffs.append({"before": text or "", "after": new_text,
                      "before_header": path, "after_header": path})
        if not module.check_mode:
            sysfs.write_atomic(module, path, new_text)
    result["cmdline"] = {"path": path, "before": before, "after": value, "changed": changed, "booted": booted}
    result["reboot_required"] = changed or booted != value


def main():
    module = build_module()
    params = module.params
    root = params["root"]
    wanted = wanted_values(params)
    result = dict(changed=False, changed_items=[], reboot_required=False,
                  runtime={"before": {}, "after": {}, "changed": False},
                  persisted={"path": None, "before": {}, "after": {}, "changed": False},
                  cmdline={"before": None, "after": None, "changed": False, "booted": None})
    diffs = []
    if params["runtime"]:
        apply_runtime(module, root, wanted, result)
        runtime = result["runtime"]
        if runtime["changed"]:
            diffs.insert(0, {"before": "".join("%s: %s\n" % kv for kv in sorted(runtime["before"].items())),
                             "after": "".join("%s: %s\n" % kv for kv in sorted(runtime["after"].items())),
                             "before_header": "runtime " + os.path.join(root, thp_utils.THP_DIR),
                             "after_header": "runtime " + os.path.join(root, thp_utils.THP_DIR)})
    else:
        check_offered(module, thp_utils.read_runtime(root), wanted)
    if params["persist"]:
        apply_persisted(module, root, wanted, result, diffs)
    if params["kernel_cmdline"]:
        apply_cmdline(module, root, wanted, result, diffs)
    result["changed"] = bool(result["changed_items"])
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
