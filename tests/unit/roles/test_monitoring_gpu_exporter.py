"""The role monitoring's GPU exporter, on the NVML stand-in built from go-nvml's DGX mocks."""
import shutil
import subprocess
import threading
import time
import urllib.request

import pynvml
import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import gpu_exporter_standin as S  # noqa: E402


def samples(text):
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(found, metric, **labels):
    hits = [v for lab, v in found.get(metric, []) if all(lab.get(k) == str(want) for k, want in labels.items())]
    assert len(hits) == 1, "%s%s: %s" % (metric, labels, found.get(metric))
    return hits[0]


@pytest.fixture(scope="module")
def exporter():
    return S.load_exporter()


def test_dgx_h100_standin(exporter):
    devices = S.gpus("dgxh100.New()")
    text = S.scrape(exporter.NvmlCollector(S.FakeNvml(devices).fake))
    found = samples(text)
    assert value(found, "inferfleet_gpu_nvml_up") == 1
    assert len(found["inferfleet_gpu_info"]) == 8
    for i, dev in enumerate(devices):
        key = {"gpu": i, "uuid": dev["uuid"]}
        assert value(found, "inferfleet_gpu_info", name="NVIDIA H100 80GB HBM3", driver_version="550.54.15", **key) == 1
        assert value(found, "inferfleet_gpu_memory_total_bytes", **key) == 81920 * S.MiB
        assert value(found, "inferfleet_gpu_memory_used_bytes", **key) == 0
        assert value(found, "inferfleet_gpu_utilization_ratio", **key) == pytest.approx(i / 10.0)
        assert value(found, "inferfleet_gpu_memory_utilization_ratio", **key) == pytest.approx(i / 20.0)
        assert value(found, "inferfleet_gpu_temperature_celsius", **key) == 40 + i
        assert value(found, "inferfleet_gpu_power_watts", **key) == pytest.approx(300 + i / 1000.0)
        assert value(found, "inferfleet_gpu_power_limit_watts", **key) == 700
        assert value(found, "inferfleet_gpu_clock_hertz", clock="sm", **key) == 1980e6
        assert value(found, "inferfleet_gpu_clock_hertz", clock="memory", **key) == 2619e6
        assert value(found, "inferfleet_gpu_ecc_errors_total", type="corrected", **key) == i
        assert value(found, "inferfleet_gpu_ecc_errors_total", type="uncorrected", **key) == 0
        assert value(found, "inferfleet_gpu_remapped_rows", type="corrected", **key) == i
        assert value(found, "inferfleet_gpu_remapped_rows_failure", **key) == 0
    # Hopper has no page retirement: NOT_SUPPORTED gives no series and is not an error
    assert "inferfleet_gpu_retired_pages" not in found
    assert "inferfleet_gpu_exporter_errors_total" not in found


def test_every_mock_server(exporter):
    for key, server in sorted(S.MOCK_DATA["servers"].items()):
        found = samples(S.scrape(exporter.NvmlCollector(S.FakeNvml(S.gpus(key)).fake)))
        totals = [v for _labels, v in found["inferfleet_gpu_memory_total_bytes"]]
        assert totals == [server["memory_MiB"] * S.MiB] * server["gpus"], key


def test_older_gpu_retired_pages_no_remap_no_ecc(exporter):
    """A pre-Ampere card: retired pages instead of remapped rows; a card without ECC gives none."""
    devices = S.gpus("dgxa100.New()")[:2]
    for dev in devices:
        dev.update(retired=[0x1000, 0x2000], remapped=None)
    fake = S.FakeNvml(devices)
    fake.fake.nvmlDeviceGetTotalEccErrors.side_effect = S.FakeNvml.not_supported()
    found = samples(S.scrape(exporter.NvmlCollector(fake.fake)))
    assert value(found, "inferfleet_gpu_retired_pages", gpu=1, cause="double_bit_ecc") == 2
    assert "inferfleet_gpu_remapped_rows" not in found
    assert "inferfleet_gpu_ecc_errors_total" not in found


def test_unexpected_nvml_error_is_counted_and_the_rest_still_served(exporter):
    fake = S.FakeNvml(S.gpus()[:2])
    fake.fake.nvmlDeviceGetTemperature.side_effect = pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
    found = samples(S.scrape(exporter.NvmlCollector(fake.fake)))
    assert value(found, "inferfleet_gpu_exporter_errors_total", call="nvmlDeviceGetTemperature") == 2
    assert "inferfleet_gpu_temperature_celsius" not in found
    assert len(found["inferfleet_gpu_memory_total_bytes"]) == 2


def test_no_driver_means_nvml_down_and_retried(exporter):
    fake = S.FakeNvml(S.gpus()[:1], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    collector = exporter.NvmlCollector(fake.fake)
    found = samples(S.scrape(collector))
    assert value(found, "inferfleet_gpu_nvml_up") == 0
    assert value(found, "inferfleet_gpu_exporter_errors_total", call="nvmlInit") == 1
    fake.fake.nvmlInit.side_effect = None   # the driver came back
    found = samples(S.scrape(collector))
    assert value(found, "inferfleet_gpu_nvml_up") == 1 and len(found["inferfleet_gpu_info"]) == 1


def test_xid_events_counted_per_gpu_and_code(exporter):
    devices = S.gpus()[:4]
    fake = S.FakeNvml(devices, events=[(2, 79), (2, 79), (3, 48)])
    collector = exporter.NvmlCollector(fake.fake)
    thread = S.watch_xids_until_delivered(collector, fake)
    assert not thread.is_alive()
    found = samples(S.scrape(collector))
    assert value(found, "inferfleet_gpu_xid_errors_total", gpu=2, uuid=devices[2]["uuid"], xid=79) == 2
    assert value(found, "inferfleet_gpu_xid_errors_total", gpu=3, xid=48) == 1
    assert len(found["inferfleet_gpu_xid_errors_total"]) == 2
    fake.fake.nvmlEventSetFree.assert_called_once_with("event-set")
    assert fake.fake.nvmlDeviceRegisterEvents.call_count == 4


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (Debian package prometheus) not installed")
def test_promtool_accepts_the_exposition():
    text = S.standin_metrics()
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_http_server_serves_metrics(exporter):
    """main(): the real HTTP server of prometheus_client, on a free port, with the stand-in."""
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    fake = S.FakeNvml(S.gpus()[:1])
    from prometheus_client import REGISTRY
    before = set(REGISTRY._collector_to_names)  # pylint: disable=protected-access
    argv = ["--listen-address", "127.0.0.1", "--port", str(port), "--no-xid-events"]
    thread = threading.Thread(target=exporter.main, args=(argv, fake.fake), daemon=True)
    thread.start()
    body = ""
    for _attempt in range(100):
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2).read().decode()
            break
        except OSError:
            time.sleep(0.05)
    try:
        assert "inferfleet_gpu_memory_total_bytes{gpu=\"0\"" in body
        assert "python_gc_objects_collected_total" not in body   # only GPU series
    finally:
        for collector in set(REGISTRY._collector_to_names) - before:  # pylint: disable=protected-access
            REGISTRY.unregister(collector)
