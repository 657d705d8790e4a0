"""vllm_service's hub path against a stand-in of the hub's revision API (tests/standins/hf_hub).

The role's own tasks/resolve.yml runs in ansible-playbook on localhost (its
real ``uri`` call, its Jinja): a branch resolves to the commit, every file gets
the checksum the hub publishes (LFS sha256 for shards, git blob id for small
files), and inferfleet.gpu.model_manifest verifies a directory against that
manifest - a same-size corruption of a shard included.
"""
import hashlib
import json

import pytest

from helpers import run_playbook, write_play, write_vars
from standins.hf_hub import StandinHub

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO_ID = "Qwen/Qwen3-VL-Tiny-Standin"


def make_model(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "qwen3_vl_moe"}))
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": names[0], "b": names[1]}}))
    for i, name in enumerate(names):
        (path / name).write_bytes(bytes([i + 7]) * 65536)
    return path


TASKS = """
- name: The role's own resolution
  ansible.builtin.include_role:
    name: inferfleet.gpu.vllm_service
    tasks_from: resolve.yml
- name: Verify a local directory against what the hub published
  inferfleet.gpu.model_manifest:
    path: "{{ model_dir }}"
    expected: "{{ __vllm_service_model_hub_manifest }}"
    state: verified
    cache: ""
  register: verified
- name: Hand the result to the test
  ansible.builtin.copy:
    dest: "{{ out }}"
    content: "{{ {'commit': __vllm_service_model_commit, 'manifest': __vllm_service_model_hub_manifest,
                  'verified': verified} | to_json }}"
    mode: "0644"
"""


def resolve(tmp_path, hub, **extra):
    out = tmp_path / "out.json"
    variables = {"vllm_service_model": REPO_ID, "vllm_service_model_source": "hub",
                 "vllm_service_model_hub_url": hub.url, "model_dir": str(tmp_path / "local"), "out": str(out)}
    variables.update(extra)
    proc = run_playbook(write_play(tmp_path, TASKS), extra_vars=write_vars(tmp_path, variables))
    return proc, (json.loads(out.read_text()) if out.exists() else None)


@pytest.fixture()
def hub(tmp_path):
    source = make_model(tmp_path / "hub-files")
    with StandinHub(REPO_ID, str(source), {"main": COMMIT, "release/v1": COMMIT}) as standin:
        yield standin


def test_branch_resolves_to_commit_and_checksums(tmp_path, hub):
    make_model(tmp_path / "local")
    proc, result = resolve(tmp_path, hub, vllm_service_model_revision="release/v1", vllm_service_hf_token="hf_secret")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["commit"] == COMMIT
    shard = (tmp_path / "hub-files" / "model-00001-of-00002.safetensors").read_bytes()
    config = (tmp_path / "hub-files" / "config.json").read_bytes()
    assert result["manifest"]["model-00001-of-00002.safetensors"] == hashlib.sha256(shard).hexdigest()
    assert result["manifest"]["config.json"] == hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest()
    assert result["verified"]["complete"], result["verified"]
    assert [r["path"] for r in hub.requests] == ["/api/models/%s/revision/release%%2Fv1" % REPO_ID]
    assert hub.requests[0]["authorization"] == "Bearer hf_secret" and "blobs=true" in hub.requests[0]["query"]
    assert "hf_secret" not in proc.stdout


def test_same_size_corruption_is_found_against_the_hub_checksums(tmp_path, hub):
    local = make_model(tmp_path / "local")
    shard = local / "model-00002-of-00002.safetensors"
    data = bytearray(shard.read_bytes())
    data[1000] ^= 0x01
    shard.write_bytes(bytes(data))
    proc, result = resolve(tmp_path, hub)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not result["verified"]["complete"]
    assert result["verified"]["mismatched"] == ["model-00002-of-00002.safetensors"]


def test_unknown_revision_fails(tmp_path, hub):
    proc, result = resolve(tmp_path, hub, vllm_service_model_revision="no-such-branch")
    assert proc.returncode != 0 and result is None
    assert "404" in proc.stdout
