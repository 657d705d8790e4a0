"""A real Debian 12 virtual machine for what containers cannot show.

``python -m lab vm up --name NAME`` boots a qemu VM with a kernel of its own
(systemd as PID 1, cgroup v2), reachable by SSH on a loopback port, with a
second virtio disk for an XFS model volume.  nspawn nodes share the host
kernel, so cgroup limits, sysctl/THP/I/O-scheduler writes and persistence
across a reboot can only be shown here.

    python -m lab vm build [--force]
    python -m lab vm up     --name NAME [--disk-size 2G] [--memory 2048] [--cpus 2]
                            [--accel auto|kvm|tcg] [--cpu-model MODEL] [--timeout 180]
                            [--kernel-arg ARG]... [--keep-on-failure]
    python -m lab vm down   --name NAME          # idempotent, also after a crash
    python -m lab vm status [--name NAME]
    python -m lab vm ssh    --name NAME -- CMD...
    python -m lab vm inventory --name NAME       # prints the inventory path

The image (``lab/vm/image.py``) is built once and cached under
``/var/cache/inferfleet-lab/vm-<recipehash>/``.  Every boot gets a fresh qcow2
overlay in the state directory ``/run/inferfleet-lab/NAME-vm/``, so the base
image never changes.

``/dev/kvm`` is not trusted blindly: on this kind of machine it is the
``kvm_pvm`` software virtualizer, on which a stock Debian kernel hangs in its
decompressor, so ``--accel auto`` uses TCG unless a hardware KVM module
(``kvm_intel``/``kvm_amd``) is loaded and ``kvm_pvm`` is not.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from lab import inventory, names, paths, ssh
from lab.vm import image as vm_image
from lab.vm.base import LabVMError, log, remove_tree, run

STATE_ROOT = paths.RUN_DIR
SIZE_RE = re.compile(r"^[1-9][0-9]*[KMGT]?$")
# ERMS off (the guest then clears pages with rep stosq, not rep stosb). Reboots
# of the default `max` CPU after Ansible work on a loaded host crawled here
# (soft lockups in clear_page_erms, udev timing out, emergency mode; 4-6 min);
# with ERMS off three reboots took 59-76 s. A freshly booted `max` VM also
# rebooted in 81 s once, so this is a precaution, not a proven cure.
TCG_CPU = "max,-erms"
CPU_RE = re.compile(r"^[A-Za-z0-9_.-]+(,[+-]?[A-Za-z0-9_.=-]+)*$")
KARG_RE = re.compile(r"^[A-Za-z0-9_.-]+(=[A-Za-z0-9_.,:/=+-]*)?$")
NAME_MAX = 31  # the qemu process name and state dir carry it
DATA_DISK = "/dev/vdb"


# --------------------------------------------------------------------------- pure parts

def state_dir(name: str, state_root: Path | None = None) -> Path:
    return (state_root or STATE_ROOT) / f"{name}-vm"


def check_name(name: str) -> str:
    return names.check_name(name, NAME_MAX, error=LabVMError)


def check_size(size: str) -> str:
    if not SIZE_RE.match(size or ""):
        raise LabVMError(f"--disk-size {size!r} is not allowed: use a whole number with an "
                         "optional K, M, G or T suffix, e.g. 2G")
    return size


def check_kernel_arg(arg: str) -> str:
    if not KARG_RE.match(arg or "") or arg.split("=", 1)[0] in ("root", "console", "init", "rw", "ro"):
        raise LabVMError(f"--kernel-arg {arg!r} is not allowed: use one word like key=value "
                         "(letters, digits, . _ - , = : /), not root/console/init/rw/ro")
    return arg


def choose_accel(requested: str, sys_root: Path = Path("/"), dev_kvm: Path = Path("/dev/kvm")) -> tuple[str, str]:
    """Pick the accelerator.  Returns (accel, reason).

    ``auto`` takes KVM only when a hardware KVM module is loaded, the
    ``kvm_pvm`` software virtualizer is not, and /dev/kvm opens read-write.
    """
    if requested not in ("auto", "kvm", "tcg"):
        raise LabVMError(f"--accel {requested!r} is not allowed: use auto, kvm or tcg")
    if requested == "tcg":
        return "tcg", "asked for tcg"
    modules = sys_root / "sys" / "module"
    if (modules / "kvm_pvm").exists():
        reason = "kvm_pvm (software virtualizer) is loaded: stock kernels hang under it"
        if requested == "kvm":
            raise LabVMError(f"--accel kvm refused: {reason}; use --accel tcg or auto")
        return "tcg", reason
    hw = [m for m in ("kvm_intel", "kvm_amd") if (modules / m).exists()]
    usable = bool(hw) and dev_kvm.exists() and os.access(dev_kvm, os.R_OK | os.W_OK)
    if requested == "kvm":
        if not usable:
            raise LabVMError("--accel kvm refused: no kvm_intel/kvm_amd module or /dev/kvm not usable")
        return "kvm", f"asked for kvm ({hw[0]})"
    if usable:
        return "kvm", f"{hw[0]} loaded and /dev/kvm usable"
    return "tcg", "no hardware KVM (kvm_intel/kvm_amd) available"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def kernel_cmdline(name: str, extra: list[str] | tuple[str, ...] = ()) -> str:
    base = f"root=/dev/vda rw console=ttyS0 systemd.hostname={name}-vm net.ifnames=0 mitigations=off"
    return " ".join([base, *extra])


def qemu_command(*, name: str, sdir: Path, image: Path, port: int, accel: str,
                 memory: int = 2048, cpus: int = 2, kernel_args: list[str] | tuple[str, ...] = (),
                 cpu_model: str | None = None, qemu: str = "qemu-system-x86_64") -> list[str]:
    """The qemu command line (daemonized; no -no-reboot, so a guest reboot comes back)."""
    if accel == "kvm":
        accel_args = ["-accel", "kvm", "-cpu", cpu_model or "host"]
    else:
        accel_args = ["-accel", "tcg,thread=multi", "-cpu", cpu_model or TCG_CPU]
    return [
        qemu, "-name", f"{name}-vm,process=inferfleet-{name}-vm",
        *accel_args,
        "-smp", str(cpus), "-m", str(memory),
        "-nodefaults", "-display", "none", "-no-user-config",
        "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
        "-append", kernel_cmdline(name, kernel_args),
        "-drive", f"file={sdir / 'overlay.qcow2'},if=none,id=root,format=qcow2,cache=unsafe,discard=unmap",
        "-device", "virtio-blk-pci,drive=root,serial=inferfleet-root",
        # one queue so the kernel's default scheduler is mq-deadline, not none: a
        # scheduler rule that did not come back after a reboot is then visible.
        "-drive", f"file={sdir / 'data.raw'},if=none,id=data,format=raw,cache=writeback",
        "-device", "virtio-blk-pci,drive=data,serial=inferfleet-data,num-queues=1",
        # restrict=on: the guest reaches nothing but the forwarded port (no outside traffic).
        "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=net0",
        "-serial", f"file:{sdir / 'console.log'}",
        "-monitor", "none",
        "-qmp", f"unix:{sdir / 'qmp.sock'},server=on,wait=off",
        "-pidfile", str(sdir / "qemu.pid"),
        "-daemonize",
    ]


def console_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return "(no console log)"
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- VM lifecycle

def _read_state(sdir: Path) -> dict:
    try:
        return json.loads((sdir / "vm.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _pid_of(sdir: Path) -> int | None:
    """The qemu pid of this VM, only if that process really is our qemu."""
    candidates = []
    with contextlib.suppress(FileNotFoundError, ValueError):
        candidates.append(int((sdir / "qemu.pid").read_text().strip()))
    candidates += _scan_qemu(sdir)
    for pid in candidates:
        if _is_our_qemu(pid, sdir):
            return pid
    return None


def _is_our_qemu(pid: int, sdir: Path) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return bool(cmd) and b"qemu-system" in cmd[0] and any(str(sdir).encode() in a for a in cmd)


def _scan_qemu(sdir: Path) -> list[int]:
    """qemu processes whose command line names this state dir (e.g. the pidfile was lost)."""
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and _is_our_qemu(int(p.name), sdir):
            found.append(int(p.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    with contextlib.suppress(FileNotFoundError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def ssh_command(sdir: Path, state: dict, cmd: list[str] | None = None) -> list[str]:
    return ssh.command(sdir / "id_ed25519", "127.0.0.1", *(cmd or []), port=state["port"])


def wait_ssh(sdir: Path, state: dict, timeout: float) -> float:
    """Seconds until SSH runs a command in the VM; raises with the console tail on failure."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        pid = _pid_of(sdir)
        if pid is None or not _alive(pid):
            raise LabVMError(f"qemu exited while booting; console tail:\n{console_tail(sdir / 'console.log')}")
        try:
            res = subprocess.run(ssh_command(sdir, state, ["true"]), capture_output=True, timeout=20, check=False)
            if res.returncode == 0:
                return time.monotonic() - t0
        except subprocess.TimeoutExpired:
            pass
        time.sleep(1)
    raise LabVMError(f"no SSH on 127.0.0.1:{state['port']} after {timeout:.0f} s; console tail:\n"
                     f"{console_tail(sdir / 'console.log')}")


def vm_up(name: str, disk_size: str, memory: int, cpus: int, accel_req: str, timeout: float,
          keep_on_failure: bool = False, kernel_args: list[str] | None = None,
          cpu_model: str | None = None) -> int:
    check_name(name)
    check_size(disk_size)
    if cpu_model is not None and not CPU_RE.match(cpu_model):
        raise LabVMError(f"--cpu-model {cpu_model!r} is not allowed: use a qemu -cpu value like max or max,-erms")
    kernel_args = list(kernel_args or [])
    for arg in kernel_args:
        check_kernel_arg(arg)
    if memory < 256 or cpus < 1:
        raise LabVMError(f"--memory {memory} / --cpus {cpus} not allowed: need memory >= 256 (MiB), cpus >= 1")
    sdir = state_dir(name)
    state = _read_state(sdir)
    pid = _pid_of(sdir)
    if pid and _alive(pid) and state:
        wait_ssh(sdir, state, 30)
        log(f"{name}-vm already up (pid {pid}, ssh port {state['port']})")
        print(sdir / "inventory.yml")
        return 0
    if sdir.exists():
        log(f"cleaning stale state of {name}-vm")
        vm_down(name, quiet=True)
    accel, reason = choose_accel(accel_req)
    image = vm_image.build_image()
    sdir.mkdir(parents=True)
    try:
        shutil.copy2(image / "id_ed25519", sdir / "id_ed25519")
        os.chmod(sdir / "id_ed25519", 0o600)
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image / "base.raw"), "-F", "raw",
             str(sdir / "overlay.qcow2")], capture_output=True)
        run(["qemu-img", "create", "-q", "-f", "raw", str(sdir / "data.raw"), disk_size], capture_output=True)
        t0 = time.monotonic()
        for attempt in range(5):
            port = free_port()
            cmd = qemu_command(name=name, sdir=sdir, image=image, port=port, accel=accel,
                               memory=memory, cpus=cpus, kernel_args=kernel_args, cpu_model=cpu_model)
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode == 0:
                break
            if "hostfwd" in res.stderr or "forwarding rule" in res.stderr:
                continue  # someone took the port between our probe and qemu's bind
            raise LabVMError(f"qemu failed (exit {res.returncode}): {res.stderr.strip()}")
        else:
            raise LabVMError("qemu could not bind a forwarding port after 5 attempts")
        state = {"name": name, "port": port, "accel": accel, "accel_reason": reason, "memory": memory,
                 "cpus": cpus, "disk_size": disk_size, "kernel_args": kernel_args, "image": str(image), "started": time.time(),
                 "command": cmd}
        (sdir / "vm.json").write_text(json.dumps(state, indent=1) + "\n")
        (sdir / "inventory.yml").write_text(inventory.dump_vm(name=name, port=port, key=sdir / "id_ed25519",
                                                              accel=accel, data_disk=DATA_DISK))
        log(f"{name}-vm booting ({accel}: {reason}), ssh port {port} ...")
        waited = wait_ssh(sdir, state, timeout)
        state["boot_to_ssh_s"] = round(time.monotonic() - t0, 1)
        (sdir / "vm.json").write_text(json.dumps(state, indent=1) + "\n")
        log(f"{name}-vm up: SSH after {waited:.1f} s; inventory {sdir / 'inventory.yml'}")
    except BaseException:
        if not keep_on_failure:
            vm_down(name, quiet=True)
        raise
    print(sdir / "inventory.yml")
    return 0


def vm_down(name: str, quiet: bool = False) -> int:
    # No real-time demotion here (the nspawn ``down`` has one): a SCHED_FIFO unit
    # in the VM is real-time for the guest's kernel only; on the host qemu's
    # threads are SCHED_OTHER.
    check_name(name)
    sdir = state_dir(name)
    pids = set(_scan_qemu(sdir))
    pid = _pid_of(sdir)
    if pid:
        pids.add(pid)
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for p in pids:
        if _alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    still = [p for p in pids if _alive(p)]
    if still:
        raise LabVMError(f"qemu pid(s) {still} of {name}-vm did not exit")
    existed = sdir.exists()
    remove_tree(sdir)
    if not quiet:
        log(f"{name}-vm down" + (f" (stopped qemu pid {sorted(pids)})" if pids else "")
            + ("" if existed or pids else " (was not up)"))
    return 0


def vm_status(name: str | None) -> int:
    dirs = [state_dir(check_name(name))] if name else \
        sorted(p.parent for p in STATE_ROOT.glob("*-vm/vm.json"))
    rows = []
    for sdir in dirs:
        if not sdir.is_dir():
            continue
        st = _read_state(sdir)
        pid = _pid_of(sdir)
        up = bool(pid and _alive(pid))
        age = f"{time.time() - st['started']:.0f}s" if st.get("started") else "-"
        rows.append((sdir.name, "running" if up else "dead", str(pid or "-"), str(st.get("port", "-")),
                     st.get("accel", "-"), age, str(sdir / "inventory.yml")))
    if not rows:
        print("no lab VMs" + (f" named {name}" if name else ""))
        return 0 if not name else 1
    head = ("VM", "STATE", "PID", "SSH", "ACCEL", "UPTIME", "INVENTORY")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0 if all(r[1] == "running" for r in rows) else 1


def vm_ssh(name: str, cmd: list[str]) -> int:
    sdir = state_dir(check_name(name))
    state = _read_state(sdir)
    if not state:
        raise LabVMError(f"{name}-vm is not up (no {sdir / 'vm.json'})")
    return subprocess.call(ssh_command(sdir, state, cmd))


# --------------------------------------------------------------------------- CLI

def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m lab vm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or reuse) the cached VM image")
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    u = sub.add_parser("up", help="boot a VM and wait for SSH")
    u.add_argument("--name", required=True)
    u.add_argument("--disk-size", default="2G", help="size of the data disk /dev/vdb (default 2G)")
    u.add_argument("--memory", type=int, default=2048, help="MiB (default 2048)")
    u.add_argument("--cpus", type=int, default=2)
    u.add_argument("--accel", default="auto", choices=["auto", "kvm", "tcg"])
    u.add_argument("--timeout", type=float, default=180, help="seconds to wait for SSH (default 180)")
    u.add_argument("--kernel-arg", action="append", default=[], metavar="ARG",
                   help="extra kernel command-line argument (repeatable), e.g. transparent_hugepage=madvise")
    u.add_argument("--cpu-model", help=f"qemu -cpu value (default {TCG_CPU} under TCG, host under KVM)")
    u.add_argument("--keep-on-failure", action="store_true", help="leave a VM that failed to boot for debugging")
    d = sub.add_parser("down", help="stop the VM and remove its state (idempotent)")
    d.add_argument("--name", required=True)
    s = sub.add_parser("status", help="list lab VMs")
    s.add_argument("--name")
    x = sub.add_parser("ssh", help="run a command in the VM (or a shell)")
    x.add_argument("--name", required=True)
    x.add_argument("command", nargs=argparse.REMAINDER)
    i = sub.add_parser("inventory", help="print the inventory path of a VM")
    i.add_argument("--name", required=True)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.cmd == "build":
            print(vm_image.build_image(force=args.force))
            return 0
        if args.cmd == "up":
            return vm_up(args.name, args.disk_size, args.memory, args.cpus, args.accel, args.timeout,
                         args.keep_on_failure, args.kernel_arg, args.cpu_model)
        if args.cmd == "down":
            return vm_down(args.name)
        if args.cmd == "status":
            return vm_status(args.name)
        if args.cmd == "ssh":
            cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
            return vm_ssh(args.name, cmd)
        if args.cmd == "inventory":
            path = state_dir(check_name(args.name)) / "inventory.yml"
            if not path.is_file():
                raise LabVMError(f"{args.name}-vm is not up (no {path})")
            print(path)
            return 0
    except LabVMError as exc:
        print(f"lab vm: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
