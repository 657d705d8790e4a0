"""Render the lab's Ansible inventories (YAML), for both back ends.

Every lab host is reached as root with the lab's key over SSH and carries
``lab_kind`` (``nspawn`` or ``vm``) and ``lab_name``; every host is in
``gpu_hosts``. An nspawn lab puts its nodes in ``lab_nodes`` and names node 1
for the fleet's service groups ``gateways`` and ``monitoring`` (the lab has no
spare machine for them; a real fleet names its own hosts); the VM is in
``lab_vms``.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from lab import ssh


def host_vars(address: str, key: str | Path, kind: str, name: str, **extra) -> dict:
    """The variables of one lab host."""
    hv = {
        "ansible_host": address,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        "ansible_python_interpreter": "/usr/bin/python3",
        "lab_kind": kind,
        "lab_name": name,
    }
    hv.update(extra)
    return hv


def document(children: dict, all_vars: dict | None = None, ssh_args: str = ssh.ANSIBLE_SSH_ARGS) -> dict:
    """An inventory with ``ansible_ssh_common_args`` and ``all_vars`` under ``all``."""
    return {"all": {"vars": {"ansible_ssh_common_args": ssh_args, **(all_vars or {})},
                    "children": children}}


def dump_document(doc: dict, header: str) -> str:
    return f"# {header}\n" + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def render(state: dict) -> dict:
    """The inventory of an nspawn lab as a dict (from its state)."""
    hosts = {}
    for node in sorted(state["nodes"], key=lambda n: n["index"]):
        extra = {"lab_data_disk": node["loop"]} if node.get("loop") else {}
        hosts[node["hostname"]] = host_vars(node["ip"], state["ssh_key"], "nspawn", state["name"], **extra)
    names = {h: {} for h in hosts}
    first = {h: {} for h in list(hosts)[:1]}
    return document(
        {
            "lab_nodes": {"hosts": hosts},
            "gpu_hosts": {"hosts": dict(names)},
            "gateways": {"hosts": dict(first)},
            "monitoring": {"hosts": dict(first)},
        },
        # the host's address on the lab bridge: where nodes reach services the host runs
        {"lab_gateway": state["gateway"], "lab_subnet": state["subnet"]},
    )


def dump(state: dict) -> str:
    return dump_document(render(state), f"inferfleet lab {state['name']!r}: {len(state['nodes'])} nspawn node(s) on "
                                        f"{state['subnet']} (written by `python -m lab up`; removed by `down`)")


def render_vm(*, name: str, port: int, key: str | Path, accel: str, data_disk: str) -> dict:
    """The inventory of one VM (SSH forwarded to a loopback port)."""
    host = f"{name}-vm"
    hv = host_vars("127.0.0.1", key, "vm", name, ansible_port=port, lab_accel=accel, lab_data_disk=data_disk)
    return document({"lab_vms": {"hosts": {host: hv}}, "gpu_hosts": {"hosts": {host: {}}}},
                    ssh_args=ssh.ANSIBLE_SSH_ARGS_BASE)


def dump_vm(*, name: str, port: int, key: str | Path, accel: str, data_disk: str) -> str:
    return dump_document(render_vm(name=name, port=port, key=key, accel=accel, data_disk=data_disk),
                         "written by `python -m lab vm up`; removed by `python -m lab vm down`")
