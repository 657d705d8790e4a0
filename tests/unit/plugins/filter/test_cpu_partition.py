# -*- coding: utf-8 -*-
"""inferfleet.gpu.cpu_partition: the instances' CPUs versus the system's, from the placement plan.

Run on synthetic topologies written as the gpu_topology fact: an HGX H100
shape (2 sockets x 56 cores x 2 threads, 4 GPUs per socket), the lab VM
(2 CPUs, no GPU), and the same VM already partitioned, whose gathering
process only sees the system CPUs.
"""

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.inferfleet.gpu.plugins.filter.cpu_partition import FilterModule, cpu_partition
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import parse_cpulist
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpu_partition import plan_partition, with_service_cpus
from ansible_collections.inferfleet.gpu.plugins.module_utils.placement import plan_placement


def hgx_topology():
    """An HGX H100 as gpu_topology reports it: CPUs 0-55,112-167 on node 0, GPUs 0-3 there."""
    nodes = [{"id": 0, "cpus": "0-55,112-167"}, {"id": 1, "cpus": "56-111,168-223"}]
    siblings = ["%d,%d" % (c, c + 112) for c in range(112)]
    gpus = [{"index": i, "bus_id": "0000:%02x:00.0" % (0x18 + i), "numa_node": 0 if i < 4 else 1}
            for i in range(8)]
    return {"cpus": {"online": "0-223", "allowed": "0-223", "smt_siblings": siblings},
            "numa_nodes": nodes, "gpus": gpus}


def two_node_cpu_only():
    return {"cpus": {"online": "0-7", "allowed": "0-7", "smt_siblings": [str(c) for c in range(8)]},
            "numa_nodes": [{"id": 0, "cpus": "0-3"}, {"id": 1, "cpus": "4-7"}], "gpus": []}


@pytest.fixture(params=["hgx", "two-node"])
def captured(request):
    return hgx_topology() if request.param == "hgx" else two_node_cpu_only()


def vm_topology(allowed="0-1"):
    """The lab VM: 2 CPUs, one NUMA node, no GPU."""
    return {"cpus": {"online": "0-1", "allowed": allowed, "smt_siblings": ["0", "1"]},
            "numa_nodes": [{"id": 0, "cpus": "0-1"}], "gpus": []}


def test_registered_under_its_name():
    assert FilterModule().filters() == {"cpu_partition": cpu_partition}


def test_the_plan_is_placements_plan(captured):
    result = cpu_partition(captured, gpus_per_instance=1 if captured["gpus"] else None)
    assert result["plan"] == plan_placement(captured, gpus_per_instance=1 if captured["gpus"] else None)


def test_system_and_instances_split_the_host(captured):
    result = plan_partition(captured, gpus_per_instance=1 if captured["gpus"] else None)
    host = parse_cpulist(result["host_cpus"])
    system = parse_cpulist(result["system_cpus"])
    used = parse_cpulist(result["instance_cpus"])
    assert system and used
    assert not system & used
    assert system | used == host
    # the housekeeping CPUs are the system's; every instance's CPUs are kept from it
    assert parse_cpulist(result["housekeeping_cpus"]) <= system
    for instance in result["plan"]:
        assert parse_cpulist(instance["cpus"]) <= used


def test_hgx_one_instance_per_gpu_leaves_the_first_core_of_each_node():
    result = plan_partition(hgx_topology(), gpus_per_instance=1)
    assert result["system_cpus"] == result["housekeeping_cpus"] == "0,56,112,168"
    # bits 0, 56, 112, 168 in 32-bit words, most significant first
    assert result["system_cpumask"] == "00000100,00000000,00010000,00000000,01000000,00000001"
    assert len(parse_cpulist(result["system_cpus"])) == 4
    assert len(parse_cpulist(result["instance_cpus"])) == 220


def test_cpus_of_nodes_without_planned_gpus_go_to_the_system():
    hgx = hgx_topology()
    # 4 GPUs in one instance: placement groups them by NUMA node, the other node's CPUs are free
    result = plan_partition(hgx, gpus_per_instance=4, instances=1)
    system = parse_cpulist(result["system_cpus"])
    assert parse_cpulist(result["housekeeping_cpus"]) < system
    assert len(system) + len(parse_cpulist(result["instance_cpus"])) == 224


def test_vm_two_cpus():
    result = plan_partition(vm_topology())
    assert (result["system_cpus"], result["instance_cpus"]) == ("0", "1")
    assert result["system_cpumask"] == "00000001"


def test_an_already_partitioned_host_plans_over_the_service_cpus():
    """The SSH session that gathered the facts sits in user.slice, confined to CPU 0."""
    confined = vm_topology(allowed="0")
    with pytest.raises(AnsibleFilterError) as err:
        cpu_partition(confined)
    assert "inferfleet.gpu.cpu_partition" in str(err.value)
    result = cpu_partition(confined, service_cpus="0-1\n")
    assert (result["system_cpus"], result["instance_cpus"]) == ("0", "1")
    assert result["plan"] == plan_placement(vm_topology())


def test_service_cpus_is_cut_to_the_online_cpus():
    assert with_service_cpus(vm_topology(), "0-7")["cpus"]["allowed"] == "0-1"
    topo = vm_topology()
    assert with_service_cpus(topo, "") is topo
    assert with_service_cpus(topo, None) is topo


def test_service_cpus_outside_the_host_is_refused():
    with pytest.raises(AnsibleFilterError) as err:
        cpu_partition(vm_topology(), service_cpus="4-5")
    assert "service_cpus 4-5 holds none of the online CPUs 0-1" in str(err.value)
    with pytest.raises(AnsibleFilterError) as err:
        cpu_partition(vm_topology(), service_cpus="x")
    assert "service_cpus" in str(err.value)


def test_no_housekeeping_leaves_nothing_for_the_system():
    with pytest.raises(AnsibleFilterError) as err:
        cpu_partition(vm_topology(), housekeeping="")
    assert "no CPU is left for the system" in str(err.value)
    assert "vllm_service_housekeeping_cpus" in str(err.value)


def test_input_is_not_modified():
    topo = vm_topology(allowed="0")
    before = copy.deepcopy(topo)
    cpu_partition(topo, service_cpus="0-1")
    assert topo == before
