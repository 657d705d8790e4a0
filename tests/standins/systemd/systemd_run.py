"""A stand-in for ``systemd-run`` (tests only; never shipped): the test machine's PID 1 is not systemd.

Starts the command detached, as a transient service would run, and records it
in $INFERFLEET_STANDIN_SYSTEMD (UNIT.pid, UNIT.json: the unit's properties and
command line, UNIT.log: its output; systemd-run.log: one line per start).  A unit of that name still running is an
error, as it is for systemd-run.
"""
import json
import os
import subprocess
import sys


def main(argv):
    state = os.environ["INFERFLEET_STANDIN_SYSTEMD"]
    unit, properties, i = None, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-"):
            break
        if arg.startswith("--unit="):
            unit = arg.split("=", 1)[1]
        elif arg in ("--unit", "-u"):
            i += 1
            unit = argv[i]
        elif arg.startswith("--property="):
            properties.append(arg.split("=", 1)[1])
        elif arg in ("--property", "-p"):
            i += 1
            properties.append(argv[i])
        elif arg.startswith("--description="):
            pass
        elif arg not in ("--collect", "--quiet", "-G", "-q"):
            sys.stderr.write("systemd-run stand-in: option %s not supported\n" % arg)
            return 1
        i += 1
    command = argv[i:]
    if not unit or not command:
        sys.stderr.write("systemd-run stand-in: needs --unit= and a command\n")
        return 1
    unit = unit if "." in unit else unit + ".service"
    pid_file = os.path.join(state, unit + ".pid")
    if os.path.exists(pid_file):
        sys.stderr.write("Failed to start transient service unit: Unit %s was already loaded\n" % unit)
        return 1
    with open(os.path.join(state, unit + ".log"), "ab") as log:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    record = {"unit": unit, "properties": properties, "command": command}
    with open(os.path.join(state, unit + ".json"), "w") as handle:
        json.dump(record, handle)
    with open(os.path.join(state, "systemd-run.log"), "a") as handle:
        handle.write(json.dumps(record) + "\n")
    with open(pid_file, "w") as handle:
        handle.write(str(proc.pid))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
