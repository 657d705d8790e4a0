"""A stand-in NVML for the GPU exporter (tests only; never shipped).

``unittest.mock.create_autospec(pynvml)`` gives functions with nvidia-ml-py's real signatures
(a call the real module does not have, or with the wrong arguments, fails); the NVML constants
and exception classes stay the real ones. Names, memory sizes and the driver version come from
``tests/fixtures/nvidia/go-nvml-mock-dgx.json`` (what NVIDIA's go-nvml DGX mocks encode: memory
used is 0 there). What the mocks do not encode (utilisation, temperature, power, clocks, ECC,
remapped rows) is SYNTHETIC, set per GPU below so each series has a known value.
"""
import importlib.util
import inspect
import json
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pynvml

ROOT = Path(__file__).resolve().parents[1]
EXPORTER = ROOT / "roles" / "monitoring" / "files" / "inferfleet_gpu_exporter.py"
MOCK_DATA = json.loads((ROOT / "tests" / "fixtures" / "nvidia" / "go-nvml-mock-dgx.json").read_text())
MiB = 1024 * 1024


def load_exporter():
    spec = importlib.util.spec_from_file_location("inferfleet_gpu_exporter", EXPORTER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def gpus(server="dgxh100.New()"):
    data = MOCK_DATA["servers"][server]
    return [{
        "name": data["name"],
        "uuid": "GPU-00000000-0000-0000-0000-%012d" % i,
        "memory_total": data["memory_MiB"] * MiB,
        "memory_used": 0,                      # the go-nvml mock: Used = 0
        # synthetic from here on
        "util": (10 * i, 5 * i), "temp": 40 + i, "power_mw": 300000 + i, "limit_mw": 700000,
        "clocks": {pynvml.NVML_CLOCK_GRAPHICS: 1980, pynvml.NVML_CLOCK_SM: 1980, pynvml.NVML_CLOCK_MEM: 2619},
        "ecc": {pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED: i, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED: 0},
        "remapped": (i, 0, 0, 0),              # Ampere+: remapped rows ...
        "retired": None,                       # ... and no page retirement (NOT_SUPPORTED)
    } for i in range(data["gpus"])]


class FakeNvml(object):
    """The autospecced module and the state its side effects read."""

    def __init__(self, devices, driver=MOCK_DATA["system"]["driver_version"], init_error=None, events=()):
        self.devices = devices
        self.events = list(events)          # (index, xid) delivered by nvmlEventSetWait_v2, then TIMEOUT
        fake = mock.create_autospec(pynvml, spec_set=True)
        for name, value in vars(pynvml).items():
            if name.startswith("NVML_") or name.startswith("nvmlEventType") or (
                    inspect.isclass(value) and issubclass(value, Exception)):
                setattr(fake, name, value)
        if init_error is not None:
            fake.nvmlInit.side_effect = pynvml.NVMLError(init_error)
        fake.nvmlSystemGetDriverVersion.return_value = driver
        fake.nvmlDeviceGetCount.return_value = len(devices)
        fake.nvmlDeviceGetHandleByIndex.side_effect = lambda index: ("handle", index)
        dev = self.dev
        fake.nvmlDeviceGetName.side_effect = lambda h: dev(h)["name"]
        fake.nvmlDeviceGetUUID.side_effect = lambda h: dev(h)["uuid"]
        fake.nvmlDeviceGetMemoryInfo.side_effect = self._memory
        fake.nvmlDeviceGetUtilizationRates.side_effect = lambda h: SimpleNamespace(gpu=dev(h)["util"][0], memory=dev(h)["util"][1])
        fake.nvmlDeviceGetTemperature.side_effect = lambda h, sensor: dev(h)["temp"]
        fake.nvmlDeviceGetPowerUsage.side_effect = lambda h: dev(h)["power_mw"]
        fake.nvmlDeviceGetEnforcedPowerLimit.side_effect = lambda h: dev(h)["limit_mw"]
        fake.nvmlDeviceGetClockInfo.side_effect = lambda h, kind: dev(h)["clocks"][kind]
        fake.nvmlDeviceGetTotalEccErrors.side_effect = self._ecc
        fake.nvmlDeviceGetRetiredPages.side_effect = lambda h, cause: self._maybe(h, "retired")
        fake.nvmlDeviceGetRetiredPagesPendingStatus.side_effect = lambda h: self._maybe(h, "retired") and 0
        fake.nvmlDeviceGetRemappedRows.side_effect = lambda h: self._maybe(h, "remapped")
        fake.nvmlEventSetCreate.return_value = "event-set"
        fake.nvmlEventSetWait_v2.side_effect = self._wait
        self.fake = fake

    def dev(self, handle):
        return self.devices[handle[1]]

    @staticmethod
    def not_supported():
        return pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    def _maybe(self, handle, key):
        value = self.dev(handle)[key]
        if value is None:
            raise self.not_supported()
        return value

    def _memory(self, handle, version=None):
        mem = pynvml.c_nvmlMemory_t()
        mem.total = self.dev(handle)["memory_total"]
        mem.used = self.dev(handle)["memory_used"]
        return mem

    def _ecc(self, handle, error_type, counter_type):
        assert counter_type == pynvml.NVML_VOLATILE_ECC
        return self.dev(handle)["ecc"][error_type]

    def _wait(self, event_set, timeout_ms):
        if not self.events:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)
        index, xid = self.events.pop(0)
        return SimpleNamespace(device=("handle", index), eventType=pynvml.nvmlEventTypeXidCriticalError, eventData=xid)


def scrape(collector):
    """The /metrics text a scrape of this collector gives (prometheus_client's own exposition)."""
    from prometheus_client import CollectorRegistry, generate_latest
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def standin_metrics(server="dgxh100.New()"):
    exporter = load_exporter()
    return scrape(exporter.NvmlCollector(FakeNvml(gpus(server)).fake))


def watch_xids_until_delivered(collector, fake, timeout=5.0):
    """Run the exporter's own XID event thread (``collector.watch_xids``) until the stand-in ``fake``
    has delivered every queued event (or ``timeout`` seconds), then stop it; returns the thread,
    joined (alive only if it did not stop)."""
    import threading
    import time
    stop = threading.Event()
    thread = threading.Thread(target=collector.watch_xids, args=(stop, 10))
    thread.start()
    deadline = time.monotonic() + timeout
    while fake.events and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout)
    return thread


def standin_metrics_every_series():
    """Scrapes that together give every series the exporter has: a Hopper node that saw an XID
    (through the exporter's own event thread) and a pre-Ampere-like node with retired pages."""
    exporter = load_exporter()
    fake = FakeNvml(gpus("dgxh100.New()"), events=[(0, 79)])
    collector = exporter.NvmlCollector(fake.fake)
    watch_xids_until_delivered(collector, fake)
    older = gpus("dgxa100.New()")
    for dev in older:
        dev.update(retired=[0x1000], remapped=None)
    return scrape(collector) + scrape(exporter.NvmlCollector(FakeNvml(older).fake))
