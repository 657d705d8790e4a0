"""Render the lab's Ansible inventory (YAML) from its state."""
from __future__ import annotations

import yaml

SSH_COMMON_ARGS = ("-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no "
                   "-o LogLevel=ERROR -o ControlMaster=auto -o ControlPersist=120s")


def render(state: dict) -> dict:
    """The inventory as a dict: groups ``lab_nodes`` and ``gpu_hosts`` under ``all``, and the
    fleet's service groups ``gateways`` and ``monitoring`` holding the first node (the lab
    has no spare machine for them; a real fleet names its own hosts)."""
    hosts = {}
    for node in sorted(state["nodes"], key=lambda n: n["index"]):
        hv = {
            "ansible_host": node["ip"],
            "ansible_user": "root",
            "ansible_ssh_private_key_file": state["ssh_key"],
            "ansible_python_interpreter": "/usr/bin/python3",
            "lab_kind": "nspawn",
            "lab_name": state["name"],
        }
        if node.get("loop"):
            hv["lab_data_disk"] = node["loop"]
        hosts[node["hostname"]] = hv
    names = {h: {} for h in hosts}
    first = {h: {} for h in list(hosts)[:1]}
    return {
        "all": {
            "vars": {
                "ansible_ssh_common_args": SSH_COMMON_ARGS,
                # the host's address on the lab bridge: where nodes reach services the host runs
                "lab_gateway": state["gateway"],
                "lab_subnet": state["subnet"],
            },
            "children": {
                "lab_nodes": {"hosts": hosts},
                "gpu_hosts": {"hosts": dict(names)},
                "gateways": {"hosts": dict(first)},
                "monitoring": {"hosts": dict(first)},
            },
        }
    }


def dump(state: dict) -> str:
    header = (f"# inferfleet lab {state['name']!r}: {len(state['nodes'])} nspawn node(s) on "
              f"{state['subnet']} (written by `python -m lab up`; removed by `down`)\n")
    return header + yaml.safe_dump(render(state), sort_keys=False, default_flow_style=False)
