# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCI bus ids and class codes: the names sysfs, NVML and the readers share.

Pure functions on strings and numbers; the reader of ``/sys/bus/pci`` is
``topology_pci``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

NVIDIA_VENDOR_ID = "0x10de"

# PCI base classes (upper byte of the 24-bit class code) reported in
# ``pci_devices``, plus the 16-bit class co-processor (0x0b40).
PCI_BASE_CLASSES = {
    0x01: "storage",
    0x02: "network",
    0x03: "display",
    0x12: "accelerator",
}
PCI_SUBCLASSES = {
    0x0B40: "coprocessor",
}
NVSWITCH_CLASS = 0x0680  # PCI "other bridge", as NVIDIA NVSwitches report

PCI_BDF = re.compile(r"^([0-9a-fA-F]{4,}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")


def pci_sort_key(bus_id):
    """Sort key for PCI bus ids, numeric per field (domains may exceed 16 bits)."""
    match = PCI_BDF.match(bus_id or "")
    if not match:
        return (1 << 64, bus_id or "")
    return tuple(int(part, 16) for part in match.groups())


def normalize_bus_id(bus_id):
    """``00000000:07:00.0`` (NVML) -> ``0000:07:00.0`` (sysfs); lower case.

    Domains above 0xffff keep all their digits (``10000:01:00.0``).
    """
    if isinstance(bus_id, bytes):
        bus_id = bus_id.decode("ascii", "replace")
    bus_id = (bus_id or "").strip().rstrip("\x00")
    match = PCI_BDF.match(bus_id)
    if not match:
        return bus_id.lower()
    domain, bus, dev, func = (int(part, 16) for part in match.groups())
    return "%04x:%02x:%02x.%x" % (domain, bus, dev, func)


def class_kind(class_code):
    """``storage``/``network``/``display``/``accelerator``/``coprocessor`` for a class code, else None."""
    if class_code is None:
        return None
    if (class_code >> 8) in PCI_SUBCLASSES:
        return PCI_SUBCLASSES[class_code >> 8]
    return PCI_BASE_CLASSES.get(class_code >> 16)


def is_nvswitch(class_code, vendor_id):
    """Whether a device is an NVIDIA NVSwitch (class "other bridge", NVIDIA's vendor id)."""
    return class_code is not None and (class_code >> 8) == NVSWITCH_CLASS and vendor_id == NVIDIA_VENDOR_ID


def pci_ancestor(device_path):
    """Nearest PCI bus id in a resolved sysfs device path (None when it is not on PCI)."""
    found = None
    for part in device_path.split("/"):
        if PCI_BDF.match(part):
            found = normalize_bus_id(part)
    return found
