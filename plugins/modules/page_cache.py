#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: page_cache
short_description: Warm the page cache with a model's weight files (or evict them)
version_added: 0.1.0
description:
  - Reads the files matched by O(paths) so the first request of a model server is not a cold disk read.
  - Measures residency with C(mincore(2)) before and after, and reports bytes and how many files were
    already fully resident. Files already fully resident are not read, and when all are the module
    reports C(changed=false).
  - O(state=evicted) drops the files' pages from the cache with C(POSIX_FADV_DONTNEED) (for benchmarks).
author:
  - inferfleet engineers (@inferfleet)
options:
  paths:
    description:
      - Shell globs of files (C(**) matches directories recursively), below O(root).
    type: list
    elements: path
    required: true
  state:
    description:
      - V(warm) brings the files into the page cache; V(evicted) drops them from it.
    type: str
    choices: [warm, evicted]
    default: warm
  method:
    description:
      - V(read) reads every byte sequentially (synchronous, the files are resident when the module returns).
      - V(willneed) only calls C(posix_fadvise(POSIX_FADV_WILLNEED)) and lets the kernel read ahead in the background.
    type: str
    choices: [read, willneed]
    default: read
  allow_empty:
    description: Do not fail when the globs match no file.
    type: bool
    default: false
  root:
    description: Root the O(paths) are resolved below. Tests pass a temporary directory.
    type: path
    default: /
attributes:
  check_mode:
    description: Can run in check mode and predict the change without modifying the target.
    support: full
    details: Reports the files and bytes that would be read (or evicted) without reading them.
  diff_mode:
    description: Nothing a person would diff; the return values hold the byte counts.
    support: none
  platform:
    description: Target platforms.
    support: full
    platforms: [linux]
notes:
  - The page cache is shared and may be reclaimed under memory pressure; warming is not a guarantee.
"""

EXAMPLES = r"""
- name: Pre-load the weights so the first request is not a cold disk read
  inferfleet.gpu.page_cache:
    paths:
      - /models/Qwen2-VL-7B-Instruct/*.safetensors
      - /models/Qwen2-VL-7B-Instruct/*.json
"""

RETURN = r"""
files:
  description: Number of files matched.
  returned: always
  type: int
  sample: 4
files_resident_before:
  description: Files that were fully resident before.
  returned: always
  type: int
  sample: 1
bytes_total:
  description: Total size of the files.
  returned: always
  type: int
  sample: 16106127360
bytes_resident_before:
  description: Bytes in the page cache before.
  returned: always
  type: int
  sample: 4026531840
bytes_resident_after:
  description: Bytes in the page cache after (in check mode, what the module predicts).
  returned: always
  type: int
  sample: 16106127360
bytes_read:
  description: Bytes read (in check mode, the bytes of files that would be read).
  returned: always
  type: int
  sample: 12079595520
details:
  description: Per file path, size and resident bytes before and after.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/models/m/model-00001-of-00004.safetensors", "size": 4026531840,
            "resident_before": 0, "resident_after": 4026531840}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferfleet.gpu.plugins.module_utils import pagecache


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            state=dict(type="str", choices=["warm", "evicted"], default="warm"),
            method=dict(type="str", choices=["read", "willneed"], default="read"),
            allow_empty=dict(type="bool", default=False),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )


def process(module, path):
    """Measure, act on, and measure again one file."""
    state = module.params["state"]
    size, before = pagecache.resident_bytes(path)
    entry = {"path": path, "size": size, "resident_before": before, "resident_after": before, "read": 0}
    needs = (before < size) if state == "warm" else (before > 0)
    if not needs:
        return entry, False
    if module.check_mode:
        entry["resident_after"] = size if state == "warm" else 0
        entry["read"] = size if state == "warm" else 0
        return entry, True
    if state == "warm":
        entry["read"] = pagecache.warm(path, module.params["method"])
    else:
        pagecache.evict(path)
    entry["resident_after"] = pagecache.resident_bytes(path)[1]
    return entry, True


def main():
    module = build_module()
    params = module.params
    files = pagecache.expand(params["paths"], params["root"])
    if not files and not params["allow_empty"]:
        module.fail_json(msg="page_cache paths: %s match no file below %s (set allow_empty=true to accept that)"
                         % (", ".join(params["paths"]), params["root"]))
    details = []
    changed = False
    for path in files:
        try:
            entry, acted = process(module, path)
        except (IOError, OSError) as exc:
            module.fail_json(msg="page_cache: %s: %s" % (path, exc))
        details.append(entry)
        changed = changed or acted
    module.exit_json(
        changed=changed,
        files=len(details),
        files_resident_before=sum(1 for d in details if d["resident_before"] == d["size"]),
        bytes_total=sum(d["size"] for d in details),
        bytes_resident_before=sum(d["resident_before"] for d in details),
        bytes_resident_after=sum(d["resident_after"] for d in details),
        bytes_read=sum(d["read"] for d in details),
        details=details,
    )


if __name__ == "__main__":
    main()
