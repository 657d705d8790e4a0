"""Measure the lab VM: boot to SSH, Ansible per-task cost (stock and mitogen), reboot to SSH.

    .venv/bin/python bench/lab_vm.py [--name bench] [--tasks 10] [--reboots 1]

Boots ``NAME-vm`` with ``python -m lab vm up``, runs ``ansible -m ping`` (the
floor), a playbook of N ``ansible.builtin.command`` tasks with the stock
``linear`` strategy and with mitogen's, reboots the guest with
``systemctl reboot`` and times until SSH runs a command again, then takes the
VM down. Prints seconds and each as a ratio to the ping floor, plus the host's
load average (TCG timings scale with how busy the host is).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.vm import machine as vm  # noqa: E402  (after the sys.path line above)


def _env(strategy: str | None = None) -> dict:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build"))
    env["ANSIBLE_DEPRECATION_WARNINGS"] = "False"
    if strategy == "mitogen":
        import ansible_mitogen  # noqa: PLC0415  (optional: only for this strategy)
        env["ANSIBLE_STRATEGY_PLUGINS"] = str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy")
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    return env


def _timed(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="bench")
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--reboots", type=int, default=1)
    args = ap.parse_args(argv)
    bindir = Path(sys.executable).parent
    rows: list[tuple[str, float]] = []
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    if vm.main(["up", "--name", args.name, "--timeout", "600"]) != 0:
        return 1
    try:
        sdir = vm.state_dir(args.name)
        state = json.loads((sdir / "vm.json").read_text())
        rows.append(("vm up (qemu start to SSH)", state["boot_to_ssh_s"]))
        rows.append(("vm up (whole command)", time.monotonic() - t0))
        inv = str(sdir / "inventory.yml")
        ping = min(_timed([str(bindir / "ansible"), "-i", inv, "all", "-m", "ansible.builtin.ping"], _env())
                   for _attempt in range(3))
        rows.append(("ansible -m ping (best of 3, floor)", ping))
        with tempfile.TemporaryDirectory() as tmp:
            book = Path(tmp) / "tasks.yml"
            one = Path(tmp) / "one.yml"
            task = ('    - name: Task\n      ansible.builtin.command: "true"\n      changed_when: false\n')
            head = "- name: Bench\n  hosts: all\n  gather_facts: false\n  tasks:\n"
            book.write_text(head + task * args.tasks)
            one.write_text(head + task)
            for strategy in ("linear", "mitogen"):
                env = _env(strategy)
                base = _timed([str(bindir / "ansible-playbook"), "-i", inv, str(one)], env)
                full = _timed([str(bindir / "ansible-playbook"), "-i", inv, str(book)], env)
                rows.append((f"playbook, 1 task ({strategy})", base))
                rows.append((f"playbook, {args.tasks} tasks ({strategy})", full))
                rows.append((f"per extra task ({strategy})", (full - base) / max(args.tasks - 1, 1)))
        for i in range(args.reboots):
            t1 = time.monotonic()
            try:
                subprocess.run(vm.ssh_command(sdir, state, ["systemctl", "reboot"]), check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            except subprocess.TimeoutExpired:
                pass  # the session died with the guest: the reboot is under way
            time.sleep(5)
            rows.append((f"systemctl reboot to SSH #{i + 1}", time.monotonic() - t1 + vm.wait_ssh(sdir, state, 600)))
    finally:
        t2 = time.monotonic()
        vm.main(["down", "--name", args.name])
        rows.append(("vm down", time.monotonic() - t2))
    print(f"host load average: {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end "
          f"({os.cpu_count()} CPUs); accel {state['accel']}")
    print(f"{'measurement':44} {'seconds':>8} {'x ping':>7}")
    for label, sec in rows:
        print(f"{label:44} {sec:8.1f} {sec / ping:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
