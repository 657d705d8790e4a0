"""inferfleet.gpu.benchmark_report on a real results directory (fixtures captured in the lab)."""
import json
import shutil
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.inferfleet.gpu.plugins.modules import benchmark_report

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "benchmark"


def results_dir(tmp_path):
    (tmp_path / "raw").mkdir(parents=True)
    targets = [{"name": "n1:8000", "kind": "instance", "url": "http://n1:8000/v1", "unit_settings": {}}]
    (tmp_path / "targets.json").write_text(json.dumps({"targets": targets, "workloads": ["image"]}))
    shutil.copy(FIX / "vllm_bench_serve_result.json", tmp_path / "raw" / "n1_8000--image.json")
    return tmp_path


def run(capsys, tmp_path, check=False, **args):
    args.update(_ansible_check_mode=check, _ansible_remote_tmp=str(tmp_path), _ansible_keep_remote_files=False)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            benchmark_report.main()
    return json.loads(capsys.readouterr().out)


def test_writes_report_then_is_idempotent(capsys, tmp_path):
    d = results_dir(tmp_path / "r")
    out = run(capsys, tmp_path, path=str(d), plots=False, slo={"max_failed": 0})
    assert out["changed"] and not out["violations"]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["targets"][0]["target"] == "n1:8000"
    assert "| n1:8000 | image |" in (d / "report.md").read_text()
    again = run(capsys, tmp_path, path=str(d), plots=False, slo={"max_failed": 0})
    assert not again["changed"]


def test_check_mode_writes_nothing(capsys, tmp_path):
    d = results_dir(tmp_path / "r")
    out = run(capsys, tmp_path, check=True, path=str(d), plots=False)
    assert out["changed"] and not (d / "report.md").exists()


def test_violation_names_target(capsys, tmp_path):
    d = results_dir(tmp_path / "r")
    out = run(capsys, tmp_path, path=str(d), plots=False, slo={"p99_ttft_ms": 0.001})
    assert out["violations"] and out["violations"][0].startswith("n1:8000 (image): p99_ttft_ms")


def test_plots(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    d = results_dir(tmp_path / "r")
    out = run(capsys, tmp_path, path=str(d), plots=True)
    assert (d / "latency.png").is_file() and (d / "throughput.png").is_file()
    assert str(d / "latency.png") in out["files"]


@pytest.mark.parametrize("args,msg", [
    ({"slo": {"p95_ttft_ms": 1}}, "slo has unknown keys p95_ttft_ms"),
    ({"path": "/nonexistent"}, "holds no targets.json"),
])
def test_bad_input(capsys, tmp_path, args, msg):
    d = results_dir(tmp_path / "r")
    params = {"path": str(d), "plots": False}
    params.update(args)
    out = run(capsys, tmp_path, **params)
    assert out["failed"] and msg in out["msg"]
