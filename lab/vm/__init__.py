"""The lab's qemu back end: one Debian 12 VM with its own kernel (``python -m lab vm ...``).

``image`` builds and caches the VM image; ``machine`` boots, watches and removes
VMs and holds the ``vm`` command line; ``base`` is what both use. What the VM
shares with the nspawn back end (paths, names, the apt mirror, recipe hashes,
SSH, the inventory writer) lives in ``lab/``.
"""
