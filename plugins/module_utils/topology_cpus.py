# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CPUs of a host: online, offline and possible CPUs, SMT siblings, packages.

Part of the topology reader (``topology.gather`` assembles the parts). Every
reader takes ``root`` (``/`` or a captured tree) and appends oddities of the
tree to the caller's ``warnings`` list instead of raising.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.inferfleet.gpu.plugins.module_utils import sysfs
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import CpuListError, parse_cpulist, parse_cpumask

_CPU_DIR = re.compile(r"^cpu(\d+)$")


def cpus_from_list_or_mask(list_path, mask_path, warnings=None, what=None, second_is_list=False):
    """CPU ids from a ``*list`` file, or from the hex mask file when absent.

    With ``second_is_list`` the arguments are swapped: the first path is the
    mask and the second the list (to try the file a tree is known to have
    first). Returns None when neither file can be read.
    """
    for path, is_list in ((list_path, not second_is_list), (mask_path, second_is_list)):
        text = sysfs.read(path) if path else None
        if text is None:
            continue
        try:
            return set(parse_cpulist(text) if is_list else parse_cpumask(text))
        except CpuListError as exc:
            if warnings is not None:
                warnings.append("%s: %s" % (what or path, exc))
    return None


def read_cpus(root, warnings):
    """Online CPUs, SMT sibling groups and packages.

    Returns a dict with ``online`` (sorted ids), ``possible``, ``offline``
    (possible but not online, like the kernel's own ``offline`` file),
    ``smt_groups`` (list of sorted id lists, online CPUs only, ordered by
    their first CPU), ``packages`` (count) and ``threads_per_core``.
    """
    cpu_dir = sysfs.under_root(root, "sys/devices/system/cpu")
    dirs = set()
    for name in sysfs.listdir(cpu_dir):
        match = _CPU_DIR.match(name)
        if match:
            dirs.add(int(match.group(1)))

    online_text = sysfs.read(os.path.join(cpu_dir, "online"))
    online = None
    if online_text is not None:
        try:
            online = set(parse_cpulist(online_text))
        except CpuListError as exc:
            warnings.append("%s/online: %s" % (cpu_dir, exc))
    if online is None:
        # Old kernels / captures without the summary file: a CPU directory
        # whose ``online`` file says 0 is offline; cpu0 usually has none.
        online = set(cpu for cpu in dirs if sysfs.read(os.path.join(cpu_dir, "cpu%d" % cpu, "online")) != "0")
    if not online:
        warnings.append("no online CPU found under %s" % cpu_dir)

    possible_text = sysfs.read(os.path.join(cpu_dir, "possible"))
    try:
        possible = set(parse_cpulist(possible_text)) if possible_text else set(dirs) | online
    except CpuListError:
        possible = set(dirs) | online

    groups = []
    seen = set()
    packages = set()
    # Which sibling file this kernel has, learnt from the first CPU, so a
    # 256-CPU capture does not pay 256 failed opens of a missing file.
    order = [("thread_siblings_list", True), ("core_cpus_list", True), ("thread_siblings", False),
             ("core_cpus", False)]
    if online:
        present = set(sysfs.listdir(os.path.join(cpu_dir, "cpu%d" % min(online), "topology")))
        order.sort(key=lambda item: item[0] not in present)
    for cpu in sorted(online):
        if cpu in seen:
            continue
        topo = os.path.join(cpu_dir, "cpu%d" % cpu, "topology")
        package = sysfs.read_int(os.path.join(topo, "physical_package_id"))
        if package is not None:
            packages.add(package)
        siblings = None
        for name, is_list in order:
            text = sysfs.read(os.path.join(topo, name))
            if text is None:
                continue
            try:
                siblings = set(parse_cpulist(text) if is_list else parse_cpumask(text))
            except CpuListError:
                continue
            break
        group = (siblings or set([cpu])) & online
        group.add(cpu)
        group -= seen
        seen |= group
        groups.append(sorted(group))
    groups.sort(key=lambda g: g[0])
    return {
        "online": sorted(online),
        "possible": sorted(possible | online),
        "offline": sorted((possible | dirs) - online),
        "smt_groups": groups,
        "packages": len(packages) if packages else None,
        "threads_per_core": max(len(g) for g in groups) if groups else 0,
    }
