"""Open device nodes and report how each open failed (or that it succeeded), as JSON.

Run inside the VM, once under the device policy of a vllm_service unit (systemd-run with its
DevicePolicy=/DeviceAllow= lines) and once without any policy (the control). The nodes are made
with mknod (char 195:N, the NVIDIA major) and have no driver behind them, so:

- a node the device cgroup lets through fails in the kernel's char-device lookup: ENXIO (or ENODEV);
- a node the device cgroup denies fails before that: EPERM.

Nothing here decides pass or fail: the task file asserts on the errno names.
"""
import errno
import json
import os
import sys


def probe(path):
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    os.close(fd)
    return "opened"


def main(paths):
    result = {path: probe(path) for path in paths}
    with open("/proc/self/cgroup", encoding="ascii") as handle:
        cgroup = handle.read().strip()
    print(json.dumps({"open": result, "cgroup": cgroup, "uid": os.getuid()}))


if __name__ == "__main__":
    main(sys.argv[1:])
