# -*- coding: utf-8 -*-
"""The two scripts vllm_service runs on the target before touching a server.

- ``files/vllm_flag_check.py``: flags against vLLM's own ``vllm serve`` parser.
  Here it runs against a small vLLM-shaped package built in ``tmp_path`` whose
  parser is a real argparse parser with vLLM's layout (``FlexibleArgumentParser``
  in ``vllm.utils.argparse_utils``, the ``serve`` subcommand from
  ``vllm.entrypoints.cli.serve.cmd_init()``), so the script's parser-building,
  error capture and reporting are exercised without the 3 GB vLLM install.  The
  real vLLM is exercised by the molecule scenario ``vllm`` (and here too, when
  ``INFERFLEET_TEST_VLLM_PYTHON`` names a Python that has vLLM).
(The model's completeness and checksums: tests/unit/plugins/module_utils/test_modelmanifest.py.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[3] / "roles" / "vllm_service"
FLAG_CHECK = ROLE / "files" / "vllm_flag_check.py"

SERVE_PY = '''
import argparse


class ServeSubcommand:
    name = "serve"

    @staticmethod
    def cmd(args):
        raise SystemExit("must not start")

    def validate(self, args):
        if args.max_num_seqs is not None and args.max_num_seqs < 1:
            raise ValueError("max_num_seqs must be >= 1")

    def subparser_init(self, subparsers):
        p = subparsers.add_parser("serve")
        p.add_argument("model_tag")
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.add_argument("--max-model-len", type=int)
        p.add_argument("--max-num-seqs", type=int)
        p.add_argument("--dtype", choices=["auto", "bfloat16", "float16"])
        p.add_argument("--enforce-eager", action="store_true")
        p.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction)
        p.add_argument("--limit-mm-per-prompt")
        return p


def cmd_init():
    return [ServeSubcommand()]
'''


@pytest.fixture()
def fake_vllm(tmp_path):
    """A vLLM-shaped package: same module paths, a real argparse parser, and its metadata."""
    root = tmp_path / "site"
    pkg = root / "vllm"
    (pkg / "entrypoints" / "cli").mkdir(parents=True)
    (pkg / "utils").mkdir()
    for d in [pkg, pkg / "entrypoints", pkg / "entrypoints" / "cli", pkg / "utils"]:
        (d / "__init__.py").write_text("")
    (pkg / "utils" / "argparse_utils.py").write_text(
        "import argparse\n\nclass FlexibleArgumentParser(argparse.ArgumentParser):\n    pass\n")
    (pkg / "entrypoints" / "cli" / "serve.py").write_text(SERVE_PY)
    meta = root / "vllm-9.9.9.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 9.9.9+test\n")
    return root


def run_check(python, flags, pythonpath=None):
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    proc = subprocess.run([python, str(FLAG_CHECK), json.dumps({"model": "/models/m", "flags": flags})],
                          capture_output=True, text=True, env=env, timeout=600, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_known_flags_pass(fake_vllm):
    r = run_check(sys.executable, ["--max-model-len", "2048", "--enforce-eager", "--no-enable-prefix-caching",
                                   "--limit-mm-per-prompt", '{"image":1}', "--port", "8000"], fake_vllm)
    assert r == {"ok": True, "unknown": [], "error": "", "vllm_version": "9.9.9+test"}


def test_unknown_flags_are_named(fake_vllm):
    r = run_check(sys.executable, ["--max-model-len", "2048", "--batching-strategy", "continuous",
                                   "--num-swapped-blocks", "4"], fake_vllm)
    assert r["ok"] is False
    assert r["unknown"] == ["--batching-strategy", "--num-swapped-blocks"]
    assert "unrecognized arguments" in r["error"]


def test_bad_value_is_reported(fake_vllm):
    r = run_check(sys.executable, ["--max-model-len", "abc"], fake_vllm)
    assert r["ok"] is False and r["unknown"] == []
    assert "--max-model-len" in r["error"] and "abc" in r["error"]
    r = run_check(sys.executable, ["--dtype", "int3"], fake_vllm)
    assert r["ok"] is False and "int3" in r["error"]


def test_subcommand_validation_runs(fake_vllm):
    r = run_check(sys.executable, ["--max-num-seqs", "0"], fake_vllm)
    assert r == {"ok": False, "unknown": [], "error": "max_num_seqs must be >= 1", "vllm_version": "9.9.9+test"}


def test_no_vllm_is_a_clear_failure(tmp_path):
    r = run_check(sys.executable, ["--port", "1"], tmp_path)
    assert r["ok"] is False
    assert r["error"].startswith("could not build vLLM's parser")


@pytest.mark.skipif(not os.environ.get("INFERFLEET_TEST_VLLM_PYTHON"),
                    reason="set INFERFLEET_TEST_VLLM_PYTHON to a Python with vLLM installed")
def test_real_vllm_parser():
    python = os.environ["INFERFLEET_TEST_VLLM_PYTHON"]
    good = run_check(python, ["--dtype", "bfloat16", "--enforce-eager", "--kv-cache-memory-bytes", "256M",
                              "--limit-mm-per-prompt", '{"image":1,"video":0}', "--max-model-len", "2048"])
    assert good["ok"], good
    bad = run_check(python, ["--batching-strategy", "x", "--num-swapped-blocks", "3"])
    assert bad["unknown"] == ["--batching-strategy", "--num-swapped-blocks"]
