"""Run one load generator command and record what it cost the host it ran on.

    python3 bench_run.py META_JSON LOG_FILE -- vllm bench serve ...

Runs the command (its output into LOG_FILE), then writes META_JSON: exit status, wall
time, the child's user and system CPU seconds and peak RSS (getrusage of the children),
the host name. Exits with the command's status. Standard library only (runs with the
vLLM venv's Python on the load host).
"""
import json
import os
import resource
import socket
import subprocess
import sys
import time


def main(argv):
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write(__doc__)
        return 2
    meta_path, log_path, cmd = argv[0], argv[1], argv[3:]
    start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    wall = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    meta = {
        "host": socket.gethostname(),
        "rc": proc.returncode,
        "wall_s": wall,
        "cpu_user_s": usage.ru_utime,
        "cpu_sys_s": usage.ru_stime,
        "max_rss_mib": round(usage.ru_maxrss / 1024.0, 1),
        "cpus": os.cpu_count(),
    }
    with open(meta_path + ".tmp", "w") as handle:
        json.dump(meta, handle)
    os.replace(meta_path + ".tmp", meta_path)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
