"""A stand-in for ``systemctl stop UNIT`` on units the systemd-run stand-in started (tests only; never shipped).

Stops the process, forgets the unit (a --collect'ed transient unit is gone once
stopped) and logs the call to $INFERFLEET_STANDIN_SYSTEMD/systemctl.log.  A unit
it does not know: exit 5, as systemctl answers for a unit that is not loaded.
"""
import os
import signal
import sys
import time


def main(argv):
    state = os.environ["INFERFLEET_STANDIN_SYSTEMD"]
    with open(os.path.join(state, "systemctl.log"), "a") as log:
        log.write(" ".join(argv) + "\n")
    if len(argv) != 2 or argv[0] != "stop":
        sys.stderr.write("systemctl stand-in: only 'stop UNIT'\n")
        return 1
    unit = argv[1] if "." in argv[1] else argv[1] + ".service"
    pid_file = os.path.join(state, unit + ".pid")
    if not os.path.exists(pid_file):
        sys.stderr.write("Failed to stop %s: Unit %s not loaded.\n" % (unit, unit))
        return 5
    with open(pid_file) as handle:
        pid = int(handle.read())
    try:
        os.killpg(pid, signal.SIGTERM)
        for _attempt in range(100):
            os.kill(pid, 0)
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                pass
            time.sleep(0.05)
    except ProcessLookupError:
        pass
    os.remove(pid_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
