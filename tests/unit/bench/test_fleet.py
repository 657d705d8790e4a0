"""bench/fleet.py: the pure parts of --site-noop (recap parsing, trees, the table)."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
SPEC = importlib.util.spec_from_file_location("bench_fleet", ROOT / "bench" / "fleet.py")
fleet = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(fleet)

OUTPUT = """PLAY RECAP *********************************************************************
rep-node1                  : ok=99   changed=0    unreachable=0    failed=0    skipped=69   rescued=0    ignored=0
rep-node2                  : ok=84   changed=1    unreachable=0    failed=0    skipped=37   rescued=0    ignored=0
rep-node10                 : ok=84   changed=0    unreachable=0    failed=0    skipped=37   rescued=0    ignored=0

TASKS RECAP ********************************************************************
inferfleet.gpu.host_tuning : CPU partition | Confine --- 4.13s
"""


def test_recap_reads_hosts_and_ignores_profile_lines():
    hosts = fleet.recap(OUTPUT)
    assert sorted(hosts) == ["rep-node1", "rep-node10", "rep-node2"]
    assert hosts["rep-node2"] == {"ok": 84, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 37,
                                  "rescued": 0, "ignored": 0}


def test_runs_counts_the_busiest_and_the_last_node():
    runs = fleet._runs(fleet.recap(OUTPUT))
    assert runs == {"changed": 1, "runs_busiest": 168, "runs_node": 121, "skipped_node": 37}
    assert fleet._runs({}) == {}


def test_trees_link_each_collection_outside_the_tree(tmp_path):
    tree = tmp_path / "before"
    (tree / "playbooks").mkdir(parents=True)
    (tree / "playbooks/site.yml").write_text("---\n")
    trees = fleet.parse_trees([f"before={tree}", f"after={ROOT}"], tmp_path / "scratch")
    assert [t.label for t in trees] == ["before", "after"]
    link = Path(trees[0].collections) / "ansible_collections/inferfleet/gpu"
    assert link.is_symlink() and link.resolve() == tree.resolve()
    assert not (tree / ".build").exists()
    env = trees[0].env({"PATH": "/bin"})
    assert env["ANSIBLE_CONFIG"] == str(tree.resolve() / "ansible.cfg")
    assert env["ANSIBLE_COLLECTIONS_PATH"] == trees[0].collections
    play = trees[0].play("/inv.yml")
    assert play[:4] == ["ansible-playbook", "-i", "/inv.yml", str(tree.resolve() / "playbooks/site.yml")]
    assert f"@{tree.resolve()}/lab/vars/site.yml" in play and "inferfleet_vllm_enabled=false" in play


@pytest.mark.parametrize("spec", ["before", "1x=/tmp", f"nosite={Path('/nonexistent')}"])
def test_bad_tree_specs_are_refused(tmp_path, spec):
    with pytest.raises(SystemExit):
        fleet.parse_trees([spec], tmp_path)


def test_noop_table_side_by_side():
    row = {"nodes": 16, "ping": 2.0, "converge": 100.0, "load": 3.5, "trees": ["before", "after"],
           "runs": {"pipelining/before": {"seconds": 60.0, "ratio": 30.0},
                    "pipelining/after": {"seconds": 40.0, "ratio": 20.0}}}
    table = fleet.format_noop_markdown([row], ["pipelining", "mitogen"])
    assert "| no-op pipelining (before) | no-op pipelining (after) | no-op mitogen (before) |" in table
    assert "| 16 | 2.00 s | 100.0 s (x50.0) | 60.0 s (x30.0) | 40.0 s (x20.0) | - | - | 3.5 |" in table


def test_noop_table_with_rounds_shows_the_spread():
    row = {"nodes": 2, "ping": 1.0, "converge": 50.0, "load": 4.0, "trees": ["after"],
           "runs": {"mitogen/after": {"seconds": 35.0, "ratio": 35.0, "all": [30.0, 35.0, 40.0]}}}
    assert "| 35.0 s (x35.0) [30.0-40.0] |" in fleet.format_noop_markdown([row], ["mitogen"])
