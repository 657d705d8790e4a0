"""The fleet benchmark's report functions (plugins/module_utils/benchmark.py).

Fixtures (tests/fixtures/benchmark/), captured in the lab (vLLM 0.32.0, CPU build): a `vllm bench serve
--save-result` file, and `systemctl show` of an instance's unit followed by a copy of it edited into a
second instance (port 8001, SCHED_OTHER, CPUs 2-3) to cover two units and a second policy.
"""
import json
import shutil
from pathlib import Path

import pytest

from ansible_collections.inferfleet.gpu.plugins.module_utils import benchmark

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "benchmark"


def result():
    return json.loads((FIX / "vllm_bench_serve_result.json").read_text())


def units_text():
    return (FIX / "systemctl_show_units.txt").read_text()


def test_parse_systemctl_show_splits_units():
    units = benchmark.parse_systemctl_show(units_text())
    assert [u["Id"] for u in units] == ["inferfleet-vllm-0.service", "inferfleet-vllm-1.service"]
    assert units[0]["CPUSchedulingPolicy"] == "1"


def test_instances_from_units_reads_port_model_and_settings():
    inst = benchmark.instances_from_units(benchmark.parse_systemctl_show(units_text()), "10.0.0.5")
    assert [i["port"] for i in inst] == [8000, 8001]
    first = inst[0]
    assert first["url"] == "http://10.0.0.5:8000/v1"
    assert first["model"] == "qwen3-vl-tiny-standin"
    assert first["model_dir"] == "/models/qwen3-vl-tiny-standin"
    settings = first["unit_settings"]
    assert settings["sched_policy"] == "fifo" and settings["sched_priority"] == 80
    assert settings["nice"] == -10 and settings["allowed_cpus"] == "1"
    assert inst[1]["unit_settings"]["sched_policy"] == "other"


def test_inactive_units_are_not_targets():
    text = units_text().replace("ActiveState=active", "ActiveState=failed", 1)
    inst = benchmark.instances_from_units(benchmark.parse_systemctl_show(text), "h")
    assert [i["index"] for i in inst] == [1]


def test_exec_argv_handles_missing_value():
    assert benchmark.exec_argv("") == []
    assert benchmark.exec_argv("{ path=/x ; argv[]=/x serve /m --port 9 ; ignore_errors=no }") == [
        "/x", "serve", "/m", "--port", "9"]


def test_summarise_real_result():
    row = benchmark.summarise({"name": "n1:8000", "url": "u"}, "image", result(),
                              {"wall_s": 20.0, "cpu_user_s": 9.0, "cpu_sys_s": 1.0, "host": "n1"})
    raw = result()
    assert row["request_throughput"] == pytest.approx(raw["request_throughput"])
    assert row["p99_ttft_ms"] == pytest.approx(raw["p99_ttft_ms"])
    assert row["p50_e2el_ms"] == pytest.approx(raw["p50_e2el_ms"])
    assert row["completed"] == raw["completed"] and row["failed"] == raw["failed"]
    assert row["loadgen"]["cpu_cores"] == pytest.approx(0.5)


def test_summarise_missing_result_counts_every_prompt_failed():
    row = benchmark.summarise({"name": "n1:8000"}, "text", None, {"rc": 1, "num_prompts": 20})
    assert row["completed"] == 0 and row["failed"] == 20
    assert "exited 1" in row["error"]


@pytest.mark.parametrize("slo,expect", [
    ({"p99_ttft_ms": 1e9}, 0),
    ({"p99_ttft_ms": 0.001}, 1),
    ({"min_request_throughput": 1e9}, 1),
    ({"max_failed": 0}, 0),
    ({"p99_ttft_ms": None, "max_failed": None}, 0),
])
def test_check_slo(slo, expect):
    rows = [benchmark.summarise({"name": "n1:8000"}, "image", result())]
    out = benchmark.check_slo(rows, slo)
    assert len(out) == expect
    assert all(v.startswith("n1:8000 (image)") for v in out)


def test_check_slo_missing_run_is_a_violation():
    rows = [benchmark.summarise({"name": "gw"}, "text", None, {"rc": 2})]
    assert benchmark.check_slo(rows, {"p99_ttft_ms": 100})[0].startswith("gw (text): p99_ttft_ms not measured")


def test_check_slo_unknown_key():
    with pytest.raises(ValueError, match="unknown SLO"):
        benchmark.check_slo([], {"p95_ttft_ms": 1})


def make_dir(tmp_path, with_result=True):
    (tmp_path / "raw").mkdir()
    targets = [{"name": "n1:8000", "kind": "instance", "url": "http://n1:8000/v1",
                "unit_settings": {"sched_policy": "fifo", "sched_priority": 80, "nice": -10, "allowed_cpus": "1"}},
               {"name": "gateway@n1", "kind": "gateway", "url": "http://n1:8080/v1", "unit_settings": {}}]
    (tmp_path / "targets.json").write_text(json.dumps({"targets": targets, "workloads": ["image"]}))
    if with_result:
        shutil.copy(FIX / "vllm_bench_serve_result.json", tmp_path / "raw" / "n1_8000--image.json")
    return tmp_path


def test_load_rows_and_markdown(tmp_path):
    rows = benchmark.load_rows(str(make_dir(tmp_path)))
    assert [r["target"] for r in rows] == ["n1:8000", "gateway@n1"]
    assert rows[1]["error"]
    text = benchmark.render_markdown(rows, {"num_prompts": 20}, ["x: y"], ["latency.png"])
    assert "| n1:8000 | image |" in text and "fifo 80, nice -10, cpus 1" in text
    assert "- x: y" in text and "![latency](latency.png)" in text
    assert "## Runs without a result" in text


def test_plot_writes_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    rows = benchmark.load_rows(str(make_dir(tmp_path)))
    names = benchmark.plot(rows, str(tmp_path))
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
