"""Network plumbing: one bridge and one private /24 per lab, one netns + veth per node.

Pure helpers (names, address allocation) come first; the functions that run
``ip`` come after and are all idempotent so ``down`` can call them blindly.
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess

from lab import names

# Labs take 10.213.X.0/24 with X in 1..254.  The host side of each lab's bridge
# is .1, node K is .(10 + K).
SUBNET_PREFIX = "10.213"
FIRST_INDEX = 1
LAST_INDEX = 254
MAX_NODES = 200
NAME_MAX = 23  # an nspawn lab's name goes into netns and interface names


def check_name(name: str) -> str:
    # "-vm": NAME-vm is where the VM back end keeps a VM called NAME
    return names.check_name(name, NAME_MAX, reserved_suffixes=("-vm",))


def subnet_for(index: int) -> ipaddress.IPv4Network:
    if not FIRST_INDEX <= index <= LAST_INDEX:
        raise ValueError(f"subnet index must be {FIRST_INDEX}..{LAST_INDEX}, got {index}")
    return ipaddress.IPv4Network(f"{SUBNET_PREFIX}.{index}.0/24")


def allocate_subnet(taken: list[str | ipaddress.IPv4Network],
                    used_indexes: set[int] | frozenset[int] = frozenset()) -> int:
    """First index whose /24 neither overlaps a network in ``taken`` nor is in ``used_indexes``."""
    nets = [ipaddress.ip_network(str(n), strict=False) for n in taken]
    nets = [n for n in nets if n.version == 4 and n.prefixlen > 0]  # a default route overlaps all
    for index in range(FIRST_INDEX, LAST_INDEX + 1):
        if index in used_indexes:
            continue
        cand = subnet_for(index)
        if not any(cand.overlaps(n) for n in nets):
            return index
    raise RuntimeError(f"no free /24 left in {SUBNET_PREFIX}.0.0/16")


def gateway(index: int) -> str:
    return str(subnet_for(index).network_address + 1)


def node_ip(index: int, k: int) -> str:
    if not 1 <= k <= MAX_NODES:
        raise ValueError(f"node number must be 1..{MAX_NODES}, got {k}")
    return str(subnet_for(index).network_address + 10 + k)


def bridge_name(index: int) -> str:
    return f"ilab{index}"


def veth_name(index: int, k: int) -> str:
    name = f"il{index}n{k}"
    assert len(name) <= 15, name
    return name


def netns_name(lab: str, k: int) -> str:
    return f"inferlab-{lab}-node{k}"


def parse_route_networks(ip_json: str) -> list[str]:
    """Networks named by ``ip -j -4 route`` / ``ip -j -4 addr`` output (both shapes)."""
    out = []
    for entry in json.loads(ip_json or "[]"):
        dst = entry.get("dst")
        if dst and dst != "default":
            out.append(dst if "/" in dst else dst + "/32")
        for addr in entry.get("addr_info", []):
            if addr.get("family") == "inet":
                out.append(f"{addr['local']}/{addr['prefixlen']}")
    return out


# --- side effects -------------------------------------------------------------

def _ip(*args: str, check: bool = True, netns: str | None = None) -> subprocess.CompletedProcess:
    cmd = ["ip"] + (["-n", netns] if netns else []) + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc


def host_networks() -> list[str]:
    nets = parse_route_networks(_ip("-j", "-4", "route", "show", "table", "all").stdout)
    nets += parse_route_networks(_ip("-j", "-4", "addr").stdout)
    return nets


def link_exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def create_bridge(index: int, lab: str) -> None:
    br = bridge_name(index)
    if not link_exists(br):
        _ip("link", "add", br, "type", "bridge")
    _ip("link", "set", "dev", br, "alias", f"inferlab:{lab}")
    addr = f"{gateway(index)}/24"
    if f"inet {addr} " not in _ip("-4", "addr", "show", "dev", br).stdout:
        _ip("addr", "add", addr, "dev", br)
    _ip("link", "set", "dev", br, "up")


def create_node_net(lab: str, index: int, k: int) -> None:
    ns, veth, br = netns_name(lab, k), veth_name(index, k), bridge_name(index)
    if not netns_exists(ns):
        _ip("netns", "add", ns)
    if not link_exists(veth):
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    _ip("link", "set", "dev", veth, "master", br)
    _ip("link", "set", "dev", veth, "up")
    _ip("link", "set", "dev", "lo", "up", netns=ns)
    _ip("addr", "replace", f"{node_ip(index, k)}/24", "dev", "eth0", netns=ns)
    _ip("link", "set", "dev", "eth0", "up", netns=ns)
    _ip("route", "replace", "default", "via", gateway(index), netns=ns)


def delete_node_net(lab: str, index: int | None, k: int) -> None:
    if index is not None and link_exists(veth_name(index, k)):
        _ip("link", "del", veth_name(index, k), check=False)
    ns = netns_name(lab, k)
    if netns_exists(ns):
        _ip("netns", "del", ns, check=False)


def delete_bridge(index: int | None) -> None:
    if index is not None and link_exists(bridge_name(index)):
        _ip("link", "del", bridge_name(index), check=False)


def parse_proc_net_tcp(text: str) -> list[tuple[str, int, int]]:
    """(remote IPv4, remote port, socket inode) of each line of ``/proc/net/tcp``."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        addr, port = f[2].split(":")
        ip = ".".join(str(b) for b in reversed(bytes.fromhex(addr)))
        out.append((ip, int(port, 16), int(f[9])))
    return out


def ssh_clients_into(subnet: str, proc: str = "/proc") -> list[int]:
    """Host ``ssh`` processes (e.g. Ansible's ControlPersist masters) connected into ``subnet``.

    A master left from a lab whose node was killed would otherwise be reused by
    the next lab that gets the same addresses.
    """
    net_ = ipaddress.ip_network(subnet)
    try:
        with open(f"{proc}/net/tcp") as f:
            inodes = {ino for ip, port, ino in parse_proc_net_tcp(f.read())
                      if port == 22 and ipaddress.ip_address(ip) in net_ and ino}
    except OSError:
        return []
    pids = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/comm") as f:
                if f.read().strip() != "ssh":
                    continue
            fds = os.listdir(f"{proc}/{entry}/fd")
            links = {os.readlink(f"{proc}/{entry}/fd/{fd}") for fd in fds}
        except OSError:
            continue
        if any(link == f"socket:[{ino}]" for ino in inodes for link in links):
            pids.append(int(entry))
    return pids


def bridges_for(lab: str) -> list[str]:
    """Bridges whose alias says they belong to ``lab`` (found even without state)."""
    found = []
    for entry in json.loads(_ip("-j", "-d", "link", "show", "type", "bridge", check=False).stdout or "[]"):
        if entry.get("ifalias") == f"inferlab:{lab}":
            found.append(entry["ifname"])
    return found


def netns_for(lab: str) -> list[str]:
    prefix = f"inferlab-{lab}-node"
    found = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            found.append(name)
    return found
