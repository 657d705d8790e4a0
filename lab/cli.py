"""``python -m lab``: a fleet of real Debian 12 hosts on one machine (see docs/lab.md).

``up``/``down``/``status``/``inventory``/``image`` drive the nspawn back end
(``lab/nspawn``), ``vm ...`` the qemu back end (``lab/vm``), ``site`` runs
playbooks/site.yml on an nspawn lab.
"""
from __future__ import annotations

import argparse
import sys

from lab.nspawn.commands import cmd_down, cmd_image, cmd_inventory, cmd_status, cmd_up


def cmd_site(args) -> int:
    from lab import site
    return site.run(args.name, extra=args.ansible_args)


def cmd_deploy(args) -> int:
    from lab import site
    return site.deploy(args.name, extra=args.ansible_args)


def cmd_vm(argv: list[str]) -> int:
    from lab.vm import machine
    return machine.main(argv)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build the image once and boot N nspawn nodes")
    up.add_argument("--name", required=True)
    up.add_argument("--nodes", type=int, default=2)
    up.add_argument("--disk-size", help="attach a sparse loop device of this size to each node")
    up.add_argument("--bind", action="append", default=[], metavar="SRC:DST[:ro]",
                    help="bind-mount a host directory into every node (repeatable)")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for SSH")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="tear lab NAME down (idempotent)")
    down.add_argument("--name", required=True)
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="show labs and their nodes")
    status.add_argument("--name")
    status.set_defaults(func=cmd_status)
    inv = sub.add_parser("inventory", help="print the inventory path of lab NAME")
    inv.add_argument("--name", required=True)
    inv.set_defaults(func=cmd_inventory)
    site = sub.add_parser("site", help="run playbooks/site.yml on lab NAME and summarise per host")
    site.add_argument("--name", required=True)
    site.add_argument("ansible_args", nargs=argparse.REMAINDER,
                      help="extra ansible-playbook arguments after --")
    site.set_defaults(func=cmd_site)
    dep = sub.add_parser("deploy", help="run playbooks/deploy.yml on lab NAME with a load loop through its gateway")
    dep.add_argument("--name", required=True)
    dep.add_argument("ansible_args", nargs=argparse.REMAINDER,
                     help="extra ansible-playbook arguments after --")
    dep.set_defaults(func=cmd_deploy)
    img = sub.add_parser("image", help="build the node image (cached) and print its path")
    img.add_argument("--prune", action="store_true",
                     help="also remove cached roots of other recipes that no lab uses")
    img.set_defaults(func=cmd_image)
    sub.add_parser("vm", help="the qemu VM (python -m lab vm up|down ...)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "vm":
        return cmd_vm(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
