# -*- coding: utf-8 -*-
"""The placement planner on synthetic GPU servers, on every real captured tree,
and on random topologies (hypothesis): disjoint, local, housekeeping excluded.
"""

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.inferfleet.gpu.plugins.module_utils import topology as T
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import format_cpulist, parse_cpulist
from ansible_collections.inferfleet.gpu.plugins.module_utils.placement import (
    PlacementError,
    default_housekeeping,
    plan_placement,
)

import topology_trees as tt


def cpus(text):
    return set(parse_cpulist(text))


def check_invariants(topology, plan, gpus_per_instance=None):
    """What every plan must hold, whatever the request."""
    allowed = cpus(topology["cpus"]["allowed"])
    node_of = {}
    for node in sorted(topology["numa_nodes"], key=lambda n: n["id"]):
        for cpu in cpus(node["cpus"]):
            node_of.setdefault(cpu, node["id"])
    siblings = {}
    for group in topology["cpus"]["smt_siblings"]:
        members = cpus(group) & allowed
        for cpu in members:
            siblings[cpu] = members
    gpu_by_index = dict((g["index"], g) for g in topology.get("gpus") or [])
    seen_cpus, seen_gpus = set(), set()
    for position, inst in enumerate(plan):
        assert inst["index"] == position
        mine = cpus(inst["cpus"])
        housekeeping = cpus(inst["housekeeping_cpus"])
        assert mine, inst
        assert inst["cpu_count"] == len(mine)
        assert format_cpulist(mine) == inst["cpus"]
        # disjoint
        assert not mine & seen_cpus, inst
        seen_cpus |= mine
        # housekeeping excluded, only allowed CPUs
        assert not mine & housekeeping
        assert mine <= allowed
        # whole cores: the allowed SMT siblings of a CPU come along
        for cpu in mine:
            assert siblings.get(cpu, {cpu}) - housekeeping <= mine
        # numa_nodes are the nodes of its CPUs
        assert inst["numa_nodes"] == sorted(set(node_of[c] for c in mine))
        # GPUs: each at most once, local CPUs only
        assert not set(inst["gpus"]) & seen_gpus
        seen_gpus |= set(inst["gpus"])
        assert inst["cuda_visible_devices"] == ",".join(str(g) for g in inst["gpus"])
        if gpus_per_instance is not None and inst["gpus"]:
            assert len(inst["gpus"]) == gpus_per_instance
        local_nodes = set()
        for index in inst["gpus"]:
            gpu = gpu_by_index[index]
            assert inst["gpu_bus_ids"][inst["gpus"].index(index)] == gpu["bus_id"]
            if gpu["numa_node"] is not None and cpus(
                    [n for n in topology["numa_nodes"] if n["id"] == gpu["numa_node"]][0]["cpus"]):
                local_nodes.add(gpu["numa_node"])
            else:
                local_nodes |= set(node_of[c] for c in cpus(gpu["local_cpus"] or "") if c in node_of) or set(node_of.values())
        if inst["gpus"]:
            assert set(inst["numa_nodes"]) <= local_nodes, (inst, local_nodes)
    return seen_cpus


@pytest.fixture(scope="module")
def servers():
    return dict((name, T.gather(str(tt.cached_tree(name)))[0]) for name in tt.LAYOUTS)


# --------------------------------------------------------------------------
# synthetic GPU servers


def test_hgx_h100_two_gpus_per_instance(servers):
    topo = servers["hgx-h100"]
    plan = plan_placement(topo, gpus_per_instance=2)
    check_invariants(topo, plan, 2)
    assert [p["gpus"] for p in plan] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert [p["numa_nodes"] for p in plan] == [[0], [0], [1], [1]]
    assert plan[0]["cpus"] == "1-28,113-140"
    assert plan[1]["cpus"] == "29-55,141-167"
    assert plan[0]["housekeeping_cpus"] == "0,56,112,168"
    assert plan[0]["gpu_bus_ids"] == ["0000:18:00.0", "0000:2a:00.0"]
    assert plan[0]["cuda_visible_devices"] == "0,1"


@pytest.mark.parametrize("name", ["dgx-a100-nps4", "hgx-h100", "pcie-l40s"])
@pytest.mark.parametrize("per", [1, 2, 4, 8])
def test_every_divisor(servers, name, per):
    topo = servers[name]
    plan = plan_placement(topo, gpus_per_instance=per)
    assert len(plan) == 8 // per
    used = check_invariants(topo, plan, per)
    assert sorted(g for p in plan for g in p["gpus"]) == list(range(8))
    # nodes that hold a planned GPU give all their free CPUs to instances
    gpu_nodes = set(g["numa_node"] for g in topo["gpus"])
    hk = cpus(plan[0]["housekeeping_cpus"])
    for node in topo["numa_nodes"]:
        if node["id"] in gpu_nodes:
            assert cpus(node["cpus"]) - hk <= used


def test_dgx_a100_nps4_groups_by_node(servers):
    topo = servers["dgx-a100-nps4"]
    plan = plan_placement(topo, gpus_per_instance=2)
    assert [(p["gpus"], p["numa_nodes"]) for p in plan] == [
        ([0, 1], [3]), ([2, 3], [1]), ([4, 5], [7]), ([6, 7], [5])]
    assert plan[0]["cpus"] == "49-63,177-191"
    plan = plan_placement(topo, gpus_per_instance=4)
    assert [(p["gpus"], p["numa_nodes"]) for p in plan] == [([0, 1, 2, 3], [1, 3]), ([4, 5, 6, 7], [5, 7])]
    # nodes without GPUs (0, 2, 4, 6) are left to the system
    used = cpus(",".join(p["cpus"] for p in plan))
    assert not used & cpus("0-15,128-143")


def test_grace_hopper_ignores_cpu_less_nodes(servers):
    topo = servers["gh200"]
    assert default_housekeeping(topo) == "0"
    plan = plan_placement(topo)
    check_invariants(topo, plan, 1)
    assert plan == [{"index": 0, "gpus": [0], "gpu_bus_ids": ["0009:01:00.0"], "cuda_visible_devices": "0",
                     "cpus": "1-71", "cpu_count": 71, "numa_nodes": [0], "housekeeping_cpus": "0"}]
    with pytest.raises(PlacementError) as err:
        plan_placement(topo, gpus_per_instance=2)
    assert "1 GPU (indices 0, NUMA node 0)" in str(err.value)


def test_fewer_instances_than_gpus_allow(servers):
    topo = servers["hgx-h100"]
    plan = plan_placement(topo, gpus_per_instance=2, instances=2)
    check_invariants(topo, plan, 2)
    assert [p["gpus"] for p in plan] == [[0, 1], [2, 3]]
    plan = plan_placement(topo, instances=2)
    assert [p["gpus"] for p in plan] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_default_is_one_instance_with_every_gpu(servers):
    plan = plan_placement(servers["pcie-l40s"])
    assert len(plan) == 1 and plan[0]["gpus"] == list(range(8))
    assert plan[0]["numa_nodes"] == [0, 1] and plan[0]["cpu_count"] == 224 - 4


def test_housekeeping_default_and_override(servers):
    topo = servers["hgx-h100"]
    assert default_housekeeping(topo) == "0,56,112,168"
    plan = plan_placement(topo, gpus_per_instance=4, housekeeping="0-3,112-115")
    check_invariants(topo, plan, 4)
    assert plan[0]["cpus"] == "4-55,116-167" and plan[1]["cpus"] == "56-111,168-223"
    plan = plan_placement(topo, gpus_per_instance=8, housekeeping="")
    assert plan[0]["cpu_count"] == 224 and plan[0]["housekeeping_cpus"] == ""


def test_cpuset_restricted_host(tmp_path):
    topo = T.gather(str(tt.cached_tree("hgx-h100", cpuset="0-31,112-143,56-60,168-172")))[0]
    plan = plan_placement(topo, gpus_per_instance=4)
    check_invariants(topo, plan, 4)
    assert plan[0]["cpus"] == "1-31,113-143" and plan[1]["cpus"] == "57-60,169-172"


def test_gpu_node_outside_the_cpuset_is_an_error():
    """A container allowed only node 0's CPUs cannot place GPUs 4-7 locally."""
    topo = T.gather(str(tt.cached_tree("hgx-h100", cpuset="0-55,112-167")))[0]
    plan = plan_placement(topo, gpus_per_instance=2, instances=2)
    assert [p["gpus"] for p in plan] == [[0, 1], [2, 3]]
    with pytest.raises(PlacementError) as err:
        plan_placement(topo, gpus_per_instance=2)
    message = str(err.value)
    assert "GPU 4 (0000:9a:00.0) is local to NUMA node 1" in message
    assert "56-111,168-223" in message and "0-55,112-167" in message


# --------------------------------------------------------------------------
# requests the host cannot meet: the message names the ask and the host


@pytest.mark.parametrize("kwargs, words", [
    (dict(gpus_per_instance=3), ["gpus_per_instance=3", "8 GPUs", "1, 2, 4, 8", "NUMA nodes 0,1"]),
    (dict(instances=3), ["instances=3", "8 GPUs", "1, 2, 4, 8"]),
    (dict(gpus_per_instance=4, instances=3), ["3 instances x 4 GPUs = 12", "8 GPUs"]),
    (dict(gpus_per_instance=16), ["gpus_per_instance=16", "8 GPUs"]),
    (dict(gpus_per_instance=0), ["gpus_per_instance must be a positive integer", "0"]),
    (dict(gpus_per_instance="two"), ["gpus_per_instance", "'two'"]),
    (dict(gpus_per_instance=True), ["gpus_per_instance", "True"]),
    (dict(instances=-1), ["instances must be a positive integer", "-1"]),
    (dict(housekeeping="0-3,x"), ["housekeeping must be a cpulist", "0-3,x"]),
    (dict(housekeeping="0,500"), ["housekeeping='0,500'", "500", "not online", "0-223"]),
    (dict(gpus_per_instance=1, housekeeping="0-55,112-166"), ["NUMA node 0", "1 free physical core", "4 instances"]),
])
def test_impossible_requests_explain(servers, kwargs, words):
    with pytest.raises(PlacementError) as err:
        plan_placement(servers["hgx-h100"], **kwargs)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_gpus_asked_on_cpu_only_host():
    topo = T.gather(str(tt.unpacked_tree(tt.TOPOLOGY_FIXTURES / "32intel64-2p8co2t+8ve.tar.bz2")))[0]
    with pytest.raises(PlacementError) as err:
        plan_placement(topo, gpus_per_instance=2)
    assert "gpus_per_instance=2" in str(err.value) and "no NVIDIA GPU" in str(err.value)


@pytest.mark.parametrize("bad, words", [
    ([], ["must be the gpu_topology fact", "list"]),
    ({"cpus": {}}, ["lacks the key 'numa_nodes'"]),
])
def test_bad_topology(bad, words):
    with pytest.raises(PlacementError) as err:
        plan_placement(bad)
    for word in words:
        assert word in str(err.value)


def test_string_counts_from_templates(servers):
    plan = plan_placement(servers["hgx-h100"], gpus_per_instance="2", instances="4")
    assert len(plan) == 4


# --------------------------------------------------------------------------
# CPU-only hosts: every real captured tree


REAL = [t for t in tt.fixture_tarballs() + tt.fixture_tarballs(more=True) if t.name != "allowed-test1.tar.bz2"]


@pytest.mark.parametrize("tarball", REAL, ids=[t.name[:-8] for t in REAL])
def test_cpu_only_plans_on_real_trees(tarball):
    topo = T.gather(str(tt.unpacked_tree(tarball)))[0]
    nodes_with_cpus = []
    seen = set()
    allowed = cpus(topo["cpus"]["allowed"])
    for node in sorted(topo["numa_nodes"], key=lambda n: n["id"]):
        mine = cpus(node["cpus"]) & allowed - seen
        seen |= mine
        if mine:
            nodes_with_cpus.append((node["id"], mine))
    hk = cpus(default_housekeeping(topo))
    free = [n for n, c in nodes_with_cpus if c - hk]
    try:
        plan = plan_placement(topo)
    except PlacementError as err:
        # only when housekeeping leaves no CPU at all
        assert not free, err
        assert "no CPU is left" in str(err)
        return
    check_invariants(topo, plan)
    assert len(plan) == len(free)
    assert [p["numa_nodes"] for p in plan] == [[n] for n in free]
    # one instance per node with all of the node's free CPUs
    for inst, node in zip(plan, free):
        assert cpus(inst["cpus"]) == dict(nodes_with_cpus)[node] - hk
    spread = plan_placement(topo, cpu_only_per_numa=False, instances=1)
    # CPUs that no NUMA node lists (fakeheterocpunuma) are never placed
    assert cpus(spread[0]["cpus"]) == seen - hk


def test_cpu_only_instance_counts():
    topo = T.gather(str(tt.unpacked_tree(tt.TOPOLOGY_FIXTURES / "memorysidecaches.tar.bz2")))[0]
    plan = plan_placement(topo, instances=8)
    check_invariants(topo, plan)
    assert [p["numa_nodes"] for p in plan] == [[0], [0], [1], [1], [2], [2], [3], [3]]
    with pytest.raises(PlacementError) as err:
        plan_placement(topo, instances=3)
    assert "instances=3" in str(err.value) and "4 NUMA node(s)" in str(err.value)
    plan = plan_placement(topo, instances=3, cpu_only_per_numa=False)
    check_invariants(topo, plan)
    assert [p["cpu_count"] for p in plan] == [24, 24, 24]  # 40 cores - 4 housekeeping = 36
    plan = plan_placement(topo, instances=5, cpu_only_per_numa=False)
    check_invariants(topo, plan)
    assert [p["cpu_count"] for p in plan] == [16, 14, 14, 14, 14]
    with pytest.raises(PlacementError) as err:
        plan_placement(topo, instances=100, cpu_only_per_numa=False)
    assert "instances=100" in str(err.value) and "36 free physical core(s)" in str(err.value)


# --------------------------------------------------------------------------
# hypothesis: random hosts and requests


@st.composite
def hosts(draw):
    """A gpu_topology-shaped dict: nodes x cores x threads, GPUs on nodes, a cpuset."""
    n_nodes = draw(st.integers(min_value=1, max_value=6))
    cores_per_node = draw(st.integers(min_value=1, max_value=12))
    threads = draw(st.sampled_from([1, 2, 4]))
    total_cores = n_nodes * cores_per_node
    node_ids = sorted(draw(st.sets(st.integers(min_value=0, max_value=80), min_size=n_nodes, max_size=n_nodes)))
    nodes, smt = [], []
    for position, node in enumerate(node_ids):
        cores = range(position * cores_per_node, (position + 1) * cores_per_node)
        node_cpus = set(c + t * total_cores for c in cores for t in range(threads))
        nodes.append({"id": node, "cpus": format_cpulist(node_cpus)})
    for core in range(total_cores):
        smt.append(format_cpulist(core + t * total_cores for t in range(threads)))
    online = set(range(total_cores * threads))
    offline = draw(st.sets(st.sampled_from(sorted(online)), max_size=len(online) // 3))
    online -= offline
    assume(online)
    for node in nodes:
        node["cpus"] = format_cpulist(cpus(node["cpus"]) & online)
    smt = [format_cpulist(cpus(g) & online) for g in smt if cpus(g) & online]
    allowed = online - draw(st.sets(st.sampled_from(sorted(online)), max_size=len(online) // 3))
    assume(allowed)
    gpus = []
    for _unused in range(draw(st.integers(min_value=0, max_value=8))):
        choice = draw(st.integers(min_value=-1, max_value=n_nodes - 1))
        if choice < 0:   # unknown locality (numa_node -1 spanning nodes)
            gpus.append({"numa_node": None, "local_cpus": format_cpulist(online)})
        else:
            gpus.append({"numa_node": node_ids[choice], "local_cpus": nodes[choice]["cpus"]})
    gpus.sort(key=lambda g: (g["numa_node"] is None, g["numa_node"]))
    for index, gpu in enumerate(gpus):
        gpu.update(index=index, bus_id="0000:%02x:00.0" % (index * 16 + 16))
    return {
        "cpus": {"online": format_cpulist(online), "allowed": format_cpulist(allowed), "smt_siblings": smt},
        "numa_nodes": nodes,
        "gpus": gpus,
    }


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(hosts(), st.one_of(st.none(), st.integers(min_value=1, max_value=8)),
       st.one_of(st.none(), st.integers(min_value=1, max_value=8)),
       st.one_of(st.none(), st.just("")), st.booleans())
def test_planner_properties(topo, per, count, housekeeping, per_numa):
    if not topo["gpus"]:
        per = None
    try:
        plan = plan_placement(topo, gpus_per_instance=per, instances=count,
                              housekeeping=housekeeping, cpu_only_per_numa=per_numa)
    except PlacementError as err:
        message = str(err)
        assert message and ("gpus_per_instance" in message or "instances" in message or "NUMA node" in message
                            or "no CPU" in message or "no usable CPU" in message
                            or "allowed CPUs" in message), message
        return
    check_invariants(topo, plan, per)
    if count is not None:
        assert len(plan) == count
    if topo["gpus"] and per is not None and count is None:
        assert len(plan) * per == len(topo["gpus"])
    if housekeeping is None:
        hk = cpus(default_housekeeping(topo))
        assert plan[0]["housekeeping_cpus"] == format_cpulist(hk)
