"""Lab state: what ``up`` made, written before it is made, so ``down`` can undo it.

``/run/inferfleet-lab/NAME/state.json`` holds one JSON object (see ``new_state``).
A reboot removes what the lab made (netns, links, loop devices, mounts); where
``/run`` is not a tmpfs the state file survives it and is then stale (dead
pids): ``up`` and ``down`` handle that.  ``down`` also finds leftovers by name
when the file is missing.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from lab import paths

RUN_DIR = paths.RUN_DIR
DATA_DIR = paths.DATA_DIR
STATE_VERSION = 1


class StateError(ValueError):
    pass


def lab_dir(name: str, run_dir: Path = RUN_DIR) -> Path:
    return run_dir / name


def state_path(name: str, run_dir: Path = RUN_DIR) -> Path:
    return lab_dir(name, run_dir) / "state.json"


def inventory_path(name: str, run_dir: Path = RUN_DIR) -> Path:
    return lab_dir(name, run_dir) / "inventory.yml"


def new_state(name: str, index: int, nodes: int, rootfs: str, key: str,
              disk_size: str | None = None, binds: list[dict] | None = None,
              data_dir: Path = DATA_DIR) -> dict:
    from lab.nspawn import net  # local: keep this module import-light for the tests
    return {
        "version": STATE_VERSION,
        "name": name,
        "kind": "nspawn",
        "subnet_index": index,
        "subnet": str(net.subnet_for(index)),
        "bridge": net.bridge_name(index),
        "gateway": net.gateway(index),
        "rootfs": rootfs,
        "ssh_key": key,
        "disk_size": disk_size,
        "binds": binds or [],
        "nodes": [
            {
                "index": k,
                "hostname": f"{name}-node{k}",
                "netns": net.netns_name(name, k),
                "veth": net.veth_name(index, k),
                "ip": net.node_ip(index, k),
                "dir": str(data_dir / name / f"node{k}"),
                "cgroup": f"inferlab/{name}-node{k}",
                "log": str(RUN_DIR / name / f"node{k}.log"),
                "pid": None,
                "loop": None,
            }
            for k in range(1, nodes + 1)
        ],
    }


def parse_state(text: str) -> dict:
    """Parse and check a state document; raise StateError naming what is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"state is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise StateError(f"state must be an object, got {type(doc).__name__}")
    if doc.get("version") != STATE_VERSION:
        raise StateError(f"state version must be {STATE_VERSION}, got {doc.get('version')!r}")
    for key, typ in (("name", str), ("subnet_index", int), ("bridge", str), ("nodes", list)):
        if not isinstance(doc.get(key), typ):
            raise StateError(f"state field {key!r} must be {typ.__name__}, got {doc.get(key)!r}")
    for node in doc["nodes"]:
        if not isinstance(node, dict):
            raise StateError(f"state node must be an object, got {node!r}")
        for key, typ in (("index", int), ("hostname", str), ("ip", str), ("netns", str), ("dir", str)):
            if not isinstance(node.get(key), typ):
                raise StateError(
                    f"state node field {key!r} must be {typ.__name__}, got {node.get(key)!r}")
        if node.get("pid") is not None and not isinstance(node["pid"], int):
            raise StateError(f"state node field 'pid' must be int or null, got {node['pid']!r}")
    return doc


def load(name: str, run_dir: Path = RUN_DIR) -> dict | None:
    """The lab's state, or None when there is none or it cannot be read."""
    path = state_path(name, run_dir)
    try:
        return parse_state(path.read_text())
    except (OSError, StateError):
        return None


def save(doc: dict, run_dir: Path = RUN_DIR) -> Path:
    path = state_path(doc["name"], run_dir)
    write_atomic(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def lab_names(run_dir: Path = RUN_DIR) -> list[str]:
    """Names of labs that have a state file (readable or not)."""
    if not run_dir.is_dir():
        return []
    return sorted(p.parent.name for p in run_dir.glob("*/state.json"))


def used_indexes(run_dir: Path = RUN_DIR, exclude: str | None = None) -> set[int]:
    used = set()
    for name in lab_names(run_dir):
        if name == exclude:
            continue
        doc = load(name, run_dir)
        if doc:
            used.add(doc["subnet_index"])
    return used
