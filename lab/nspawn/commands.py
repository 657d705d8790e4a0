"""The nspawn back end's commands: ``python -m lab up|down|status|inventory|image``.

A fleet of Debian 12 nodes as systemd-nspawn machines on this machine (see
docs/lab.md): ``image`` builds their root tree, ``net`` their bridge and
network namespaces, ``nodes`` boots and stops them, ``limits`` the one host
limit the lab raises. State, paths, names, SSH and the inventory writer are
shared with the VM back end in ``lab/``.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from lab import inventory, mounts, ssh
from lab import state as st
from lab.nspawn import image, limits, net, nodes


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


@contextmanager
def global_lock():
    """Serialises ``up``/``down`` of all labs (subnet allocation, inotify record)."""
    st.RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(st.RUN_DIR / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def require_root() -> None:
    if os.geteuid() != 0:
        raise SystemExit("lab: must run as root (it creates netns, bridges, mounts, cgroups)")


# --- up -------------------------------------------------------------------------

def cmd_up(args) -> int:
    require_root()
    name = net.check_name(args.name)
    if not 1 <= args.nodes <= net.MAX_NODES:
        raise SystemExit(f"lab: --nodes {args.nodes} is not allowed: use 1..{net.MAX_NODES}")
    disk_size = nodes.parse_size(args.disk_size) if args.disk_size else None
    binds = [nodes.check_bind(nodes.parse_bind(b)) for b in args.bind]
    for b in binds:
        if not os.path.exists(b["src"]):
            raise SystemExit(f"lab: --bind source {b['src']!r} does not exist")

    t0 = time.monotonic()
    rootfs = image.build(image.recipe())
    t_image = time.monotonic() - t0

    old = st.load(name)
    if old is not None:
        alive = [n for n in old["nodes"] if nodes.pid_alive(n.get("pid"), n["hostname"])]
        if (len(alive) == len(old["nodes"]) == args.nodes and old.get("disk_size") == args.disk_size
                and old.get("binds") == binds):
            log(f"lab {name} is already up ({args.nodes} nodes)")
            nodes.wait_ssh(old, timeout=60)
            print(st.inventory_path(name))
            return 0
        log(f"lab {name} exists with another shape or dead nodes: taking it down first")
    if old is not None or (st.lab_dir(name) / "state.json").exists() or net.netns_for(name):
        teardown(name, quiet=True)

    def _terminated(signum, _frame):
        raise SystemExit(f"lab: up --name {name} interrupted by signal {signum}")

    # A SIGTERM (e.g. a CI time-out) tears the half-made lab down like a failure does.
    signal.signal(signal.SIGTERM, _terminated)
    t1 = time.monotonic()
    with global_lock():
        index = net.allocate_subnet(net.host_networks(), st.used_indexes(exclude=name))
        ldir = st.lab_dir(name)
        ldir.mkdir(parents=True, exist_ok=True)
        key = str(ssh.keygen(ldir / "id_ed25519", f"inferlab-{ldir.name}"))
        doc = st.new_state(name, index, args.nodes, str(rootfs), key,
                           disk_size=args.disk_size, binds=binds)
        st.save(doc)  # before anything is made: `down` can undo a half-made lab
        limits.raise_limit()
    try:
        pubkey = Path(key + ".pub").read_text()
        net.create_bridge(index, name)
        for node in doc["nodes"]:
            ndir = Path(node["dir"])
            net.create_node_net(name, index, node["index"])
            nodes.mount_overlay(str(rootfs), ndir)
            nodes.write_node_files(ndir, pubkey, node["hostname"])
            if disk_size:
                node["loop"] = nodes.attach_disk(ndir, disk_size)
                st.save(doc)
        for node in doc["nodes"]:
            node["pid"] = nodes.start(doc, node, Path(node["log"]))
        st.save(doc)
        st.write_atomic(st.inventory_path(name), inventory.dump(doc))
        ready = nodes.wait_ssh(doc, timeout=args.timeout)
    except BaseException as exc:
        log(f"up failed ({exc}); tearing {name} down")
        for node in doc["nodes"]:
            try:
                tail = Path(node["log"]).read_text(errors="replace").strip().splitlines()[-15:]
            except OSError:
                continue
            if tail and not nodes.pid_alive(node.get("pid"), node["hostname"]):
                log(f"{node['hostname']} console (last lines):\n    " + "\n    ".join(tail))
        teardown(name, quiet=True)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise SystemExit(f"lab: up --name {name} failed: {exc}") from None
    t_boot = time.monotonic() - t1
    log(f"{name}: {args.nodes} node(s) SSH-ready in {t_boot:.1f} s on {doc['subnet']} "
        f"(image {t_image:.1f} s; slowest node {max(ready.values()):.1f} s)")
    print(st.inventory_path(name))
    return 0


# --- down -----------------------------------------------------------------------

def teardown(name: str, quiet: bool = False) -> list[str]:
    """Undo everything lab ``name`` may have made; safe to call any number of times."""
    done: list[str] = []
    doc = st.load(name)
    data = st.DATA_DIR / name
    index = doc["subnet_index"] if doc else None
    node_list = list(doc["nodes"]) if doc else []
    known = {n["index"] for n in node_list}
    # Nodes the state forgot (or no state at all): find them by name.
    extra = set()
    for ns in net.netns_for(name):
        extra.add(int(ns.rsplit("node", 1)[1]))
    if data.is_dir():
        for d in data.glob("node*"):
            if d.name[4:].isdigit():
                extra.add(int(d.name[4:]))
    for cg_root in [h / "inferlab" for h in nodes.hierarchy_roots()]:
        if not cg_root.is_dir():
            continue
        for d in cg_root.glob(f"{name}-node*"):
            if d.name[len(name) + 5:].isdigit():
                extra.add(int(d.name[len(name) + 5:]))
    for k in sorted(extra - known):
        node_list.append({"index": k, "hostname": f"{name}-node{k}", "netns": net.netns_name(name, k),
                          "dir": str(data / f"node{k}"), "cgroup": f"inferlab/{name}-node{k}",
                          "pid": None})
    demoted = 0
    for node in node_list:
        demoted += len(nodes.stop(node))
    done.append(f"stopped {len(node_list)} node(s)")
    if demoted:
        done.append(f"demoted {demoted} real-time thread(s) to SCHED_OTHER first")
    if index is not None:
        nodes.signal_all(net.ssh_clients_into(str(net.subnet_for(index))), signal.SIGTERM)
    for node in node_list:
        net.delete_node_net(name, index, node["index"])
    if index is not None:
        net.delete_bridge(index)
    for br in net.bridges_for(name):
        subprocess.run(["ip", "link", "del", br], capture_output=True, check=False)
    unmounted = nodes.umount_all(data) if data.exists() else []
    loops = []
    for node in node_list:
        loops += nodes.detach_disk(Path(node["dir"]))
    if data.exists():
        left = mounts.mounts_under(data)
        if left:
            raise SystemExit(f"lab: {name}: still mounted, not removing {data}: {', '.join(left)}")
        shutil.rmtree(data)
    ldir = st.lab_dir(name)
    with global_lock():
        for f in ("state.json", "inventory.yml", "id_ed25519", "id_ed25519.pub"):
            try:
                (ldir / f).unlink()
            except FileNotFoundError:
                pass
        for f in ldir.glob("node*.log") if ldir.is_dir() else []:
            f.unlink()
        try:
            ldir.rmdir()
        except OSError:
            pass
        restored = limits.restore_if_last()
    done.append(f"unmounted {len(unmounted)}, detached {len(loops)} loop device(s)")
    if restored:
        done.append(restored)
    if not quiet:
        log(f"{name} down: " + "; ".join(done))
    return done


def is_node_of(name: str, machine: str) -> bool:
    """``machine`` is node K of lab ``name`` (lab ``a`` does not own ``a-node1x-node1``)."""
    return re.fullmatch(re.escape(name) + r"-node\d+", machine) is not None


def leftovers(name: str, index: int | None = None, max_nodes: int = net.MAX_NODES) -> list[str]:
    """Everything of lab ``name`` still on the host (empty after a good ``down``)."""
    found = []
    found += [f"netns {ns}" for ns in net.netns_for(name)]
    found += [f"bridge {br}" for br in net.bridges_for(name)]
    if index is not None:
        if net.link_exists(net.bridge_name(index)):
            found.append(f"bridge {net.bridge_name(index)}")
        found += [f"veth {net.veth_name(index, k)}" for k in range(1, max_nodes + 1)
                  if os.path.exists(f"/sys/class/net/{net.veth_name(index, k)}")]
    data = st.DATA_DIR / name
    found += [f"mount {mp}" for mp in mounts.mounts_under(data)]
    out = subprocess.run(["losetup", "-a", "-O", "NAME,BACK-FILE", "-n"], capture_output=True,
                         text=True, check=False).stdout
    found += [f"loop {line.split()[0]}" for line in out.splitlines()
              if len(line.split()) > 1 and line.split()[1].startswith(str(data) + "/")]
    machine_re = re.compile(rb"--machine=" + re.escape(name.encode()) + rb"-node\d+")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"systemd-nspawn") and any(machine_re.fullmatch(a) for a in cmd) \
                and nodes.pid_alive(int(entry)):
            found.append(f"process {entry} (systemd-nspawn)")
    for h in nodes.hierarchy_roots():
        top = h / "inferlab"
        if top.is_dir():
            found += [f"cgroup {d}" for d in top.glob(f"{name}-node*") if is_node_of(name, d.name)]
    if nodes.NSPAWN_PROPAGATE.is_dir():
        found += [f"dir {d}" for d in nodes.NSPAWN_PROPAGATE.glob(f"{name}-node*") if is_node_of(name, d.name)]
    if data.exists():
        found.append(f"dir {data}")
    if st.state_path(name).exists() or st.inventory_path(name).exists():
        found.append(f"state {st.lab_dir(name)}")
    return list(dict.fromkeys(found))


def cmd_down(args) -> int:
    require_root()
    net.check_name(args.name)
    doc = st.load(args.name)
    index = doc["subnet_index"] if doc else None
    teardown(args.name)
    left = leftovers(args.name, index)
    if left:
        log(f"{args.name}: LEFT BEHIND after down: " + "; ".join(left))
        return 1
    return 0


# --- status / inventory ----------------------------------------------------------

def cmd_status(args) -> int:
    names = [args.name] if args.name else st.lab_names()
    if not names:
        print("no lab is up")
        return 0
    rc = 0
    for name in names:
        doc = st.load(name)
        if doc is None:
            print(f"{name}: no readable state (run `python -m lab down --name {name}`)")
            rc = 1
            continue
        print(f"{name}: {len(doc['nodes'])} node(s) on {doc['subnet']} bridge {doc['bridge']}; "
              f"inventory {st.inventory_path(name)}")
        for n in doc["nodes"]:
            alive = nodes.pid_alive(n.get("pid"), n["hostname"])
            ssh = "ssh ok" if alive and nodes.ssh_banner(n["ip"]) else "no ssh"
            disk = f" disk {n['loop']}" if n.get("loop") else ""
            print(f"  {n['hostname']:<24} {n['ip']:<15} pid {n.get('pid')} "
                  f"{'running' if alive else 'DEAD'}, {ssh}{disk}")
            rc |= 0 if alive else 1
    rec = limits.record_path()
    if rec.is_file():
        print(f"fs.inotify.max_user_instances {limits.read()} (original {json.loads(rec.read_text())['original']})")
    return rc


def cmd_inventory(args) -> int:
    path = st.inventory_path(net.check_name(args.name))
    if not path.is_file():
        print(f"lab: no inventory for {args.name}: is it up? (python -m lab up --name {args.name})",
              file=sys.stderr)
        return 1
    print(path)
    return 0


def cmd_image(args) -> int:
    require_root()
    tree = image.build(image.recipe())
    print(tree)
    if args.prune:
        in_use = {Path(d["rootfs"]) for d in (st.load(n) for n in st.lab_names()) if d}
        for old in image.prune(tree, keep_also=in_use):
            log(f"removed {old}")
    return 0
