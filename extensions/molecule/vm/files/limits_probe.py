"""Measure, inside the VM, whether systemd's cgroup limits are really enforced.

Runs with the target's own Python (3.11) through ansible.builtin.script and
prints one JSON object.  Nothing here decides pass or fail: the verify playbook
asserts on the numbers, so a kernel that does not enforce a limit shows up as
a failed assertion with the measured value.

- cpu_free_pct:   a busy loop in a transient unit without a quota (the baseline)
- cpu_quota_pct:  the same loop with CPUQuota=50%
- fifo_quota_pct: the same loop under SCHED_FIFO with CPUQuota=20%
- mem_limited:    a 300 MiB allocation under MemoryMax=100M (expected: oom-kill)
- mem_control:    the same allocation under MemoryMax=400M (expected: success)
Percentages are of one CPU, from the unit cgroup's cpu.stat usage_usec.
"""
import json
import os
import subprocess
import sys
import time

CG = "/sys/fs/cgroup"
LOOP = ["/bin/sh", "-c", "while :; do :; done"]
WINDOW = float(os.environ.get("PROBE_WINDOW", "4"))


def sh(cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def usage_usec(unit):
    with open(f"{CG}/system.slice/{unit}/cpu.stat", encoding="ascii") as fh:
        for line in fh:
            key, val = line.split()
            if key == "usage_usec":
                return int(val)
    raise RuntimeError(f"no usage_usec for {unit}")


def read(path):
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def busy(unit, props):
    """Run the loop in a transient unit, return (percent of one CPU, cpu.max, policy)."""
    name = f"{unit}.service"
    sh(["systemctl", "stop", name], check=False)
    sh(["systemctl", "reset-failed", name], check=False)
    sh(["systemd-run", "--quiet", f"--unit={unit}", *[f"--property={p}" for p in props], *LOOP])
    try:
        time.sleep(1.0)  # let it start and the quota period settle
        pid = sh(["systemctl", "show", "-p", "MainPID", "--value", name]).stdout.strip()
        policy = sh(["chrt", "-p", pid], check=False).stdout.strip()
        u0, t0 = usage_usec(name), time.monotonic()
        time.sleep(WINDOW)
        u1, t1 = usage_usec(name), time.monotonic()
        cpu_max = read(f"{CG}/system.slice/{name}/cpu.max")
    finally:
        sh(["systemctl", "stop", name], check=False)
    return round(100.0 * (u1 - u0) / ((t1 - t0) * 1e6), 1), cpu_max, policy


def allocate(limit):
    """Allocate and touch 300 MiB under MemoryMax=limit; return systemd's verdict."""
    res = sh(["systemd-run", "--wait", "--collect", f"--property=MemoryMax={limit}",
              "--property=MemorySwapMax=0", "/usr/bin/python3", "-c",
              "b = b'x' * (300 << 20); print(len(b))"], check=False)
    # systemd-run --wait reports "Finished with result: oom-kill" on stderr
    result = "success" if res.returncode == 0 else "failed"
    for line in (res.stderr or "").splitlines():
        if "Finished with result:" in line:
            result = line.split(":", 1)[1].strip()
    return {"limit": limit, "rc": res.returncode, "result": result}


def main():
    out = {
        "pid1": read("/proc/1/comm"),
        "cgroup2": read(f"{CG}/cgroup.controllers") is not None,
        "sched_rt_runtime_us": int(read("/proc/sys/kernel/sched_rt_runtime_us") or -2),
        "rt_group_sched": os.path.exists(f"{CG}/system.slice/cpu.rt_runtime_us"),
    }
    out["cpu_free_pct"] = busy("ifl-probe-free", [])[0]
    out["cpu_quota_pct"], out["cpu_quota_cpu_max"] = busy("ifl-probe-quota", ["CPUQuota=50%"])[:2]
    out["fifo_quota_pct"], out["fifo_cpu_max"], out["fifo_policy"] = busy(
        "ifl-probe-fifo", ["CPUQuota=20%", "CPUSchedulingPolicy=fifo", "CPUSchedulingPriority=10"])
    out["mem_limited"] = allocate("100M")
    out["mem_control"] = allocate("400M")
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
