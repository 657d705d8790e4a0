"""bench/noisy_neighbour.py: the pure parts (CPU lists, prompts, the summary table, argument checks)."""
import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "noisy_neighbour", Path(__file__).resolve().parents[3] / "bench" / "noisy_neighbour.py")
nn = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(nn)


def test_cpulist_roundtrip():
    assert nn.cpulist("0-2,5 7") == [0, 1, 2, 5, 7]
    assert nn.fmt_cpus([1, 3]) == "1,3"


def test_prompts_same_lengths_unique_prefixes():
    a, b = nn.make_prompts("r0", 5, 10, 0), nn.make_prompts("r1", 5, 10, 0)
    assert [len(p.split()) for p in a] == [len(p.split()) for p in b] == [11] * 5
    assert not set(p.split()[0] for p in a) & set(p.split()[0] for p in b)


def run(variant, noisy, req_s, ttft, neighbour=None):
    return {"variant": variant, "neighbour": noisy, "req_s": req_s, "p50_ttft_ms": ttft, "p99_ttft_ms": ttft * 2,
            "p50_tpot_ms": 10.0, "p99_tpot_ms": 20.0, "failed": 0, "neighbour_it_s": neighbour}


def test_summary_ratios_to_untuned_and_spread():
    runs = [run("untuned", False, 10, 50), run("untuned", True, 5, 100, 2e6), run("untuned", True, 7, 100, 2e6),
            run("fifo", False, 10, 50), run("fifo", True, 12, 50, 1e6)]
    table = nn.summarise(runs, ["untuned", "fifo"])
    fifo_noisy = [l for l in table.splitlines() if l.startswith("| fifo | yes")][0].split(" | ")
    assert fifo_noisy[3] == "12.00 [12.00-12.00]"
    assert fifo_noisy[10] == "2.00"  # req/s 12 / median(5, 7)
    assert fifo_noisy[-1].rstrip(" |") == "0.50"  # the neighbour got half the progress
    untuned_noisy = [l for l in table.splitlines() if l.startswith("| untuned | yes")][0]
    assert "6.00 [5.00-7.00]" in untuned_noisy


def test_variants_must_include_untuned():
    with pytest.raises(SystemExit):
        nn.main(["--ssh", "root@192.0.2.1", "--variants", "fifo"])
