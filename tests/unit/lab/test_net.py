"""Subnet allocation and naming of the lab's network plumbing (pure parts)."""
import ipaddress
import json

import pytest
from hypothesis import given, strategies as s

from lab.nspawn import net


def test_first_free_subnet_on_empty_host():
    assert net.allocate_subnet([]) == 1
    assert str(net.subnet_for(1)) == "10.213.1.0/24"


def test_skips_indexes_used_by_other_labs():
    assert net.allocate_subnet([], {1, 2, 4}) == 3


def test_skips_networks_on_the_host():
    taken = ["192.0.2.0/24", "10.213.1.0/24", "10.213.2.7/32"]
    assert net.allocate_subnet(taken) == 3


def test_a_wide_host_route_blocks_all_it_covers():
    assert net.allocate_subnet(["10.213.0.0/20"]) == 16


def test_default_route_does_not_block():
    assert net.allocate_subnet(["0.0.0.0/0"]) == 1


def test_exhausted_range_raises():
    with pytest.raises(RuntimeError, match="no free /24"):
        net.allocate_subnet(["10.213.0.0/16"])


@given(s.sets(s.integers(min_value=1, max_value=254), max_size=253),
       s.lists(s.integers(min_value=0, max_value=255), max_size=20))
def test_allocation_never_collides(used, host_thirds):
    taken = [f"10.213.{t}.0/24" for t in host_thirds]
    idx = net.allocate_subnet(taken, used)
    cand = net.subnet_for(idx)
    assert idx not in used
    assert not any(cand.overlaps(ipaddress.ip_network(t)) for t in taken)
    # and it is the first such index
    for lower in range(1, idx):
        assert lower in used or any(net.subnet_for(lower).overlaps(ipaddress.ip_network(t)) for t in taken)


@pytest.mark.parametrize("index,k,ip", [(1, 1, "10.213.1.11"), (254, 200, "10.213.254.210")])
def test_node_addresses(index, k, ip):
    assert net.node_ip(index, k) == ip
    assert ipaddress.ip_address(ip) in net.subnet_for(index)
    assert net.gateway(index) == f"10.213.{index}.1"


@pytest.mark.parametrize("bad", [0, 201])
def test_node_number_out_of_range(bad):
    with pytest.raises(ValueError, match="node number must be 1..200"):
        net.node_ip(1, bad)


def test_interface_names_fit_the_kernel_limit():
    assert len(net.veth_name(254, 200)) <= 15
    assert len(net.bridge_name(254)) <= 15


@pytest.mark.parametrize("name", ["inferlab", "mol-lab", "a", "x" * 23])
def test_good_names(name):
    assert net.check_name(name) == name


@pytest.mark.parametrize("name", ["", "Lab", "1lab", "lab-", "lab_x", "x" * 24, "a/b", "foo-vm"])
def test_bad_names(name):
    with pytest.raises(ValueError, match="is not allowed"):
        net.check_name(name)


def test_parse_ip_json_routes_and_addrs():
    routes = json.dumps([{"dst": "default", "gateway": "192.0.2.1"},
                         {"dst": "192.0.2.0/24", "dev": "eth0"},
                         {"dst": "10.0.0.5", "dev": "tun0"}])
    lo_addr = {"family": "inet", "local": "127.0.0.1", "prefixlen": 8}
    v6_addr = {"family": "inet6", "local": "fe80::1", "prefixlen": 64}
    addrs = json.dumps([{"ifname": "lo", "addr_info": [lo_addr]},
                        {"ifname": "eth0", "addr_info": [v6_addr]}])
    assert net.parse_route_networks(routes) == ["192.0.2.0/24", "10.0.0.5/32"]
    assert net.parse_route_networks(addrs) == ["127.0.0.1/8"]
    assert net.parse_route_networks("") == []


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1065 1 0
   1: 0101D50A:A1B2 0B01D50A:0016 01 00000000:00000000 02:00000A2B 00000000     0        0 424242 2 0
"""


def test_parse_proc_net_tcp():
    rows = net.parse_proc_net_tcp(PROC_NET_TCP)
    assert rows == [("0.0.0.0", 0, 1065), ("10.213.1.11", 22, 424242)]


def test_ssh_clients_found_by_socket_inode(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(PROC_NET_TCP)
    for pid, comm, inode in ((100, "ssh", 424242), (101, "python3", 424242), (102, "ssh", 1065)):
        fd = tmp_path / str(pid) / "fd"
        fd.mkdir(parents=True)
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")
        (fd / "3").symlink_to(f"socket:[{inode}]")
    assert net.ssh_clients_into("10.213.1.0/24", proc=str(tmp_path)) == [100]
    assert net.ssh_clients_into("10.213.2.0/24", proc=str(tmp_path)) == []
