"""inferfleet GPU exporter: NVML metrics for Prometheus, one series per GPU (index + UUID).

Installed by the role inferfleet.gpu.monitoring into its own venv (nvidia-ml-py +
prometheus-client) and run by the unit inferfleet-gpu-exporter.service:

    python inferfleet_gpu_exporter.py --listen-address 0.0.0.0 --port 9835

Every scrape reads NVML afresh (no cache). A value the GPU does not have (ECC on a
consumer card, remapped rows before Ampere, retired pages after it) gives no series:
NVML_ERROR_NOT_SUPPORTED is not an error. Any other NVML error is counted in
inferfleet_gpu_exporter_errors_total{call=...} and that value is left out.
XID errors arrive as NVML events; a thread waits for them and counts them per GPU and XID.
DCGM (dcgm-exporter) is the upgrade where NVIDIA's repository is reachable.
"""
from __future__ import annotations

import argparse
import sys
import threading

PREFIX = "inferfleet_gpu_"
CLOCKS = (("graphics", "NVML_CLOCK_GRAPHICS"), ("sm", "NVML_CLOCK_SM"), ("memory", "NVML_CLOCK_MEM"))
ECC_TYPES = (("corrected", "NVML_MEMORY_ERROR_TYPE_CORRECTED"), ("uncorrected", "NVML_MEMORY_ERROR_TYPE_UNCORRECTED"))
RETIRE_CAUSES = (("multiple_single_bit_ecc", "NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS"),
                 ("double_bit_ecc", "NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR"))


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlCollector(object):
    """A prometheus_client collector over a pynvml-like module (the real one, or a test's stand-in)."""

    def __init__(self, nvml):
        self.nvml = nvml
        self.initialised = False
        self.errors = {}          # NVML call -> count of unexpected errors
        self.xids = {}            # (uuid, index, xid) -> count
        self.lock = threading.Lock()

    # --- NVML access -------------------------------------------------------------------------
    def init(self):
        if not self.initialised:
            try:
                self.nvml.nvmlInit()
                self.initialised = True
            except self.nvml.NVMLError:
                self._error("nvmlInit")
        return self.initialised

    def _error(self, call):
        with self.lock:
            self.errors[call] = self.errors.get(call, 0) + 1

    def _call(self, name, *args):
        """The NVML answer, or None when the GPU does not have it (or NVML failed: counted)."""
        try:
            return getattr(self.nvml, name)(*args)
        except self.nvml.NVMLError as exc:
            if getattr(exc, "value", None) != self.nvml.NVML_ERROR_NOT_SUPPORTED:
                self._error(name)
            return None

    def devices(self):
        count = self._call("nvmlDeviceGetCount") or 0
        out = []
        for index in range(count):
            handle = self._call("nvmlDeviceGetHandleByIndex", index)
            if handle is None:
                continue
            uuid = self._call("nvmlDeviceGetUUID", handle)
            name = self._call("nvmlDeviceGetName", handle)
            out.append((handle, str(index), _text(uuid or "unknown"), _text(name or "unknown")))
        return out

    # --- XID events ----------------------------------------------------------------------------
    def watch_xids(self, stop, timeout_ms=5000):
        """Count XID events until ``stop`` is set (runs in a thread; returns when events are unsupported)."""
        nvml = self.nvml
        if not self.init():
            return
        try:
            event_set = nvml.nvmlEventSetCreate()
        except nvml.NVMLError:
            self._error("nvmlEventSetCreate")
            return
        by_handle = {}
        for handle, index, uuid, _name in self.devices():
            try:
                nvml.nvmlDeviceRegisterEvents(handle, nvml.nvmlEventTypeXidCriticalError, event_set)
                by_handle[repr(handle)] = (uuid, index)
            except nvml.NVMLError as exc:
                if getattr(exc, "value", None) != nvml.NVML_ERROR_NOT_SUPPORTED:
                    self._error("nvmlDeviceRegisterEvents")
        try:
            while by_handle and not stop.is_set():
                try:
                    data = nvml.nvmlEventSetWait_v2(event_set, timeout_ms)
                except nvml.NVMLError as exc:
                    if getattr(exc, "value", None) != nvml.NVML_ERROR_TIMEOUT:
                        self._error("nvmlEventSetWait_v2")
                        stop.wait(timeout_ms / 1000.0)
                    continue
                if data.eventType != nvml.nvmlEventTypeXidCriticalError:
                    continue
                uuid, index = by_handle.get(repr(data.device), ("unknown", "unknown"))
                key = (uuid, index, str(data.eventData))
                with self.lock:
                    self.xids[key] = self.xids.get(key, 0) + 1
        finally:
            try:
                nvml.nvmlEventSetFree(event_set)
            except nvml.NVMLError:
                pass

    # --- the scrape ----------------------------------------------------------------------------
    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        nvml = self.nvml
        labels = ["gpu", "uuid"]
        up = GaugeMetricFamily(PREFIX + "nvml_up", "1 when NVML answered this scrape, else 0.")
        if not self.init():
            up.add_metric([], 0)
            yield up
            yield self._errors_family(CounterMetricFamily)
            return
        up.add_metric([], 1)
        yield up

        info = GaugeMetricFamily(PREFIX + "info", "GPU identity (value 1).", labels=labels + ["name", "driver_version"])
        util = GaugeMetricFamily(PREFIX + "utilization_ratio", "Time a kernel ran on the GPU in the last sample period (0-1).", labels=labels)
        mem_util = GaugeMetricFamily(PREFIX + "memory_utilization_ratio", "Time device memory was read or written (0-1).", labels=labels)
        used = GaugeMetricFamily(PREFIX + "memory_used_bytes", "Device memory in use.", labels=labels)
        total = GaugeMetricFamily(PREFIX + "memory_total_bytes", "Device memory installed.", labels=labels)
        temp = GaugeMetricFamily(PREFIX + "temperature_celsius", "GPU die temperature.", labels=labels)
        power = GaugeMetricFamily(PREFIX + "power_watts", "Power draw.", labels=labels)
        limit = GaugeMetricFamily(PREFIX + "power_limit_watts", "Enforced power limit.", labels=labels)
        clock = GaugeMetricFamily(PREFIX + "clock_hertz", "Current clock.", labels=labels + ["clock"])
        ecc = CounterMetricFamily(PREFIX + "ecc_errors", "ECC errors since the driver loaded (volatile).", labels=labels + ["type"])
        retired = GaugeMetricFamily(PREFIX + "retired_pages", "Retired memory pages (before Ampere).", labels=labels + ["cause"])
        retired_pending = GaugeMetricFamily(PREFIX + "retired_pages_pending", "1 when a page retirement waits for a reset.", labels=labels)
        remapped = GaugeMetricFamily(PREFIX + "remapped_rows", "Remapped memory rows (Ampere and later).", labels=labels + ["type"])
        remap_pending = GaugeMetricFamily(PREFIX + "remapped_rows_pending", "1 when a row remap waits for a reset.", labels=labels)
        remap_failed = GaugeMetricFamily(PREFIX + "remapped_rows_failure", "1 when a row remap failed (replace the GPU).", labels=labels)

        driver = _text(self._call("nvmlSystemGetDriverVersion") or "unknown")
        for handle, index, uuid, name in self.devices():
            key = [index, uuid]
            info.add_metric(key + [name, driver], 1)
            rates = self._call("nvmlDeviceGetUtilizationRates", handle)
            if rates is not None:
                util.add_metric(key, rates.gpu / 100.0)
                mem_util.add_metric(key, rates.memory / 100.0)
            meminfo = self._call("nvmlDeviceGetMemoryInfo", handle)
            if meminfo is not None:
                used.add_metric(key, meminfo.used)
                total.add_metric(key, meminfo.total)
            value = self._call("nvmlDeviceGetTemperature", handle, nvml.NVML_TEMPERATURE_GPU)
            if value is not None:
                temp.add_metric(key, value)
            value = self._call("nvmlDeviceGetPowerUsage", handle)
            if value is not None:
                power.add_metric(key, value / 1000.0)
            value = self._call("nvmlDeviceGetEnforcedPowerLimit", handle)
            if value is not None:
                limit.add_metric(key, value / 1000.0)
            for label, const in CLOCKS:
                value = self._call("nvmlDeviceGetClockInfo", handle, getattr(nvml, const))
                if value is not None:
                    clock.add_metric(key + [label], value * 1e6)
            for label, const in ECC_TYPES:
                value = self._call("nvmlDeviceGetTotalEccErrors", handle, getattr(nvml, const), nvml.NVML_VOLATILE_ECC)
                if value is not None:
                    ecc.add_metric(key + [label], value)
            for label, const in RETIRE_CAUSES:
                pages = self._call("nvmlDeviceGetRetiredPages", handle, getattr(nvml, const))
                if pages is not None:
                    retired.add_metric(key + [label], len(pages))
            value = self._call("nvmlDeviceGetRetiredPagesPendingStatus", handle)
            if value is not None:
                retired_pending.add_metric(key, 1 if value else 0)
            rows = self._call("nvmlDeviceGetRemappedRows", handle)
            if rows is not None:
                corrected, uncorrected, pending, failure = rows
                remapped.add_metric(key + ["corrected"], corrected)
                remapped.add_metric(key + ["uncorrected"], uncorrected)
                remap_pending.add_metric(key, 1 if pending else 0)
                remap_failed.add_metric(key, 1 if failure else 0)
        yield from (info, util, mem_util, used, total, temp, power, limit, clock, ecc,
                    retired, retired_pending, remapped, remap_pending, remap_failed)

        xid = CounterMetricFamily(PREFIX + "xid_errors", "XID (critical) error events seen by this exporter.",
                                  labels=labels + ["xid"])
        with self.lock:
            for (uuid, index, code), count in sorted(self.xids.items()):
                xid.add_metric([index, uuid, code], count)
        yield xid
        yield self._errors_family(CounterMetricFamily)

    def _errors_family(self, counter):
        family = counter("inferfleet_gpu_exporter_errors", "Unexpected NVML errors, by call.", labels=["call"])
        with self.lock:
            for call, count in sorted(self.errors.items()):
                family.add_metric([call], count)
        return family


def main(argv=None, nvml=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listen-address", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9835)
    parser.add_argument("--no-xid-events", action="store_true", help="do not wait for XID events")
    args = parser.parse_args(argv)

    from prometheus_client import REGISTRY, start_http_server
    from prometheus_client import gc_collector, platform_collector, process_collector

    if nvml is None:
        import pynvml as nvml  # pylint: disable=import-outside-toplevel
    for default in (gc_collector.GC_COLLECTOR, platform_collector.PLATFORM_COLLECTOR,
                    process_collector.PROCESS_COLLECTOR):
        REGISTRY.unregister(default)
    collector = NvmlCollector(nvml)
    REGISTRY.register(collector)
    stop = threading.Event()
    if not args.no_xid_events:
        threading.Thread(target=collector.watch_xids, args=(stop,), name="xid-events", daemon=True).start()
    server, thread = start_http_server(args.port, addr=args.listen_address)
    print("inferfleet-gpu-exporter: listening on %s:%d" % (args.listen_address, args.port), flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
