# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CPUs and NUMA nodes the reading process may use: cgroup cpusets (legacy, v1, v2) and its affinity.

Part of the topology reader (``topology.gather`` assembles the parts). Every
reader takes ``root`` (``/`` or a captured tree) and appends oddities of the
tree to the caller's ``warnings`` list instead of raising.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.inferfleet.gpu.plugins.module_utils import sysfs
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import CpuListError, format_cpulist, parse_cpulist


def _parse_mounts(root):
    """List of (mountpoint, fstype, options set) from mountinfo or mounts."""
    mounts = []
    text = sysfs.read(sysfs.under_root(root, "proc/self/mountinfo"))
    if text:
        for line in text.splitlines():
            left, sep, right = line.partition(" - ")
            if not sep:
                continue
            fields, rfields = left.split(), right.split()
            if len(fields) < 5 or len(rfields) < 3:
                continue
            options = set(fields[5].split(",")) | set(rfields[2].split(",")) if len(fields) > 5 else set(rfields[2].split(","))
            mounts.append((_unescape_mount(fields[4]), rfields[0], options))
        return mounts
    text = sysfs.read(sysfs.under_root(root, "proc/mounts"))
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) >= 4:
            mounts.append((_unescape_mount(fields[1]), fields[2], set(fields[3].split(","))))
    return mounts


def _unescape_mount(path):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _cgroup_paths(root):
    """(cgroup v1 cpuset path, cgroup v2 path) of the reading process."""
    v1 = v2 = None
    text = sysfs.read(sysfs.under_root(root, "proc/self/cgroup"))
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hier, controllers, path = parts
        if hier == "0" and controllers == "":
            v2 = path
        elif "cpuset" in controllers.split(","):
            v1 = path
    legacy = sysfs.read(sysfs.under_root(root, "proc/self/cpuset"))
    if legacy:
        if v1 is None:
            v1 = legacy
        if v2 is None:
            v2 = legacy
    return v1, v2


def read_cpuset(root):
    """The cgroup cpuset of the reading process: (cpus, mems, source) or Nones.

    Handles the legacy ``cpuset`` filesystem, cgroup v1 (with or without
    ``noprefix``) and cgroup v2 (walking up to the nearest cgroup that has
    the cpuset controller enabled).
    """
    v1_path, v2_path = _cgroup_paths(root)
    for mountpoint, fstype, options in _parse_mounts(root):
        if fstype == "cpuset" or (fstype == "cgroup" and "cpuset" in options):
            if v1_path is None:
                continue
            prefix = "" if (fstype == "cpuset" or "noprefix" in options) else "cpuset."
            base = sysfs.under_root(sysfs.under_root(root, mountpoint), v1_path)
            cpus = sysfs.read(os.path.join(base, prefix + "effective_cpus"))
            if cpus is None:
                cpus = sysfs.read(os.path.join(base, prefix + "cpus"))
            mems = sysfs.read(os.path.join(base, prefix + "effective_mems"))
            if mems is None:
                mems = sysfs.read(os.path.join(base, prefix + "mems"))
            if cpus is not None or mems is not None:
                return cpus, mems, os.path.normpath(os.path.join(mountpoint, v1_path.lstrip("/")))
        elif fstype == "cgroup2" and v2_path is not None:
            rel = v2_path.strip("/")
            while True:
                base = sysfs.under_root(sysfs.under_root(root, mountpoint), rel)
                cpus = sysfs.read(os.path.join(base, "cpuset.cpus.effective"))
                mems = sysfs.read(os.path.join(base, "cpuset.mems.effective"))
                if cpus is not None or mems is not None:
                    return cpus, mems, "/" + os.path.join(mountpoint.strip("/"), rel).rstrip("/")
                if not rel:
                    break
                rel = os.path.dirname(rel)
    return None, None, None


def read_allowed(root, online, warnings):
    """CPUs and NUMA nodes the reading process may use.

    ``cpus`` = online ∩ cgroup cpuset ∩ the process affinity
    (``Cpus_allowed_list`` of /proc/self/status, when present).
    ``mems`` is None when no cpuset restriction on memory nodes is known.
    """
    cpus = set(online)
    mems = None
    sources = []
    cg_cpus, cg_mems, where = read_cpuset(root)
    if cg_cpus is not None:
        try:
            cpus &= set(parse_cpulist(cg_cpus))
            sources.append("cgroup %s" % where)
        except CpuListError as exc:
            warnings.append("cpuset %s: %s" % (where, exc))
    if cg_mems is not None:
        try:
            mems = set(parse_cpulist(cg_mems))
        except CpuListError as exc:
            warnings.append("cpuset %s: %s" % (where, exc))
    status = sysfs.read(sysfs.under_root(root, "proc/self/status"))
    for line in (status or "").splitlines():
        key, _sep, value = line.partition(":")
        if key == "Cpus_allowed_list":
            try:
                cpus &= set(parse_cpulist(value))
                sources.append("affinity")
            except CpuListError:
                pass
    if online and not cpus:
        warnings.append("the cpuset allows none of the online CPUs %s; using all online CPUs" % format_cpulist(online))
        cpus = set(online)
    return {"cpus": sorted(cpus), "mems": None if mems is None else sorted(mems), "source": ", ".join(sources) or None}
