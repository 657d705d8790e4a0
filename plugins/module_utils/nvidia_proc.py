# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NVIDIA driver's per-GPU procfs files, read without NVML.

The loaded driver writes ``/proc/driver/nvidia/gpus/<bus id>/information``
for every GPU it manages::

    Model:           NVIDIA H100 80GB HBM3
    GPU UUID:        GPU-8f4b3e9a-...
    Bus Location:    0000:18:00.0
    Device Minor:    2

``Device Minor`` is the N of ``/dev/nvidiaN`` (char 195:N): the driver's own
numbering, which need not follow PCI order. ``GPU UUID`` is what
``CUDA_VISIBLE_DEVICES`` accepts whatever the enumeration order. Both are
missing while the driver is not loaded; the reader then returns nothing and
the caller leaves ``uuid`` / ``minor`` null. Plain functions of ``root``, so
tests read captured trees.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

_UUID = re.compile(r"^GPU-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")


def parse_information(text):
    """``{"model", "uuid", "minor", "bus_location"}`` from one ``information`` file.

    Fields that are absent or malformed are None (``"GPU UUID: ??"`` on a
    GPU that fell off the bus, for one).
    """
    fields = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    uuid = fields.get("gpu uuid")
    minor = fields.get("device minor")
    return {
        "model": fields.get("model") or None,
        "uuid": uuid if uuid and _UUID.match(uuid) else None,
        "minor": int(minor) if minor and minor.isdigit() else None,
        "bus_location": fields.get("bus location", "").lower() or None,
    }


def read_gpu_information(root, warnings):
    """``{bus id (lower case): parse_information(...)}`` for every GPU the loaded driver lists.

    Empty when the driver is not loaded (no ``proc/driver/nvidia/gpus``).
    """
    base = os.path.join(root, "proc", "driver", "nvidia", "gpus")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return {}
    result = {}
    for name in names:
        path = os.path.join(base, name, "information")
        try:
            with open(path) as handle:
                info = parse_information(handle.read())
        except (IOError, OSError) as exc:
            warnings.append("%s: %s" % (path, exc))
            continue
        bus = name.lower()
        if info["bus_location"] and info["bus_location"] != bus:
            warnings.append("%s says Bus Location %s" % (path, info["bus_location"]))
        if info["uuid"] is None or info["minor"] is None:
            warnings.append("%s has no usable GPU UUID / Device Minor" % path)
        result[bus] = info
    return result


def apply_information(gpus, information, warnings):
    """Set ``uuid`` and ``minor`` of each GPU dict (matched by bus id) from :func:`read_gpu_information`.

    A GPU the driver does not list keeps null values; the driver listing a
    GPU sysfs does not have, or two GPUs with one minor, is a warning.
    """
    known = set()
    seen_minor = {}
    for gpu in gpus:
        bus = (gpu.get("bus_id") or "").lower()
        known.add(bus)
        info = information.get(bus)
        gpu.setdefault("uuid", None)
        gpu.setdefault("minor", None)
        if info is None:
            continue
        gpu["uuid"] = info["uuid"]
        gpu["minor"] = info["minor"]
        if info["minor"] is not None:
            if info["minor"] in seen_minor:
                warnings.append("GPUs %s and %s both have Device Minor %d in /proc/driver/nvidia"
                                % (seen_minor[info["minor"]], bus, info["minor"]))
            seen_minor[info["minor"]] = bus
    if information:
        for bus in sorted(set(information) - known):
            warnings.append("/proc/driver/nvidia lists GPU %s that sysfs does not" % bus)
    return gpus
