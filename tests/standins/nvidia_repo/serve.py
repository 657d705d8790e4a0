"""Serve the stand-in NVIDIA repository over HTTP, in the background (test fixture).

    serve.py start --root DIR --bind ADDR --port PORT --pidfile FILE [--log FILE]
    serve.py stop  --pidfile FILE

``start`` detaches a ``http.server`` bound to ADDR only (the lab bridge
address), waits until it answers and writes its pid; ``stop`` ends exactly
that process (by pid, after checking its command line) and is idempotent.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def _is_ours(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"http.server" in cmdline


def start(root: Path, bind: str, port: int, pidfile: Path, log: Path | None) -> int:
    if pidfile.exists():
        pid = int(pidfile.read_text().strip() or 0)
        if pid and _is_ours(pid):
            print(f"already serving (pid {pid})")
            return 0
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", bind, "--directory", str(root), str(port)],
        stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"http.server exited with {proc.returncode} (is {bind}:{port} free and local?)",
                  file=sys.stderr)
            return 1
        try:
            with socket.create_connection((bind, port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.terminate()
        print(f"http.server did not answer on {bind}:{port}", file=sys.stderr)
        return 1
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{proc.pid}\n")
    print(f"serving {root} on http://{bind}:{port}/ (pid {proc.pid})")
    return 0


def stop(pidfile: Path) -> int:
    if not pidfile.exists():
        print("not running")
        return 0
    pid = int(pidfile.read_text().strip() or 0)
    if pid and _is_ours(pid):
        os.kill(pid, signal.SIGTERM)
        for _attempt in range(50):
            if not _is_ours(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        print(f"stopped pid {pid}")
    pidfile.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--root", required=True, type=Path)
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, default=8471)
    s.add_argument("--pidfile", required=True, type=Path)
    s.add_argument("--log", type=Path)
    t = sub.add_parser("stop")
    t.add_argument("--pidfile", required=True, type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "start":
        return start(args.root, args.bind, args.port, args.pidfile, args.log)
    return stop(args.pidfile)


if __name__ == "__main__":
    sys.exit(main())
