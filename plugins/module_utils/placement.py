# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement planner: model-server instances onto GPUs, CPUs and NUMA nodes.

A pure function of the ``gpu_topology`` fact (see ``docs/gpu_topology.md``).
It never reads the machine, so the filter plugin ``inferfleet.gpu.placement``
runs it on the controller and the tests run it on any captured or synthetic
topology. The output is a contract: the vllm_service role builds its systemd
units from it. Each instance is::

    {"index": 0,                       # 0..n-1
     "gpus": [0, 1],                   # GPU indices (NVML / CUDA PCI_BUS_ID order)
     "gpu_bus_ids": ["0000:18:00.0", "0000:2a:00.0"],
     "cuda_visible_devices": "0,1",    # "" for a CPU-only instance
     "cpus": "1-27,113-139",           # cpulist for CPUAffinity= / taskset
     "cpu_count": 54,
     "numa_nodes": [0],                # for NUMAPolicy=bind / NUMAMask=
     "housekeeping_cpus": "0,112,56,168"}  # CPUs kept out of every instance

Rules: housekeeping CPUs are never given to an instance; no CPU is given to
two instances; an instance only gets CPUs of the NUMA node(s) local to its
GPUs (whole physical cores: SMT siblings stay together); the CPUs of a node
are split evenly between the instances that are local to it. Without GPUs it
plans CPU-only instances, one per NUMA node by default.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import CpuListError, format_cpulist, parse_cpulist


class PlacementError(ValueError):
    """A placement request the host cannot satisfy (the message says why)."""


def _cpus(text):
    return set(parse_cpulist(text or ""))


def _require(topology):
    if not isinstance(topology, dict):
        raise PlacementError(
            "topology must be the gpu_topology fact (a dict), got %s; "
            "run inferfleet.gpu.gpu_topology and pass ansible_facts.gpu_topology" % type(topology).__name__
        )
    for key in ("cpus", "numa_nodes"):
        if key not in topology:
            raise PlacementError(
                "topology lacks the key %r: pass ansible_facts.gpu_topology from inferfleet.gpu.gpu_topology" % key
            )


def _check_count(name, value):
    """A positive int (or None). Digit strings are accepted: templates pass them."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PlacementError("%s must be a positive integer or null, got %r" % (name, value))
    return value


def _allowed(topology):
    cpus = topology["cpus"]
    allowed = cpus.get("allowed")
    return _cpus(allowed if allowed is not None else cpus.get("online"))


def node_cpus(topology):
    """``[(node id, set of usable CPUs)]`` for nodes with allowed CPUs.

    A CPU listed by several nodes (overlapping cpulists) counts in the first.
    """
    allowed = _allowed(topology)
    seen = set()
    result = []
    for node in sorted(topology["numa_nodes"], key=lambda n: n["id"]):
        cpus = (_cpus(node.get("cpus")) & allowed) - seen
        if cpus:
            seen |= cpus
            result.append((node["id"], cpus))
    return result


def _smt_groups(topology, allowed):
    """``{cpu: frozenset(siblings)}`` within ``allowed``."""
    group_of = {}
    for text in topology["cpus"].get("smt_siblings") or []:
        group = frozenset(_cpus(text) & allowed)
        for cpu in group:
            group_of[cpu] = group
    for cpu in allowed:
        group_of.setdefault(cpu, frozenset([cpu]))
    return group_of


def default_housekeeping(topology):
    """The first physical core (all its allowed SMT threads) of each NUMA node with CPUs.

    Returns a cpulist string.
    """
    _require(topology)
    allowed = _allowed(topology)
    group_of = _smt_groups(topology, allowed)
    chosen = set()
    for _node, cpus in node_cpus(topology):
        chosen |= group_of[min(cpus)] & cpus
    return format_cpulist(chosen)


def _cores(cpus, group_of):
    """Whole cores (sorted lists) made of ``cpus``, ordered by first CPU."""
    cores, seen = [], set()
    for cpu in sorted(cpus):
        if cpu in seen:
            continue
        core = sorted((group_of.get(cpu, frozenset([cpu])) & cpus) | set([cpu]))
        seen.update(core)
        cores.append(core)
    return cores


def _split(items, parts):
    """``items`` cut into ``parts`` contiguous chunks, sizes differing by at most one."""
    base, extra = divmod(len(items), parts)
    out, start = [], 0
    for part in range(parts):
        size = base + (1 if part < extra else 0)
        out.append(items[start:start + size])
        start += size
    return out


def _gpu_home(gpu, pools, node_online):
    """NUMA nodes (with usable CPUs) local to one GPU.

    A GPU whose node is known but whose CPUs the cpuset forbids cannot be
    placed locally: that is an error, not a silent move to remote CPUs. Only
    a GPU of unknown locality may use any node.
    """
    node = gpu.get("numa_node")
    if node is not None and node_online.get(node):
        if node in pools:
            return (node,)
        raise PlacementError(
            "GPU %s (%s) is local to NUMA node %d (CPUs %s) but the allowed CPUs (%s) include none of them; "
            "widen the cpuset/affinity of the caller or run where that node's CPUs are allowed"
            % (gpu.get("index"), gpu.get("bus_id"), node, format_cpulist(node_online[node]),
               format_cpulist(set().union(*pools.values())) if pools else "none"))
    local = _cpus(gpu.get("local_cpus"))
    if local:
        hits = tuple(n for n, cpus in pools.items() if cpus & local)
        if hits:
            return hits
        if any(cpus & local for cpus in node_online.values()):
            raise PlacementError(
                "GPU %s (%s) is local to CPUs %s but the allowed CPUs (%s) include none of them"
                % (gpu.get("index"), gpu.get("bus_id"), format_cpulist(local),
                   format_cpulist(set().union(*pools.values())) if pools else "none"))
    return tuple(pools)


def _describe_gpus(gpus, homes):
    nodes = sorted(set(n for h in homes for n in h))
    return "%d GPU%s (indices %s, NUMA node%s %s)" % (
        len(gpus), "" if len(gpus) == 1 else "s", format_cpulist(g["index"] for g in gpus) or "none",
        "" if len(nodes) == 1 else "s", ",".join(str(n) for n in nodes) or "unknown")


def _divisors(total):
    """The group sizes that split ``total`` GPUs evenly, for error messages (``"1, 2, 4, 8"``)."""
    return ", ".join(str(d) for d in range(1, total + 1) if total % d == 0)


def _gpu_instances(topology, pools, gpus_per_instance, instances):
    gpus = sorted(topology["gpus"], key=lambda g: g["index"])
    node_online = dict((n["id"], _cpus(n.get("cpus"))) for n in topology["numa_nodes"])
    homes, unplaceable = {}, {}
    for gpu in gpus:
        try:
            homes[gpu["index"]] = _gpu_home(gpu, pools, node_online)
        except PlacementError as exc:
            homes[gpu["index"]] = ()
            unplaceable[gpu["index"]] = str(exc)
    total = len(gpus)
    described = _describe_gpus(gpus, homes.values())
    if gpus_per_instance is None and instances is None:
        gpus_per_instance = total
    elif gpus_per_instance is None:
        if total % instances:
            raise PlacementError(
                "instances=%d cannot be met: this host has %s and %d GPUs do not split into %d equal "
                "groups; use instances in %s, or set gpus_per_instance too"
                % (instances, described, total, instances, _divisors(total)))
        gpus_per_instance = total // instances
    if gpus_per_instance > total:
        raise PlacementError(
            "gpus_per_instance=%d cannot be met: this host has %s" % (gpus_per_instance, described))
    if instances is None:
        if total % gpus_per_instance:
            raise PlacementError(
                "gpus_per_instance=%d cannot be met: this host has %s and %d is not a multiple of %d; "
                "use gpus_per_instance in %s, or set instances to leave GPUs unused"
                % (gpus_per_instance, described, total, gpus_per_instance, _divisors(total)))
        instances = total // gpus_per_instance
    if instances * gpus_per_instance > total:
        raise PlacementError(
            "%d instances x %d GPUs = %d GPUs were asked, but this host has %s"
            % (instances, gpus_per_instance, instances * gpus_per_instance, described))
    # Keep each group on as few NUMA nodes as possible: order GPUs by their
    # home node(s), then cut; order the instances by their first GPU.
    # GPUs whose local CPUs are all forbidden go last: a smaller request
    # (instances=...) can still be met without them.
    ordered = sorted(gpus, key=lambda g: (g["index"] in unplaceable, homes[g["index"]], g["index"]))
    groups = [ordered[i * gpus_per_instance:(i + 1) * gpus_per_instance] for i in range(instances)]
    groups.sort(key=lambda grp: min(g["index"] for g in grp))
    plans = []
    for grp in groups:
        for gpu in grp:
            if gpu["index"] in unplaceable:
                raise PlacementError("%s (%d instances x %d GPUs were asked)"
                                     % (unplaceable[gpu["index"]], instances, gpus_per_instance))
        grp = sorted(grp, key=lambda g: g["index"])
        nodes = sorted(set(n for g in grp for n in homes[g["index"]]))
        plans.append({"gpus": grp, "nodes": nodes})
    return plans


def _cpu_only_instances(pools, instances, per_numa):
    nodes = [n for n, cpus in pools.items() if cpus]
    if per_numa:
        if instances is None:
            instances = len(nodes)
        if instances % len(nodes):
            raise PlacementError(
                "instances=%d with cpu_only_per_numa=true needs a multiple of the %d NUMA node(s) with free "
                "CPUs (%s); set cpu_only_per_numa=false to spread %d instances over all CPUs"
                % (instances, len(nodes), ",".join(map(str, nodes)), instances))
        per_node = instances // len(nodes)
        return [{"gpus": [], "nodes": [n]} for n in nodes for _unused in range(per_node)]
    return [{"gpus": [], "nodes": list(nodes), "spread": True} for _unused in range(instances or 1)]


def plan_placement(topology, gpus_per_instance=None, instances=None, housekeeping=None, cpu_only_per_numa=True):
    """Plan model-server instances on a host described by the ``gpu_topology`` fact.

    :param gpus_per_instance: GPUs per instance; default: all GPUs in one
        instance (or ``total / instances`` when ``instances`` is given).
    :param instances: how many instances; default: as many as the GPUs
        allow, or one per NUMA node (CPU-only, ``cpu_only_per_numa``) or one.
    :param housekeeping: cpulist kept for the OS; ``None`` = the first core
        of each NUMA node (see :func:`default_housekeeping`), ``""`` = none.
    :param cpu_only_per_numa: on a host without GPUs, one instance per NUMA
        node (``instances`` must then be a multiple of the node count).
    :returns: list of instance dicts (see the module docstring).
    :raises PlacementError: naming what was asked and what the host has.
    """
    _require(topology)
    gpus_per_instance = _check_count("gpus_per_instance", gpus_per_instance)
    instances = _check_count("instances", instances)
    online = _cpus(topology["cpus"].get("online"))
    allowed = _allowed(topology)
    nodes = node_cpus(topology)
    if not nodes:
        raise PlacementError(
            "this host has no usable CPU: online CPUs %r, allowed CPUs %r, NUMA nodes %s"
            % (topology["cpus"].get("online"), topology["cpus"].get("allowed"),
               [n.get("id") for n in topology["numa_nodes"]]))
    if housekeeping is None:
        hk = _cpus(default_housekeeping(topology))
    else:
        try:
            hk = _cpus(str(housekeeping))
        except CpuListError as exc:
            raise PlacementError("housekeeping must be a cpulist such as '0,112', got %r: %s" % (housekeeping, exc))
        if hk - online:
            raise PlacementError(
                "housekeeping=%r names CPUs %s that are not online on this host (online: %s)"
                % (housekeeping, format_cpulist(hk - online), format_cpulist(online)))
    pools = dict((n, cpus - hk) for n, cpus in nodes)
    order = [n for n, _cpus_unused in nodes]
    group_of = _smt_groups(topology, allowed)
    gpus = topology.get("gpus") or []

    if gpus:
        plans = _gpu_instances(topology, dict((n, c) for n, c in nodes), gpus_per_instance, instances)
    else:
        if gpus_per_instance is not None:
            raise PlacementError(
                "gpus_per_instance=%d was asked, but this host has no NVIDIA GPU (gpus is empty); "
                "leave gpus_per_instance unset to plan CPU-only instances" % gpus_per_instance)
        free_nodes = [n for n in order if pools[n]]
        if not free_nodes:
            raise PlacementError(
                "no CPU is left for instances: the host allows CPUs %s and housekeeping takes %s; "
                "pass housekeeping='' to use them" % (format_cpulist(allowed), format_cpulist(hk)))
        plans = _cpu_only_instances(dict((n, pools[n]) for n in free_nodes), instances, cpu_only_per_numa)

    assigned = [set() for _unused in plans]
    if plans and plans[0].get("spread"):
        cores = [core for n in order for core in _cores(pools[n], group_of)]
        if len(cores) < len(plans):
            raise PlacementError(
                "instances=%d cannot be met: the host has %d free physical core(s) (CPUs %s) after housekeeping %s"
                % (len(plans), len(cores), format_cpulist(c for core in cores for c in core), format_cpulist(hk)))
        for i, chunk in enumerate(_split(cores, len(plans))):
            assigned[i] = set(c for core in chunk for c in core)
    else:
        users = {}
        for i, plan in enumerate(plans):
            for n in plan["nodes"]:
                users.setdefault(n, []).append(i)
        for n in order:
            if n not in users:
                continue
            cores = _cores(pools[n], group_of)
            if len(cores) < len(users[n]):
                raise PlacementError(
                    "NUMA node %d has %d free physical core(s) (CPUs %s, after housekeeping %s) but %d instances "
                    "(%s) need CPUs local to it; use fewer instances or a smaller housekeeping set"
                    % (n, len(cores), format_cpulist(pools[n]) or "none", format_cpulist(hk & _cpus_of(nodes, n)),
                       len(users[n]), ", ".join(_instance_label(plans[i], i) for i in users[n])))
            for i, chunk in zip(users[n], _split(cores, len(users[n]))):
                assigned[i] |= set(c for core in chunk for c in core)

    housekeeping_text = format_cpulist(hk)
    result = []
    for i, plan in enumerate(plans):
        cpus = assigned[i]
        cpu_nodes = sorted(n for n, ncpus in nodes if ncpus & cpus)
        gpu_list = plan["gpus"]
        result.append({
            "index": i,
            "gpus": [g["index"] for g in gpu_list],
            "gpu_bus_ids": [g.get("bus_id") for g in gpu_list],
            "cuda_visible_devices": ",".join(str(g["index"]) for g in gpu_list),
            "cpus": format_cpulist(cpus),
            "cpu_count": len(cpus),
            "numa_nodes": cpu_nodes,
            "housekeeping_cpus": housekeeping_text,
        })
    return result


def _cpus_of(nodes, node_id):
    for n, cpus in nodes:
        if n == node_id:
            return cpus
    return set()


def _instance_label(plan, index):
    if plan["gpus"]:
        return "instance %d with GPUs %s" % (index, ",".join(str(g["index"]) for g in plan["gpus"]))
    return "instance %d" % index
