"""Where do processes run on a CPU-partitioned host? Run inside the VM; print one JSON object.

Arguments: the model servers' slice (inferfleet.slice), the instance CPUs (cpulist),
the name of the boot-started probe units' prefix.

It starts, for a few seconds, four busy loops:
  * `service`:  an ordinary transient service (systemd-run, lands in system.slice);
  * `user`:     a transient unit in user.slice (systemd-run --slice=user.slice), where login
                sessions live;
  * `ssh`:      a child of this script, in the SSH session it runs in (ssh.service in system.slice
                on the lab image, which has no pam_systemd; a session scope in user.slice elsewhere);
  * `instance`: a vLLM-like transient service in the model servers' slice with the unit's
                AllowedCPUs= and CPUAffinity= set to the instance CPUs;
samples the CPU each one runs on (field 39 of /proc/PID/stat) and reads its
Cpus_allowed_list, its cgroup and that cgroup's cpuset.cpus.effective. It also reads
the same for the boot-started idle probe units (started by systemd at boot, before
any SSH session: proof that the persisted configuration, not this run, confines them),
the IRQs and the kernel threads still allowed on the instance CPUs.
"""
import json
import os
import subprocess
import sys
import time

BUSY = ["/bin/sh", "-c", "while :; do :; done"]


def read(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def status_field(pid, key):
    for line in read("/proc/%s/status" % pid).splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def cgroup_of(pid):
    for line in read("/proc/%s/cgroup" % pid).splitlines():
        if line.startswith("0::"):
            return line[3:]
    return ""


def describe(pid):
    cg = cgroup_of(pid)
    return {"pid": os.getpid() if pid == "self" else int(pid), "cgroup": cg, "cpus_allowed_list": status_field(pid, "Cpus_allowed_list"),
            "cpuset_effective": read("/sys/fs/cgroup%s/cpuset.cpus.effective" % cg)}


def processor(pid):
    text = read("/proc/%s/stat" % pid)
    rest = text[text.rfind(")") + 2:].split()
    return int(rest[36]) if len(rest) > 36 else None


def main_pid(unit):
    out = subprocess.run(["systemctl", "show", "-P", "MainPID", unit], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def systemd_run(unit, *props):
    subprocess.run(["systemd-run", "--quiet", "--unit", unit, "-p", "RuntimeMaxSec=120", *props, *BUSY], check=True)
    for _attempt in range(50):
        pid = main_pid(unit)
        if pid not in ("", "0"):
            return pid
        time.sleep(0.1)
    raise SystemExit("%s did not start" % unit)


def main():
    slice_name, instance_cpus, boot_prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    result = {"self": describe("self")}
    pids = {}
    procs = []
    try:
        pids["service"] = systemd_run("inferfleet-probe-service-busy")
        pids["instance"] = systemd_run("inferfleet-probe-instance-busy", "--slice", slice_name,
                                       "-p", "AllowedCPUs=" + instance_cpus,
                                       "-p", "CPUAffinity=" + instance_cpus.replace(",", " "))
        pids["user"] = systemd_run("inferfleet-probe-user-busy", "--slice", "user.slice")
        procs.append(subprocess.Popen(BUSY))
        pids["ssh"] = str(procs[0].pid)
        seen = dict((name, set()) for name in pids)
        deadline = time.time() + 4
        while time.time() < deadline:
            for name, pid in pids.items():
                cpu = processor(pid)
                if cpu is not None:
                    seen[name].add(cpu)
            time.sleep(0.05)
        for name, pid in pids.items():
            result[name] = describe(pid)
            result[name]["ran_on"] = sorted(seen[name])
    finally:
        for proc in procs:
            proc.kill()
        subprocess.run(["systemctl", "stop", "inferfleet-probe-service-busy", "inferfleet-probe-instance-busy",
                        "inferfleet-probe-user-busy"],
                       check=False)
    for kind in ("service", "instance"):
        unit = "%s-%s.service" % (boot_prefix, kind)
        pid = main_pid(unit)
        result["boot_" + kind] = describe(pid) if pid not in ("", "0") else {"unit": unit, "missing": True}
    irqs = {}
    for name in os.listdir("/proc/irq"):
        if name.isdigit():
            irqs[name] = read("/proc/irq/%s/smp_affinity_list" % name)
    result["irqs"] = irqs
    result["default_smp_affinity"] = read("/proc/irq/default_smp_affinity")
    mask = int(result["default_smp_affinity"].replace(",", "") or "0", 16)
    result["default_smp_affinity_cpus"] = [cpu for cpu in range(mask.bit_length()) if mask >> cpu & 1]
    result["slices"] = dict((unit, read("/sys/fs/cgroup/%s/cpuset.cpus.effective" % unit))
                            for unit in ("system.slice", "user.slice", "init.scope", slice_name))
    result["init_cpus_allowed_list"] = status_field("1", "Cpus_allowed_list")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
