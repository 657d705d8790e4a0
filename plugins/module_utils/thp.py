# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readers and renderers for transparent hugepages (THP).

Plain functions that take a ``root`` path so tests can run them on a tree
built in ``tmp_path``.  Nothing here calls Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shlex

from ansible_collections.inferfleet.gpu.plugins.module_utils import sysfs

THP_DIR = "sys/kernel/mm/transparent_hugepage"
# The sysfs attributes this module knows, by our name -> path below THP_DIR.
ATTRS = {
    "enabled": "enabled",
    "defrag": "defrag",
    "khugepaged_defrag": "khugepaged/defrag",
}
# What the kernel documents (Documentation/admin-guide/mm/transhuge.rst).
ENABLED_MODES = ("always", "madvise", "never")
DEFRAG_MODES = ("always", "defer", "defer+madvise", "madvise", "never")
CMDLINE_KEY = "transparent_hugepage"


def sys_path(root, attr):
    """Absolute path of a THP attribute (``enabled``...) under ``root``."""
    return os.path.join(root, THP_DIR, ATTRS[attr])


def read_attr(root, attr):
    """Read one attribute; ``None`` when the file does not exist."""
    path = sys_path(root, attr)
    text = sysfs.read(path)
    if text is None:
        return None
    value, choices = sysfs.parse_choice(text)
    return {"value": value, "choices": choices, "path": path}


def read_runtime(root):
    """Runtime THP state: ``{attr: {"value", "choices", "path"} or None}``."""
    return dict((attr, read_attr(root, attr)) for attr in ATTRS)


def write_attr(root, attr, value):
    """Write a value to a sysfs attribute (sysfs takes a plain write, not a rename)."""
    sysfs.write_value(sys_path(root, attr), value)


def tmpfiles_target(attr):
    """The path a tmpfiles.d line names for an attribute (always the real /sys)."""
    return "/" + THP_DIR + "/" + ATTRS[attr]


def parse_tmpfiles(text):
    """Values persisted by ``w`` lines of a tmpfiles.d file: ``{attr: value}``."""
    by_path = dict((tmpfiles_target(a), a) for a in ATTRS)
    found = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 6)
        if len(fields) < 7 or not fields[0].startswith("w"):
            continue
        attr = by_path.get(fields[1])
        if attr:
            found[attr] = fields[6].strip()
    return found


def render_tmpfiles(values, header):
    """tmpfiles.d content writing ``values`` (``{attr: value}``) at boot."""
    lines = ["# " + h for h in header]
    for attr in ATTRS:
        if attr in values:
            lines.append("w %s - - - - %s" % (tmpfiles_target(attr), values[attr]))
    return "\n".join(lines) + "\n"


_GRUB_RE = re.compile(r'^(GRUB_CMDLINE_LINUX_DEFAULT)=(["\']?)(.*)\2\s*$')


def grub_cmdline_value(text):
    """The ``transparent_hugepage=`` value in /etc/default/grub (or ``None``)."""
    for line in (text or "").splitlines():
        match = _GRUB_RE.match(line)
        if match:
            for word in shlex.split(match.group(3)):
                if word.startswith(CMDLINE_KEY + "="):
                    return word.split("=", 1)[1]
    return None


def set_grub_cmdline(text, value):
    """Return /etc/default/grub text with ``transparent_hugepage=value``."""
    out = []
    done = False
    for line in (text or "").splitlines():
        match = _GRUB_RE.match(line)
        if match and not done:
            words = [w for w in shlex.split(match.group(3)) if not w.startswith(CMDLINE_KEY + "=")]
            words.append("%s=%s" % (CMDLINE_KEY, value))
            line = '%s="%s"' % (match.group(1), " ".join(words))
            done = True
        out.append(line)
    if not done:
        out.append('GRUB_CMDLINE_LINUX_DEFAULT="%s=%s"' % (CMDLINE_KEY, value))
    return "\n".join(out) + "\n"


def proc_cmdline_value(root):
    """The ``transparent_hugepage=`` value the running kernel was booted with."""
    for word in (sysfs.read(sysfs.under_root(root, "/proc/cmdline")) or "").split():
        if word.startswith(CMDLINE_KEY + "="):
            return word.split("=", 1)[1]
    return None
