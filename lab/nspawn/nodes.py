"""One lab node: an overlay of the cached root, a cgroup, a systemd-nspawn --boot.

PID 1 on this kind of machine is not systemd, so nothing gives nspawn a cgroup
of its own: each node is started inside ``<hierarchy>/inferlab/NAME-nodeK`` of
the named ``systemd`` v1 hierarchy and of the ``unified`` v2 one, otherwise
all nodes share (and fight over) the same sub-cgroups.  A node is stopped with
SIGTERM to systemd-nspawn (it then powers the container off cleanly);
SIGRTMIN+4 would orphan the container.

A node shares the host's kernel and scheduler, so a unit of the node with
``CPUSchedulingPolicy=fifo`` (vLLM under the lab's tuning) runs real-time on the
host.  ``stop`` demotes every real-time thread under the node's cgroup to
SCHED_OTHER before each signal: a SIGKILLed thread group whose FIFO threads keep
spinning until the kernel reaps them can otherwise starve the host.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from lab import mounts, ssh

CGROUP_ROOT = Path("/sys/fs/cgroup")
NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
CGROUP_HIERARCHIES = ("systemd", "unified", "devices")

# What a node may open (cgroup v1 devices controller), as nspawn's own
# DevicePolicy=closed would give a registered machine: the pseudo devices, ptys,
# /dev/net/tun, plus the node's own data disk.  mknod stays allowed, opening
# other devices (another node's loop disk, the host's disks) does not.
DEVICE_ALLOW = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",  # tty console ptmx pts
    "c 10:200 rwm",  # net/tun
)


# --- pure helpers -------------------------------------------------------------

def parse_bind(spec: str) -> dict:
    """``SRC:DST[:ro]`` -> {'src', 'dst', 'ro'}; raises ValueError naming the problem."""
    parts = spec.split(":")
    ro = False
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        ro = parts[2] == "ro"
        parts = parts[:2]
    if len(parts) == 1:
        parts = [parts[0], parts[0]]
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ValueError(f"--bind {spec!r} is not allowed: use SRC:DST or SRC:DST:ro")
    src, dst = parts
    if not src.startswith("/") or not dst.startswith("/"):
        raise ValueError(f"--bind {spec!r} is not allowed: SRC and DST must be absolute paths")
    return {"src": os.path.normpath(src), "dst": os.path.normpath(dst), "ro": ro}


FORBIDDEN_BIND_DST = ("/proc", "/sys", "/dev")


def check_bind(bind: dict) -> dict:
    dst = bind["dst"]
    for bad in FORBIDDEN_BIND_DST:
        if dst == bad or dst.startswith(bad + "/"):
            raise ValueError(f"--bind destination {dst!r} is not allowed: kernel paths "
                             f"({', '.join(FORBIDDEN_BIND_DST)}) stay read-only in nodes")
    if dst == "/":
        raise ValueError("--bind destination '/' is not allowed")
    return bind


def parse_size(text: str) -> int:
    """'2G', '512M', '1024K', '1T' or bytes -> bytes (powers of 1024)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = (text or "").strip().upper().removesuffix("IB").removesuffix("B")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = int(float(num) * units[unit])
    except ValueError:
        raise ValueError(f"--disk-size {text!r} is not allowed: use a size such as 512M or 2G") from None
    if value < 300 << 20:
        raise ValueError(f"--disk-size {text!r} is too small: XFS needs at least 300M")
    return value


def nspawn_command(state: dict, node: dict) -> list[str]:
    cmd = [
        "systemd-nspawn", "--boot", "--quiet", "--register=no", "--keep-unit",
        f"--directory={node['dir']}/root",
        f"--machine={node['hostname']}", f"--hostname={node['hostname']}",
        f"--network-namespace-path=/run/netns/{node['netns']}",
        "--console=pipe", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
    ]
    for bind in state.get("binds", []):
        flag = "--bind-ro" if bind["ro"] else "--bind"
        cmd.append(f"{flag}={bind['src']}:{bind['dst']}")
    if node.get("loop"):
        cmd.append(f"--bind={node['loop']}")
    return cmd


# --- overlay ------------------------------------------------------------------

def mount_overlay(rootfs: str, node_dir: Path) -> None:
    upper, work, merged = node_dir / "upper", node_dir / "work", node_dir / "root"
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    if mounts.is_mountpoint(merged):
        return
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={rootfs},upperdir={upper},workdir={work}", str(merged)],
                   check=True, capture_output=True, text=True)


def umount_all(prefix: str | Path) -> list[str]:
    done = []
    for mp in mounts.mounts_under(prefix):
        proc = subprocess.run(["umount", mp], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            subprocess.run(["umount", "-l", mp], capture_output=True, check=False)
        done.append(mp)
    return done


# --- per-node files in the upper layer -----------------------------------------

def write_node_files(node_dir: Path, pubkey: str, hostname: str) -> None:
    """Files each node gets on top of the shared root (written to the upper layer)."""
    root = node_dir / "root"
    ssh.authorize(root, pubkey)
    (root / "etc" / "hostname").write_text(hostname + "\n")
    hosts = root / "etc" / "hosts"
    hosts.write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n"
                     "::1\tlocalhost ip6-localhost ip6-loopback\n")


# --- cgroups ------------------------------------------------------------------

def hierarchy_roots(root: Path = CGROUP_ROOT) -> list[Path]:
    """Where node cgroups go: the named ``systemd``, ``unified`` and ``devices``
    hierarchies of a hybrid host (this machine), or the root of a pure cgroup v2 host."""
    if (root / "cgroup.controllers").is_file():
        return [root]
    return [root / h for h in CGROUP_HIERARCHIES if (root / h).is_dir()]


def cgroup_dirs(cgroup: str, root: Path = CGROUP_ROOT) -> list[Path]:
    return [h / cgroup for h in hierarchy_roots(root)]


def cgroup_pids(cgroup: str, root: Path = CGROUP_ROOT) -> set[int]:
    pids = set()
    for top in cgroup_dirs(cgroup, root):
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                pass
    return pids


def remove_cgroup(cgroup: str, root: Path = CGROUP_ROOT) -> None:
    for hroot in hierarchy_roots(root):
        top = hroot / cgroup
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                      reverse=True)
        for d in dirs + [top]:
            try:
                d.rmdir()
            except OSError:
                pass
        parent = top.parent
        while parent != hroot:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


def _enter_cgroups(dirs: list[Path]):
    def enter():
        for d in dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))
        os.setsid()
    return enter


# --- real-time threads ----------------------------------------------------------

# Scheduling policies that run ahead of every SCHED_OTHER thread of the host.
REALTIME_POLICIES = {1: "SCHED_FIFO", 2: "SCHED_RR", 6: "SCHED_DEADLINE"}


def thread_policy(stat: str) -> int:
    """Field 41 (``policy``) of a ``/proc/PID/task/TID/stat`` line."""
    return int(stat.rsplit(")", 1)[1].split()[38])


def realtime_threads(pids, proc: Path = Path("/proc")) -> dict[int, int]:
    """{tid: policy} of every real-time thread of the processes ``pids``."""
    found = {}
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(proc / str(pid) / "task") if t.isdigit()]
        except OSError:
            continue  # gone meanwhile
        for tid in tids:
            try:
                policy = thread_policy((proc / str(pid) / "task" / str(tid) / "stat").read_text())
            except (OSError, IndexError, ValueError):
                continue
            if policy in REALTIME_POLICIES:
                found[tid] = policy
    return found


def _set_other(tid: int) -> None:
    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))


def demote_realtime(pids, proc: Path = Path("/proc"), set_other=_set_other) -> list[int]:
    """Put every real-time thread of ``pids`` on SCHED_OTHER; returns the threads demoted."""
    done = []
    for tid in sorted(realtime_threads(pids, proc)):
        try:
            set_other(tid)
        except ProcessLookupError:
            continue
        done.append(tid)
    return done


# --- start / stop -------------------------------------------------------------

def device_rules(loop: str | None, rdev: tuple[int, int] | None = None) -> list[str]:
    rules = list(DEVICE_ALLOW)
    if loop:
        if rdev is None:
            st_ = os.stat(loop)
            rdev = (os.major(st_.st_rdev), os.minor(st_.st_rdev))
        rules.append(f"b {rdev[0]}:{rdev[1]} rwm")
    return rules


def limit_devices(cgroup: str, rules: list[str], root: Path = CGROUP_ROOT) -> None:
    d = root / "devices" / cgroup
    if not (root / "devices").is_dir():
        return
    d.mkdir(parents=True, exist_ok=True)
    (d / "devices.deny").write_text("a")
    for rule in rules:
        (d / "devices.allow").write_text(rule)


def start(state: dict, node: dict, log_path: Path) -> int:
    dirs = cgroup_dirs(node["cgroup"])
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    limit_devices(node["cgroup"], device_rules(node.get("loop")))
    log = open(log_path, "ab")
    try:
        # No image lock files: the overlay is the node's own, and a killed nspawn
        # would leave its lock file behind in /run/systemd/nspawn/locks.
        env = dict(os.environ, SYSTEMD_NSPAWN_LOCK="0")
        proc = subprocess.Popen(nspawn_command(state, node), stdin=subprocess.DEVNULL, env=env,
                                stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_enter_cgroups(dirs), close_fds=True)
    finally:
        log.close()
    return proc.pid


def pid_alive(pid: int | None, machine: str | None = None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except OSError:
        return False
    if not cmd or not cmd[0].endswith(b"systemd-nspawn"):
        return False
    return machine is None or f"--machine={machine}".encode() in cmd


def nspawn_pids(machine: str) -> list[int]:
    """Every live systemd-nspawn for ``machine`` (also those a lost state forgot)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and pid_alive(int(entry), machine):
            pids.append(int(entry))
    return pids


def signal_all(pids, sig: int) -> None:
    """Send ``sig`` to each of ``pids``; one that is already gone is skipped."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(node: dict, timeout: float = 15.0) -> set[int]:
    """Demote the node's real-time threads, SIGTERM every nspawn of the node, wait, then
    SIGKILL whatever is left in its cgroup (demoting again first); returns the threads demoted."""
    pids = set(nspawn_pids(node["hostname"]))
    if node.get("pid") and pid_alive(node["pid"], node["hostname"]):
        pids.add(node["pid"])
    demoted = set(demote_realtime(cgroup_pids(node["cgroup"]) | pids))
    signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids:
            _reap(pid)
        if not any(pid_alive(p) for p in pids) and not cgroup_pids(node["cgroup"]):
            break
        time.sleep(0.1)
    for _attempt in range(50):
        left = cgroup_pids(node["cgroup"]) | {p for p in pids if pid_alive(p)}
        if not left:
            break
        demoted.update(demote_realtime(left))
        signal_all(left, signal.SIGKILL)
        for pid in left:
            _reap(pid)
        time.sleep(0.1)
    remove_cgroup(node["cgroup"])
    # nspawn removes this itself on a clean exit, not when it was killed.
    shutil.rmtree(NSPAWN_PROPAGATE / node["hostname"], ignore_errors=True)
    return demoted


# --- disks --------------------------------------------------------------------

def attach_disk(node_dir: Path, size: int) -> str:
    img = node_dir / "disk.img"
    if not img.exists():
        with open(img, "wb") as f:
            f.truncate(size)
    existing = loops_for(img)
    if existing:
        return existing[0]
    out = subprocess.run(["losetup", "--find", "--show", str(img)], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def loops_for(img: str | Path) -> list[str]:
    out = subprocess.run(["losetup", "-j", str(img), "-O", "NAME", "-n"],
                         capture_output=True, text=True, check=False)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def detach_disk(node_dir: Path) -> list[str]:
    loops = loops_for(node_dir / "disk.img")
    for dev in loops:
        subprocess.run(["losetup", "-d", dev], capture_output=True, check=False)
    return loops


def remove_node_dir(node_dir: Path) -> None:
    if node_dir.exists():
        if mounts.mounts_under(node_dir):
            raise RuntimeError(f"refusing to remove {node_dir}: something is still mounted there")
        shutil.rmtree(node_dir)


# --- readiness ----------------------------------------------------------------

def ssh_banner(ip: str, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait_ssh(state: dict, timeout: float = 120.0) -> dict[str, float]:
    """Wait until every node answers a real SSH login; return seconds per node."""
    start = time.monotonic()
    pending = {n["hostname"]: n for n in state["nodes"]}
    ready: dict[str, float] = {}
    procs: dict[str, subprocess.Popen] = {}
    while pending or procs:
        if time.monotonic() - start > timeout:
            for p in procs.values():
                p.kill()
            raise TimeoutError(f"nodes not SSH-ready after {timeout:.0f} s: "
                               f"{', '.join(sorted(set(pending) | set(procs)))}")
        for host, node in list(pending.items()):
            if not pid_alive(node.get("pid"), host):
                raise RuntimeError(f"{host}: systemd-nspawn exited; see {node.get('log')}")
            if ssh_banner(node["ip"]):
                procs[host] = subprocess.Popen(ssh.command(state["ssh_key"], node["ip"], "true"),
                                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
                del pending[host]
        for host, p in list(procs.items()):
            rc = p.poll()
            if rc is None:
                continue
            del procs[host]
            if rc == 0:
                ready[host] = time.monotonic() - start
            else:
                pending[host] = next(n for n in state["nodes"] if n["hostname"] == host)
        time.sleep(0.1)
    return ready
