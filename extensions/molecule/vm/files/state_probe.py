"""Read, inside the VM, the settings host_tuning persists; print one JSON object.

Arguments: the data disk's kernel name (vdb) and the reboot marker path.
The verify playbook asserts on the values.
"""
import json
import re
import sys

DROPIN = "/etc/sysctl.d/60-inferfleet.conf"


def read(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def selected(text):
    m = re.search(r"\[([^\]]+)\]", text)
    return m.group(1) if m else text


def main():
    disk, marker = sys.argv[1], sys.argv[2]
    dropin = {}
    for line in read(DROPIN).splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, val = (x.strip() for x in line.split("=", 1))
            dropin[key] = val
    live = {k: read("/proc/sys/" + k.replace(".", "/")) for k in dropin}
    mismatch = {k: {"persisted": v, "live": live[k]} for k, v in dropin.items()
                if live[k].split() != v.split()}
    models = {}
    for line in read("/proc/self/mounts").splitlines():
        src, mnt, fstype, opts = line.split()[:4]
        if mnt == "/models":
            models = {"source": src, "fstype": fstype, "options": opts}
    fstab = [ln for ln in read("/etc/fstab").splitlines()
             if not ln.lstrip().startswith("#") and len(ln.split()) > 1 and ln.split()[1] == "/models"]
    json.dump({
        "boot_id": read("/proc/sys/kernel/random/boot_id"),
        "cmdline": read("/proc/cmdline").split(),
        "marker_boot_id": read(marker),
        "sysctl_dropin": dropin,
        "sysctl_live": live if "vm.swappiness" in live else {**live, "vm.swappiness": read("/proc/sys/vm/swappiness")},
        "sysctl_mismatch": mismatch,
        "thp_enabled": selected(read("/sys/kernel/mm/transparent_hugepage/enabled")),
        "thp_defrag": selected(read("/sys/kernel/mm/transparent_hugepage/defrag")),
        "scheduler": selected(read(f"/sys/block/{disk}/queue/scheduler")),
        "rotational": read(f"/sys/block/{disk}/queue/rotational"),
        "models": models or {"source": "", "fstype": "", "options": ""},
        "fstab_models": fstab,
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
