# -*- coding: utf-8 -*-
"""lab/assets.py (the lab's wheelhouse and model cache) and the stand-in model's chat template.

The heavy parts (pip, torch) run in the molecule scenario ``vllm``; here: the cache
keys, the reuse of a prepared wheelhouse, the Python 3.11 requirement, and the
ChatML template rendered the way transformers renders chat templates.
"""
import importlib.util
import json
import sys
from pathlib import Path

import jinja2
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from lab import assets  # noqa: E402


def load_builder():
    spec = importlib.util.spec_from_file_location("tiny_build", ROOT / "tests" / "fixtures" / "tiny_qwen3_vl" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_wheelhouse_key_follows_the_recipe():
    a = assets.digest(assets.wheelhouse_recipe("0.32.0"))
    assert a == assets.digest(assets.wheelhouse_recipe("0.32.0"))
    assert a != assets.digest(assets.wheelhouse_recipe("0.31.0"))
    assert len(a) == 12


def test_prepared_wheelhouse_is_reused(tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "CACHE", tmp_path)
    dest = tmp_path / ("wheelhouse-" + assets.digest(assets.wheelhouse_recipe("0.32.0")))
    dest.mkdir()
    (dest / "RECIPE.json").write_text("{}")

    def no_run(*a, **k):
        raise AssertionError("must not build again: %r" % (a,))

    monkeypatch.setattr(assets, "run", no_run)
    assert assets.build_wheelhouse(sys.executable, "0.32.0") == dest


def test_cached_asset_builds_once_in_a_tmp_dir_then_reuses(tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "CACHE", tmp_path)
    recipe = {"package": "x", "version": "1"}
    dest = tmp_path / ("thing-" + assets.digest(recipe))
    builds = []

    def build(tmp):
        assert tmp == dest.with_name(dest.name + ".tmp") and not dest.exists()
        (tmp / "payload").write_text("ok")
        builds.append(tmp)

    assert assets.cached_asset("thing", recipe, build) == dest
    assert (dest / "payload").read_text() == "ok" and not dest.with_name(dest.name + ".tmp").exists()
    assert json.loads((dest / "RECIPE.json").read_text())["version"] == "1"
    assert assets.cached_asset("thing", recipe, build) == dest
    assert len(builds) == 1


def test_cached_asset_failed_build_is_not_taken_for_a_finished_one(tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "CACHE", tmp_path)

    def broken(tmp):
        (tmp / "half").write_text("")
        raise RuntimeError("download failed")

    with pytest.raises(RuntimeError):
        assets.cached_asset("thing", {"v": 1}, broken)
    assert not (tmp_path / ("thing-" + assets.digest({"v": 1}))).exists()
    built = assets.cached_asset("thing", {"v": 1}, lambda tmp: (tmp / "whole").write_text(""))
    assert sorted(f.name for f in built.iterdir()) == ["RECIPE.json", "whole"]


def test_deb_repo_is_keyed_by_its_packages_and_reused_while_its_index_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "CACHE", tmp_path)
    dest = tmp_path / ("debs-monitoring-" + assets.digest({"debs": sorted(assets.MONITORING_DEBS), "suite": "bookworm"}))
    dest.mkdir()
    (dest / "Packages").write_text("")

    def no_run(*a, **k):
        raise AssertionError("must not build again: %r" % (a,))

    monkeypatch.setattr(assets, "run", no_run)
    assert assets.build_monitoring_debs() == dest
    assert not (dest / "RECIPE.json").exists()


def test_python_311_is_required():
    if sys.version_info[:2] == (3, 11):
        pytest.skip("this interpreter is 3.11")
    with pytest.raises(SystemExit) as err:
        assets.find_python(sys.executable)
    assert "no CPython 3.11 found" in str(err.value) and sys.executable in str(err.value)


def render(messages, add_generation_prompt=True):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.from_string(load_builder().CHAT_TEMPLATE).render(messages=messages,
                                                                add_generation_prompt=add_generation_prompt)


def test_chat_template_places_the_image_where_qwen_does():
    out = render([{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:..."}},
                                               {"type": "text", "text": "What is this?"}]}])
    assert out == ("<|im_start|>system\nBe brief.<|im_end|>\n"
                   "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is this?<|im_end|>\n"
                   "<|im_start|>assistant\n")


def test_chat_template_video_and_no_generation_prompt():
    out = render([{"role": "user", "content": [{"type": "video", "video": "x"}, {"type": "text", "text": "Hi"}]}],
                 add_generation_prompt=False)
    assert out == "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Hi<|im_end|>\n"


def test_special_tokens_cover_qwen_vision_tokens():
    tokens = load_builder().SPECIAL_TOKENS
    for t in ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
              "<|endoftext|>"]:
        assert t in tokens
    assert len(set(tokens)) == len(tokens)


def test_gateway_debs_are_their_own_flat_repository(tmp_path, monkeypatch):
    """debs-gateway: haproxy with the libraries a node lacks, keyed by its own list; the monitoring key
    (and so its cached directory) is what it was before the gateway's repository existed."""
    assert assets.digest({"debs": sorted(assets.MONITORING_DEBS), "suite": "bookworm"}) == "e76464e37d97"
    assert "haproxy" in assets.GATEWAY_DEBS
    calls = []
    monkeypatch.setattr(assets, "CACHE", tmp_path)
    monkeypatch.setattr(assets, "run", lambda cmd, **kw: calls.append(cmd))
    key = assets.digest({"debs": sorted(assets.GATEWAY_DEBS), "suite": "bookworm"})
    ready = tmp_path / f"debs-gateway-{key}"
    ready.mkdir()
    (ready / "Packages").write_text("Package: haproxy\n")
    assert assets.build_gateway_debs() == ready
    assert calls == []  # a prepared repository is reused, nothing downloaded
    pairs = dict(assets.bind_pairs({"wheelhouse": "/w", "models": "/m", "debs_monitoring": "/dm",
                                    "router_wheelhouse": "/r", "debs_gateway": str(ready)}))
    assert pairs[str(ready)] == "/srv/debs-gateway"
