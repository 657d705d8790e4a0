#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: managed_files
short_description: Keep a set of small files, directories and symlinks as given, in one call
version_added: 0.1.0
description:
  - Makes each directory of O(directories) exist, each file of O(files) hold exactly its content and mode, and each
    symlink of O(links) point at its source, all in one module run.
  - What a loop of M(ansible.builtin.file) and M(ansible.builtin.copy) tasks does, at the cost of one round trip
    per host instead of one per item (the M(inferfleet.gpu.host_tuning) role writes its systemd slice, drop-ins
    and boot unit with it).
  - Files are written atomically (a temporary file in the same directory, renamed over the old one); a file whose
    content and mode already match is not touched.
author:
  - inferfleet engineers (@inferfleet)
options:
  directories:
    description:
      - Absolute paths of directories to create (with their parents) when absent, mode O(directory_mode).
        An existing directory is left as it is.
    type: list
    elements: path
    default: []
  directory_mode:
    description: Mode of the directories this module creates (octal string).
    type: str
    default: "0755"
  files:
    description: Files to write.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the file. Its directory must exist or be listed in O(directories).
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      mode:
        description: Mode of the file (octal string).
        type: str
        default: "0644"
  links:
    description: Symlinks to make.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path of the symlink. An existing symlink pointing elsewhere is replaced; an existing
          file or directory there is an error.
        type: path
        required: true
      src:
        description: What the symlink points at (need not exist).
        type: path
        required: true
  root:
    description: Root of the tree every path is taken in. Tests pass a tree in a temporary directory.
    type: path
    default: /
attributes:
  check_mode:
    description: Reports what it would create or rewrite and writes nothing.
    support: full
  diff_mode:
    description: One diff per changed path (a file's content before and after; a directory's or a link's state).
    support: full
  platform:
    description: POSIX hosts.
    support: full
    platforms: [posix]
notes:
  - Owner and group are not managed; new files and directories belong to the user the module runs as.
"""

EXAMPLES = r"""
- name: A systemd slice and a drop-in, in one call
  inferfleet.gpu.managed_files:
    directories:
      - /etc/systemd/system/system.slice.d
    files:
      - path: /etc/systemd/system/inferfleet.slice
        content: |
          [Slice]
      - path: /etc/systemd/system/system.slice.d/60-cpus.conf
        content: |
          [Slice]
          AllowedCPUs=0
    links:
      - src: /etc/systemd/system/inferfleet-irq-affinity.service
        dest: /etc/systemd/system/sysinit.target.wants/inferfleet-irq-affinity.service
  register: written

- name: Reload systemd when a unit file changed
  ansible.builtin.systemd_service:
    daemon_reload: true
  when: written.changed_files | length > 0
"""

RETURN = r"""
changed_paths:
  description: Every path created or rewritten (predicted in check mode), as given, in the order directories, files, links.
  returned: always
  type: list
  elements: str
  sample: ["/etc/systemd/system/system.slice.d", "/etc/systemd/system/inferfleet.slice"]
changed_directories:
  description: The directories of O(directories) that were created.
  returned: always
  type: list
  elements: str
changed_files:
  description: The files of O(files) that were written (new, other content or other mode).
  returned: always
  type: list
  elements: str
changed_links:
  description: The symlinks of O(links) that were made or repointed.
  returned: always
  type: list
  elements: str
"""

import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            directories=dict(type="list", elements="path", default=[]),
            directory_mode=dict(type="str", default="0755"),
            files=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                content=dict(type="str", required=True),
                mode=dict(type="str", default="0644"),
            )),
            links=dict(type="list", elements="dict", default=[], options=dict(
                dest=dict(type="path", required=True),
                src=dict(type="path", required=True),
            )),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )


def parse_mode(module, value, what):
    try:
        mode = int(str(value), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        module.fail_json(msg="%s must be an octal mode such as 0644, got %r" % (what, value))
    return mode


def check_paths(module, params):
    """Absolute paths only, each file and link named once: before anything is read or written."""
    named = [("directories", p) for p in params["directories"]]
    named += [("files[].path", f["path"]) for f in params["files"]]
    named += [("links[].dest", link["dest"]) for link in params["links"]]
    seen = set()
    for what, path in named:
        if not os.path.isabs(path):
            module.fail_json(msg="%s must be absolute paths, got %r" % (what, path))
        norm = os.path.normpath(path)
        if what != "directories" and norm in seen:
            module.fail_json(msg="%s names %s twice" % (what, path))
        seen.add(norm)


def under(root, path):
    return os.path.join(root, os.path.normpath(path).lstrip("/"))


def read_file(path):
    """(content, mode) of a regular file, or (None, None) when it is absent."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return False, None
    with open(path, "rb") as handle:
        data = handle.read()
    return data.decode("utf-8", errors="surrogateescape"), stat.S_IMODE(st.st_mode)


def write_atomic(module, path, content, mode):
    fd, tmp = tempfile.mkstemp(prefix=".ansible-managed-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode("utf-8", errors="surrogateescape"))
        os.chmod(tmp, mode)
        module.atomic_move(tmp, path)
        os.chmod(path, mode)  # atomic_move gives a new file the umask's mode
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def plan_and_apply(module, params):
    root = params["root"]
    result = dict(changed=False, changed_paths=[], changed_directories=[], changed_files=[], changed_links=[])
    diffs = []
    check = module.check_mode
    dir_mode = parse_mode(module, params["directory_mode"], "directory_mode")
    file_modes = [parse_mode(module, f["mode"], "files[].mode of %s" % f["path"]) for f in params["files"]]

    for path in params["directories"]:
        real = under(root, path)
        if os.path.isdir(real):
            continue
        if os.path.lexists(real):
            module.fail_json(msg="directories: %s exists and is not a directory" % path)
        result["changed_directories"].append(path)
        diffs.append(dict(before_header=path, after_header=path, before="absent\n", after="directory\n"))
        if not check:
            os.makedirs(real, mode=dir_mode, exist_ok=True)
            os.chmod(real, dir_mode)

    planned_dirs = {os.path.normpath(p) for p in params["directories"]}
    for spec, mode in zip(params["files"], file_modes):
        path, real = spec["path"], under(root, spec["path"])
        before, before_mode = read_file(real)
        if before is False:
            module.fail_json(msg="files: %s exists and is not a regular file" % path)
        if before == spec["content"] and before_mode == mode:
            continue
        parent = os.path.dirname(os.path.normpath(path))
        if not os.path.isdir(os.path.dirname(real)) and not (check and parent in planned_dirs):
            module.fail_json(msg="files: the directory of %s does not exist (list it in directories)" % path)
        result["changed_files"].append(path)
        diffs.append(dict(
            before_header="%s%s" % (path, "" if before_mode in (None, mode) else " (mode %04o)" % before_mode),
            after_header="%s%s" % (path, "" if before_mode in (None, mode) else " (mode %04o)" % mode),
            before=before or "", after=spec["content"]))
        if not check:
            write_atomic(module, real, spec["content"], mode)

    for spec in params["links"]:
        dest, real = spec["dest"], under(root, spec["dest"])
        if os.path.islink(real):
            current = os.readlink(real)
            if current == spec["src"]:
                continue
        elif os.path.lexists(real):
            module.fail_json(msg="links: %s exists and is not a symlink" % dest)
        else:
            current = None
        parent = os.path.dirname(os.path.normpath(dest))
        if not os.path.isdir(os.path.dirname(real)) and not (check and parent in planned_dirs):
            module.fail_json(msg="links: the directory of %s does not exist (list it in directories)" % dest)
        result["changed_links"].append(dest)
        diffs.append(dict(before_header=dest, after_header=dest,
                          before="absent\n" if current is None else "link to %s\n" % current,
                          after="link to %s\n" % spec["src"]))
        if not check:
            tmp = os.path.join(os.path.dirname(real), ".ansible-managed-link-%d" % os.getpid())
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(spec["src"], tmp)
            os.rename(tmp, real)

    result["changed_paths"] = result["changed_directories"] + result["changed_files"] + result["changed_links"]
    result["changed"] = bool(result["changed_paths"])
    if module._diff:
        result["diff"] = diffs
    return result


def main():
    module = build_module()
    check_paths(module, module.params)
    module.exit_json(**plan_and_apply(module, module.params))


if __name__ == "__main__":
    main()
