# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CPU partition of a serving host: the model servers' CPUs versus everything else.

A pure function of the ``gpu_topology`` fact and the placement inputs, so the
filter ``inferfleet.gpu.cpu_partition`` runs it on the controller and the tests
run it on any captured or synthetic topology. It plans with
:func:`plan_placement` (the same plan vllm_service renders its units from) and
splits the CPUs the service manager hands out into:

* ``instance_cpus``: the union of every instance's CPUs (kept free for the
  model servers);
* ``system_cpus``: all the other CPUs: the housekeeping CPUs of the plan and
  the CPUs of NUMA nodes that hold none of the planned GPUs. The rest of the
  host (``system.slice``, ``user.slice``, ``init.scope``, IRQs) is confined
  to these.

``service_cpus`` matters on a host that is already partitioned: the process
that gathered the topology (an SSH session in ``user.slice``) is then itself
confined to the system CPUs, so its ``cpus.allowed`` is not what a unit in
the model servers' slice can get. Pass the CPUs of the cgroup root
(``/sys/fs/cgroup/cpuset.cpus.effective``) there and they replace
``cpus.allowed`` for the plan.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import (
    CpuListError, format_cpulist, format_cpumask, parse_cpulist)
from ansible_collections.inferfleet.gpu.plugins.module_utils.placement import PlacementError, plan_placement


class PartitionError(ValueError):
    """A partition that cannot be made (the message says why)."""


def _cpus(name, text):
    try:
        return parse_cpulist(text if text is not None else "")
    except CpuListError as exc:
        raise PartitionError("%s: %s" % (name, exc))


def with_service_cpus(topology, service_cpus):
    """A copy of ``topology`` whose ``cpus.allowed`` is ``service_cpus`` ∩ online.

    ``None`` or ``""`` returns the topology unchanged.
    """
    if service_cpus is None or not str(service_cpus).strip():
        return topology
    if not isinstance(topology, dict) or not isinstance(topology.get("cpus"), dict):
        return topology
    wanted = _cpus("service_cpus", str(service_cpus))
    online = _cpus("cpus.online", topology["cpus"].get("online"))
    usable = (wanted & online) if online else wanted
    if not usable:
        raise PartitionError("service_cpus %s holds none of the online CPUs %s"
                             % (service_cpus, format_cpulist(online) or "none"))
    result = copy.deepcopy(topology)
    result["cpus"]["allowed"] = format_cpulist(usable)
    return result


def plan_partition(topology, gpus_per_instance=None, instances=None, housekeeping=None, service_cpus=None):
    """Plan the instances and split the host's CPUs between them and the system.

    Returns ``{"plan": [...], "host_cpus": str, "instance_cpus": str,
    "system_cpus": str, "system_cpumask": str, "housekeeping_cpus": str}``
    (cpulists; the mask in the sysfs form for ``/proc/irq/default_smp_affinity``). Raises
    :class:`PartitionError` when the system would be left without a CPU, and
    :class:`PlacementError` (from the planner) for a request the host cannot meet.
    """
    topology = with_service_cpus(topology, service_cpus)
    plan = plan_placement(topology, gpus_per_instance=gpus_per_instance, instances=instances,
                          housekeeping=housekeeping)
    cpus = topology["cpus"]
    host = _cpus("cpus.allowed", cpus.get("allowed") if cpus.get("allowed") is not None else cpus.get("online"))
    used = set()
    for instance in plan:
        used |= _cpus("plan[%d].cpus" % instance["index"], instance["cpus"])
    system = host - used
    if plan and not system:
        raise PartitionError(
            "the instances take every CPU of the host (%s): no CPU is left for the system; keep housekeeping "
            "CPUs (vllm_service_housekeeping_cpus)" % format_cpulist(host))
    return {
        "plan": plan,
        "host_cpus": format_cpulist(host),
        "instance_cpus": format_cpulist(used),
        "system_cpus": format_cpulist(system),
        "system_cpumask": format_cpumask(system),
        "housekeeping_cpus": plan[0]["housekeeping_cpus"] if plan else "",
    }


__all__ = ["PartitionError", "PlacementError", "plan_partition", "with_service_cpus"]
