#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: read_files
short_description: Read several small files and what kind of thing each path is, in one call
version_added: 0.1.0
description:
  - For each path of O(paths), whether it exists, what it is (following symlinks), its mode and owner, where a
    symlink leads, and the text of a regular file (procfs files included).
  - What a series of M(ansible.builtin.stat) and M(ansible.builtin.slurp) tasks does, at the cost of one round
    trip per host instead of one per path (the M(inferfleet.gpu.host_tuning) role reads the files it compares
    against, such as its sysctl drop-in, C(/proc/swaps), C(/etc/fstab), the mounts and the model volume device, with it).
  - Never changes anything.
author:
  - inferfleet engineers (@inferfleet)
options:
  paths:
    description: Absolute paths to look at. Only regular files are read; other kinds report their type only.
    type: list
    elements: path
    required: true
  max_bytes:
    description: Largest file read; a bigger regular file fails the module naming it (these are configuration files).
    type: int
    default: 1048576
  root:
    description: Root of the tree every path is taken in. Tests pass a tree in a temporary directory.
    type: path
    default: /
attributes:
  check_mode:
    description: Reads in check mode too (it never changes anything).
    support: full
  diff_mode:
    description: Nothing to show, it never changes anything.
    support: none
  platform:
    description: POSIX hosts.
    support: full
    platforms: [posix]
"""

EXAMPLES = r"""
- name: The drop-in and the swaps, in one call
  inferfleet.gpu.read_files:
    paths: [/etc/sysctl.d/60-inferfleet.conf, /proc/swaps, /run/systemd/container]
  register: seen

- name: Active swaps
  ansible.builtin.debug:
    msg: "{{ seen.files['/proc/swaps'].content.splitlines()[1:] | map('split') | map('first') | list }}"
"""

RETURN = r"""
files:
  description: One entry per path of O(paths), keyed by the path as given.
  returned: always
  type: dict
  contains:
    exists:
      description: The path exists (a symlink counts when its target exists).
      type: bool
    type:
      description: What the path is after following symlinks, null when it does not exist.
      type: str
      sample: file
      choices: [file, directory, block, char, socket, fifo]
    link_target:
      description: Where a symlink finally leads (the resolved path), null when the path is not a symlink.
      type: str
    mode:
      description: The permission bits (octal string such as V(0644)) after following symlinks, null when absent.
      type: str
    uid:
      description: The owner's user ID, null when absent.
      type: int
    gid:
      description: The owner's group ID, null when absent.
      type: int
    content:
      description: The text of a regular file (undecodable bytes replaced by U+FFFD), null for anything else.
      type: str
  sample: {"/proc/swaps": {"exists": true, "type": "file", "link_target": null, "mode": "0444", "uid": 0, "gid": 0,
           "content": "Filename\tType\tSize\tUsed\tPriority\n"}}
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule

KINDS = ((stat.S_ISREG, "file"), (stat.S_ISDIR, "directory"), (stat.S_ISBLK, "block"), (stat.S_ISCHR, "char"),
         (stat.S_ISSOCK, "socket"), (stat.S_ISFIFO, "fifo"))


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            max_bytes=dict(type="int", default=1048576),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )


def look(root, path, max_bytes):
    """(entry, error) for one path taken under root."""
    real = os.path.join(root, os.path.normpath(path).lstrip("/"))
    entry = dict(exists=False, type=None, link_target=None, mode=None, uid=None, gid=None, content=None)
    if os.path.islink(real):
        target = os.path.realpath(real)
        if root not in ("", "/"):
            target = "/" + os.path.relpath(target, os.path.realpath(root))
        entry["link_target"] = target
    try:
        st = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        return entry, None
    entry["exists"] = True
    entry["type"] = next((name for test, name in KINDS if test(st.st_mode)), None)
    entry.update(mode="%04o" % stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)
    if entry["type"] == "file":
        with open(real, "rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            return entry, "%s is larger than max_bytes (%d)" % (path, max_bytes)
        entry["content"] = data.decode("utf-8", errors="replace")
    return entry, None


def main():
    module = build_module()
    params = module.params
    relative = [p for p in params["paths"] if not os.path.isabs(p)]
    if relative:
        module.fail_json(msg="paths must be absolute, got %s" % ", ".join(repr(p) for p in relative))
    if params["max_bytes"] < 1:
        module.fail_json(msg="max_bytes must be at least 1, got %d" % params["max_bytes"])
    files = {}
    for path in params["paths"]:
        try:
            entry, error = look(params["root"], path, params["max_bytes"])
        except OSError as exc:
            module.fail_json(msg="%s cannot be read: %s" % (path, exc))
        if error:
            module.fail_json(msg=error)
        files[path] = entry
    module.exit_json(changed=False, files=files)


if __name__ == "__main__":
    main()
