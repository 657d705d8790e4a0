# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Optional NVML enrichment of the GPU facts, through nvidia-ml-py (``pynvml``).

nvidia-ml-py is optional on the target: :func:`load_pynvml` returns the
module or the reason it cannot be used, and :func:`query_nvml` never raises
for an NVML failure (no driver, no library, no permission); it reports it in
``{"available": False, "error": "..."}`` instead. The NVML module is passed
in, so tests give a fake specced against the real nvidia-ml-py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inferfleet.gpu.plugins.module_utils.pci import normalize_bus_id, pci_sort_key


def load_pynvml():
    """``(module, None)`` when nvidia-ml-py imports, else ``(None, reason)``."""
    try:
        import pynvml  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        return None, "nvidia-ml-py (import name pynvml) is not installed on the target: %s" % exc
    return pynvml, None


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00")
    return value


def _optional(nvml, call, *args):
    """Result of an NVML call, or None when the GPU/driver does not support it."""
    try:
        return call(*args)
    except nvml.NVMLError:
        return None


def _mig_mode(nvml, handle):
    modes = _optional(nvml, nvml.nvmlDeviceGetMigMode, handle)
    if not modes:
        return None
    current, pending = modes[0], modes[1]
    enabled = nvml.NVML_DEVICE_MIG_ENABLE
    return {
        "current": "enabled" if current == enabled else "disabled",
        "pending": "enabled" if pending == enabled else "disabled",
    }


def _nvlink_remotes(nvml, handle):
    """Bus ids at the far end of every active NVLink of one GPU."""
    remotes = []
    for link in range(nvml.NVML_NVLINK_MAX_LINKS):
        try:
            state = nvml.nvmlDeviceGetNvLinkState(handle, link)
        except nvml.NVMLError:
            # NOT_SUPPORTED / INVALID_ARGUMENT past the last link of this GPU.
            continue
        if state != nvml.NVML_FEATURE_ENABLED:
            continue
        info = _optional(nvml, nvml.nvmlDeviceGetNvLinkRemotePciInfo, handle, link)
        if info is not None:
            remotes.append(normalize_bus_id(_text(info.busId)))
    return remotes


def query_nvml(nvml):
    """Ask NVML about every GPU.

    Returns ``{"available", "error", "driver_version", "devices": [...]}``
    where each device is ``{index, bus_id, name, uuid, minor, memory_total_bytes,
    numa_node, mig_mode, nvlink_remotes, nvlink_count}``.
    """
    if nvml is None:
        return {"available": False, "error": "nvidia-ml-py is not available", "driver_version": None, "devices": []}
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return {"available": False, "error": "nvmlInit failed: %s" % exc, "driver_version": None, "devices": []}
    try:
        driver = _text(_optional(nvml, nvml.nvmlSystemGetDriverVersion))
        devices = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = _optional(nvml, nvml.nvmlDeviceGetMemoryInfo, handle)
            pci = nvml.nvmlDeviceGetPciInfo(handle)
            remotes = _nvlink_remotes(nvml, handle)
            devices.append({
                "index": index,
                "bus_id": normalize_bus_id(_text(pci.busId)),
                "name": _text(_optional(nvml, nvml.nvmlDeviceGetName, handle)),
                "uuid": _text(_optional(nvml, nvml.nvmlDeviceGetUUID, handle)),
                "minor": _optional(nvml, nvml.nvmlDeviceGetMinorNumber, handle),
                "memory_total_bytes": int(memory.total) if memory is not None else None,
                "numa_node": _optional(nvml, nvml.nvmlDeviceGetNumaNodeId, handle),
                "mig_mode": _mig_mode(nvml, handle),
                "nvlink_remotes": remotes,
                "nvlink_count": len(remotes),
            })
        return {"available": True, "error": None, "driver_version": driver, "devices": devices}
    except nvml.NVMLError as exc:
        return {"available": False, "error": "NVML query failed: %s" % exc, "driver_version": None, "devices": []}
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass


def _reconcile(gpu, dev, warnings):
    """``uuid`` and ``minor``: NVML's value wins; one that differs from /proc/driver/nvidia is a warning."""
    for key, what in (("uuid", "UUID"), ("minor", "device minor")):
        proc, nvml = gpu.get(key), dev.get(key)
        if nvml is None:
            gpu[key] = proc
            continue
        if proc is not None and proc != nvml:
            warnings.append(
                "GPU %s: NVML says %s %s but /proc/driver/nvidia/gpus/%s/information says %s; using NVML's"
                % (gpu["bus_id"], what, nvml, gpu["bus_id"], proc))
        gpu[key] = nvml


def merge_nvml(gpus, nvswitch_bus_ids, answer, warnings):
    """Fill the NVML fields of the sysfs GPU list from a :func:`query_nvml` answer.

    GPUs are matched by PCI bus id. ``uuid`` and ``minor`` already read from
    ``/proc/driver/nvidia`` are compared with NVML's (a difference is a
    warning; NVML's value is kept). NVLink peers are GPU indices: a link to
    another GPU names it; links to NVSwitches make every other GPU that also
    reaches an NVSwitch a peer (the switch fabric is all-to-all).
    Returns the merged list (a GPU that NVML sees but sysfs does not is added
    with unknown locality).
    """
    if not answer.get("available"):
        return gpus
    by_bus = dict((g["bus_id"], g) for g in gpus)
    merged = [dict(g) for g in gpus]
    for dev in answer["devices"]:
        if dev["bus_id"] not in by_bus:
            warnings.append("NVML reports GPU %s that sysfs does not list; its locality is unknown" % dev["bus_id"])
            merged.append({
                "index": None, "bus_id": dev["bus_id"], "device_id": None, "numa_node": None,
                "local_cpus": None, "nvlink_peers": [], "uuid": None, "minor": None,
            })
    merged.sort(key=lambda g: pci_sort_key(g["bus_id"]))
    for position, gpu in enumerate(merged):
        gpu["index"] = position
    index_of = dict((g["bus_id"], g["index"]) for g in merged)
    switches = set(nvswitch_bus_ids)
    on_fabric = set()
    by_nvml = dict((dev["bus_id"], dev) for dev in answer["devices"])
    for dev in answer["devices"]:
        if any(remote in switches or remote not in index_of for remote in dev["nvlink_remotes"]):
            # Remote is an NVSwitch (listed or not: on HGX boards the switch
            # is the only non-GPU thing at the other end of an NVLink).
            on_fabric.add(dev["bus_id"])
    for gpu in merged:
        dev = by_nvml.get(gpu["bus_id"])
        if dev is None:
            warnings.append("NVML does not report GPU %s that sysfs lists" % gpu["bus_id"])
            for key in ("name", "uuid", "minor", "memory_total_bytes", "nvml_numa_node", "mig_mode"):
                gpu.setdefault(key, None)
            gpu.setdefault("nvlink_peers", [])
            continue
        peers = set(index_of[r] for r in dev["nvlink_remotes"] if r in index_of)
        if gpu["bus_id"] in on_fabric:
            peers |= set(index_of[b] for b in on_fabric)
        peers.discard(gpu["index"])
        _reconcile(gpu, dev, warnings)
        gpu.update({
            "name": dev["name"],
            "memory_total_bytes": dev["memory_total_bytes"],
            "nvml_numa_node": dev["numa_node"],
            "mig_mode": dev["mig_mode"],
            "nvlink_peers": sorted(peers),
            "nvlink_count": dev["nvlink_count"],
        })
    return merged
