"""Lab state documents and the inventory rendered from them."""
import json

import pytest
import yaml

from lab import inventory, state as st


@pytest.fixture
def doc(tmp_path):
    return st.new_state("mol-lab", 7, 3, "/var/cache/inferfleet-lab/rootfs-x", "/run/k/id_ed25519",
                        data_dir=tmp_path)


def test_new_state_names_everything_down_needs(doc, tmp_path):
    assert doc["subnet"] == "10.213.7.0/24" and doc["bridge"] == "ilab7"
    assert [n["hostname"] for n in doc["nodes"]] == ["mol-lab-node1", "mol-lab-node2", "mol-lab-node3"]
    n3 = doc["nodes"][2]
    assert n3 == {**n3, "netns": "inferlab-mol-lab-node3", "veth": "il7n3", "ip": "10.213.7.13",
                  "dir": str(tmp_path / "mol-lab" / "node3"), "cgroup": "inferlab/mol-lab-node3",
                  "pid": None, "loop": None}


def test_state_round_trips_through_disk(doc, tmp_path):
    doc["nodes"][0]["pid"] = 4242
    st.save(doc, run_dir=tmp_path)
    assert st.load("mol-lab", run_dir=tmp_path) == doc
    assert st.lab_names(tmp_path) == ["mol-lab"]
    assert st.used_indexes(tmp_path) == {7}
    assert st.used_indexes(tmp_path, exclude="mol-lab") == set()


@pytest.mark.parametrize("text,why", [
    ("not json", "not JSON"),
    ("[]", "must be an object"),
    ('{"version": 99}', "version must be 1"),
    ('{"version": 1, "name": "x", "subnet_index": "7", "bridge": "b", "nodes": []}', "'subnet_index' must be int"),
    ('{"version": 1, "name": "x", "subnet_index": 7, "bridge": "b", "nodes": [{"index": 1}]}', "'hostname' must be str"),
])
def test_bad_state_is_rejected_with_a_reason(text, why):
    with pytest.raises(st.StateError, match=why):
        st.parse_state(text)


def test_bad_pid_type_is_rejected(doc):
    doc["nodes"][1]["pid"] = "12"
    with pytest.raises(st.StateError, match="'pid' must be int or null"):
        st.parse_state(json.dumps(doc))


def test_unreadable_state_loads_as_none(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "state.json").write_text("{")
    assert st.load("broken", run_dir=tmp_path) is None
    assert st.lab_names(tmp_path) == ["broken"]  # still listed, so `status` can tell about it
    assert st.used_indexes(tmp_path) == set()


def test_atomic_write_leaves_no_temp_files(tmp_path):
    st.write_atomic(tmp_path / "a" / "f.yml", "x: 1\n")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.yml"]


def test_inventory_groups_and_hostvars(doc):
    doc["nodes"][1]["loop"] = "/dev/loop5"
    inv = yaml.safe_load(inventory.dump(doc))
    children = inv["all"]["children"]
    assert list(children["lab_nodes"]["hosts"]) == ["mol-lab-node1", "mol-lab-node2", "mol-lab-node3"]
    assert list(children["gpu_hosts"]["hosts"]) == list(children["lab_nodes"]["hosts"])
    assert list(children["gateways"]["hosts"]) == ["mol-lab-node1"]
    assert list(children["monitoring"]["hosts"]) == ["mol-lab-node1"]
    h1 = children["lab_nodes"]["hosts"]["mol-lab-node1"]
    assert h1 == {"ansible_host": "10.213.7.11", "ansible_user": "root",
                  "ansible_ssh_private_key_file": "/run/k/id_ed25519",
                  "ansible_python_interpreter": "/usr/bin/python3", "lab_kind": "nspawn",
                  "lab_name": "mol-lab"}
    assert children["lab_nodes"]["hosts"]["mol-lab-node2"]["lab_data_disk"] == "/dev/loop5"
    assert "StrictHostKeyChecking=no" in inv["all"]["vars"]["ansible_ssh_common_args"]
    assert inv["all"]["vars"]["lab_gateway"] == "10.213.7.1"
    assert inv["all"]["vars"]["lab_subnet"] == "10.213.7.0/24"


def test_inventory_is_what_ansible_reads(doc, tmp_path):
    """ansible-inventory itself parses the file and sees the hosts and groups."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    exe = Path(sys.executable).with_name("ansible-inventory")
    if not exe.exists():
        exe = shutil.which("ansible-inventory")
    if not exe:
        pytest.skip("ansible-inventory not installed")
    path = tmp_path / "inventory.yml"
    path.write_text(inventory.dump(doc))
    out = subprocess.run([str(exe), "-i", str(path), "--list"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert sorted(data["gpu_hosts"]["hosts"]) == ["mol-lab-node1", "mol-lab-node2", "mol-lab-node3"]
    assert data["_meta"]["hostvars"]["mol-lab-node3"]["ansible_host"] == "10.213.7.13"
