"""The inferfleet lab: Debian 12 hosts as systemd-nspawn machines (and a qemu VM) on one machine.

Run ``python -m lab --help`` from the repository root; see docs/lab.md.
"""
