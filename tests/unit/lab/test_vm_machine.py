"""Unit tests of the pure parts of the lab VM tool (lab/vm/machine.py, lab/vm/image.py).

The VM itself is exercised for real by the molecule scenario ``vm``; here the
command line, the accelerator choice, the port, the inventory, the recipe hash
and the state handling are tested on real trees in ``tmp_path``.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab import inventory  # noqa: E402  (after the sys.path fix above)
from lab.vm import base, image as vm_image, machine as vm  # noqa: E402


# ----------------------------------------------------------------- recipe hash

def test_recipe_hash_is_stable_and_short():
    assert vm_image.recipe_hash() == vm_image.recipe_hash(dict(vm_image.RECIPE))
    assert len(vm_image.recipe_hash()) == 12
    int(vm_image.recipe_hash(), 16)


def test_recipe_hash_ignores_key_order():
    reordered = dict(reversed(list(vm_image.RECIPE.items())))
    assert vm_image.recipe_hash(reordered) == vm_image.recipe_hash(vm_image.RECIPE)


@pytest.mark.parametrize("change", [
    lambda r: r.update(packages=r["packages"] + ["less"]),
    lambda r: r.update(image_size="4G"),
    lambda r: r["files"].update({"etc/hostname": "other\n"}),
    lambda r: r.update(mask=r["mask"][1:]),
])
def test_recipe_hash_changes_with_the_recipe(change):
    import copy
    rec = copy.deepcopy(vm_image.RECIPE)
    change(rec)
    assert vm_image.recipe_hash(rec) != vm_image.recipe_hash(vm_image.RECIPE)


def test_cache_and_state_dirs(tmp_path):
    assert vm_image.cache_dir(cache_root=tmp_path) == tmp_path / f"vm-{vm_image.recipe_hash()}"
    assert vm.state_dir("mol", state_root=tmp_path) == tmp_path / "mol-vm"


def test_recipe_has_what_the_scenarios_need():
    pk = set(vm_image.RECIPE["packages"])
    for needed in ("systemd", "openssh-server", "python3", "python3-apt", "xfsprogs",
                   "initramfs-tools", "linux-image-amd64", "udev", "kmod", "iproute2", "sudo"):
        assert needed in pk
    assert "virtio_blk" in vm_image.RECIPE["files"]["etc/initramfs-tools/modules"]
    assert "virtio_net" in vm_image.RECIPE["files"]["etc/initramfs-tools/modules"]
    assert "DHCP=ipv4" in vm_image.RECIPE["files"]["etc/systemd/network/20-virtio-dhcp.network"]


# ----------------------------------------------------------------- input checks

@pytest.mark.parametrize("name", ["mol", "a", "mol-vm2", "x" * 31])
def test_check_name_accepts(name):
    assert vm.check_name(name) == name


@pytest.mark.parametrize("name", ["", "Mol", "1abc", "a b", "a/b", "../x", "x" * 32, "a_b"])
def test_check_name_refuses_and_names_the_value(name):
    with pytest.raises(vm.LabVMError, match="--name"):
        vm.check_name(name)


@given(st.text(max_size=40))
def test_check_name_never_lets_a_path_through(name):
    try:
        vm.check_name(name)
    except vm.LabVMError:
        return
    assert "/" not in name and ".." not in name and name == name.strip()


@pytest.mark.parametrize("size", ["2G", "512M", "1", "10T"])
def test_check_size_accepts(size):
    assert vm.check_size(size) == size


@pytest.mark.parametrize("size", ["", "0", "2g", "2GB", "-1G", "1.5G", "G"])
def test_check_size_refuses(size):
    with pytest.raises(vm.LabVMError, match="--disk-size"):
        vm.check_size(size)


# ----------------------------------------------------------------- accelerator

def _sys(tmp_path, modules):
    for m in modules:
        (tmp_path / "sys" / "module" / m).mkdir(parents=True)
    dev = tmp_path / "kvm"
    dev.write_text("")
    return tmp_path, dev


def test_accel_auto_refuses_kvm_pvm(tmp_path):
    root, dev = _sys(tmp_path, ["kvm", "kvm_pvm", "kvm_intel"])
    accel, reason = vm.choose_accel("auto", root, dev)
    assert accel == "tcg" and "kvm_pvm" in reason


def test_accel_kvm_explicitly_refused_under_kvm_pvm(tmp_path):
    root, dev = _sys(tmp_path, ["kvm", "kvm_pvm"])
    with pytest.raises(vm.LabVMError, match="kvm_pvm"):
        vm.choose_accel("kvm", root, dev)


def test_accel_auto_takes_hardware_kvm(tmp_path):
    root, dev = _sys(tmp_path, ["kvm", "kvm_amd"])
    assert vm.choose_accel("auto", root, dev)[0] == "kvm"
    assert vm.choose_accel("kvm", root, dev)[0] == "kvm"


def test_accel_auto_without_kvm_device_is_tcg(tmp_path):
    root = _sys(tmp_path, ["kvm", "kvm_intel"])[0]
    assert vm.choose_accel("auto", root, tmp_path / "no-such-kvm")[0] == "tcg"
    with pytest.raises(vm.LabVMError):
        vm.choose_accel("kvm", root, tmp_path / "no-such-kvm")


def test_accel_tcg_always_and_bad_value(tmp_path):
    root, dev = _sys(tmp_path, ["kvm", "kvm_intel"])
    assert vm.choose_accel("tcg", root, dev)[0] == "tcg"
    with pytest.raises(vm.LabVMError, match="auto, kvm or tcg"):
        vm.choose_accel("hvf", root, dev)


# ----------------------------------------------------------------- port

def test_free_port_is_bindable_on_loopback():
    port = vm.free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_free_port_skips_a_port_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert all(vm.free_port() != taken for _attempt in range(20))


# ----------------------------------------------------------------- qemu command line

def _cmd(tmp_path, accel="tcg", **kw):
    return vm.qemu_command(name="mol", sdir=tmp_path / "s", image=tmp_path / "img", port=40022,
                           accel=accel, **kw)


def test_qemu_command_tcg(tmp_path):
    cmd = _cmd(tmp_path, memory=1024, cpus=3)
    joined = " ".join(cmd)
    assert cmd[0] == "qemu-system-x86_64"
    assert cmd[cmd.index("-accel") + 1] == "tcg,thread=multi"
    assert cmd[cmd.index("-cpu") + 1] == "max,-erms"  # rep stosb crawls after a TCG guest reboot
    assert cmd[cmd.index("-m") + 1] == "1024" and cmd[cmd.index("-smp") + 1] == "3"
    assert cmd[cmd.index("-kernel") + 1] == str(tmp_path / "img" / "vmlinuz")
    assert cmd[cmd.index("-initrd") + 1] == str(tmp_path / "img" / "initrd.img")
    append = cmd[cmd.index("-append") + 1]
    assert "root=/dev/vda" in append and "console=ttyS0" in append and " rw" in append
    assert "systemd.hostname=mol-vm" in append
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in joined and "restrict=on" in joined
    assert "-no-reboot" not in cmd, "a guest reboot must come back"
    assert "-daemonize" in cmd and cmd[cmd.index("-pidfile") + 1] == str(tmp_path / "s" / "qemu.pid")
    assert f"file:{tmp_path / 's' / 'console.log'}" in cmd


def test_qemu_command_root_disk_before_data_disk(tmp_path):
    cmd = _cmd(tmp_path)
    devices = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-device" and "virtio-blk" in cmd[i + 1]]
    assert [d.split("drive=")[1].split(",")[0] for d in devices] == ["root", "data"]  # vda, vdb
    drives = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-drive"]
    assert any("overlay.qcow2" in d and "format=qcow2" in d for d in drives)
    assert any("data.raw" in d and "format=raw" in d for d in drives)
    assert not any("base.raw" in d for d in drives), "the cached base image is never written"


def test_qemu_command_kvm(tmp_path):
    cmd = _cmd(tmp_path, accel="kvm")
    assert cmd[cmd.index("-accel") + 1] == "kvm"
    assert cmd[cmd.index("-cpu") + 1] == "host"


# ----------------------------------------------------------------- inventory

def test_inventory_renders_the_contract(tmp_path):
    text = inventory.dump_vm(name="mol", port=40022, key=tmp_path / "id_ed25519", accel="tcg", data_disk="/dev/vdb")
    inv = yaml.safe_load(text)
    children = inv["all"]["children"]
    host = children["lab_vms"]["hosts"]["mol-vm"]
    assert host["ansible_host"] == "127.0.0.1"
    assert host["ansible_port"] == 40022
    assert host["ansible_user"] == "root"
    assert host["ansible_ssh_private_key_file"] == str(tmp_path / "id_ed25519")
    assert host["ansible_python_interpreter"] == "/usr/bin/python3"
    assert host["lab_kind"] == "vm"
    assert host["lab_data_disk"] == "/dev/vdb"
    assert list(children["gpu_hosts"]["hosts"]) == ["mol-vm"]


def test_inventory_quotes_odd_paths(tmp_path):
    key = tmp_path / "a: b #c" / "key"
    inv = yaml.safe_load(inventory.dump_vm(name="x", port=1, key=key, accel="kvm", data_disk="/dev/vdb"))
    assert inv["all"]["children"]["lab_vms"]["hosts"]["x-vm"]["ansible_ssh_private_key_file"] == str(key)


def test_inventory_is_parsed_by_ansible_inventory(tmp_path):
    import json
    import shutil
    import subprocess
    exe = shutil.which("ansible-inventory") or str(Path(sys.executable).parent / "ansible-inventory")
    if not os.path.exists(exe):
        pytest.skip("ansible-inventory not installed")
    inv = tmp_path / "inventory.yml"
    inv.write_text(inventory.dump_vm(name="mol", port=40022, key=tmp_path / "k", accel="tcg", data_disk="/dev/vdb"))
    out = subprocess.run([exe, "-i", str(inv), "--list"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["gpu_hosts"]["hosts"] == ["mol-vm"]
    assert data["lab_vms"]["hosts"] == ["mol-vm"]
    assert data["_meta"]["hostvars"]["mol-vm"]["ansible_port"] == 40022


# ----------------------------------------------------------------- console and state

def test_console_tail_strips_escapes_and_keeps_the_end(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"".join(f"\x1b[0;32mline {i}\x1b[0m\r\n".encode() for i in range(100)) + b"\xff end")
    tail = vm.console_tail(log, lines=3)
    assert tail.splitlines() == ["line 98", "line 99", "\ufffd end"]
    assert vm.console_tail(tmp_path / "missing") == "(no console log)"


def test_is_our_qemu_rejects_other_processes(tmp_path):
    assert not vm._is_our_qemu(os.getpid(), tmp_path)
    assert not vm._is_our_qemu(2 ** 22 + 7, tmp_path)


def test_remove_tree_deletes_a_plain_tree(tmp_path):
    t = tmp_path / "t"
    (t / "a" / "b").mkdir(parents=True)
    (t / "a" / "b" / "f").write_text("x")
    base.remove_tree(t)
    assert not t.exists()
    base.remove_tree(t)  # idempotent


def test_down_is_idempotent_and_removes_stale_state(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(vm, "STATE_ROOT", tmp_path)
    assert vm.main(["down", "--name", "ghost"]) == 0
    stale = tmp_path / "ghost-vm"
    stale.mkdir()
    (stale / "qemu.pid").write_text(str(os.getpid()))  # a live pid that is not our qemu
    (stale / "vm.json").write_text("{}")
    assert vm.main(["down", "--name", "ghost"]) == 0
    assert not stale.exists()
    os.kill(os.getpid(), 0)  # and we did not signal the innocent process


def test_status_lists_dead_vms(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(vm, "STATE_ROOT", tmp_path)
    assert vm.main(["status"]) == 0
    assert "no lab VMs" in capsys.readouterr().out
    (tmp_path / "dead-vm").mkdir()
    (tmp_path / "dead-vm" / "vm.json").write_text('{"port": 4242, "accel": "tcg"}')
    (tmp_path / "nspawn-lab-vm").mkdir()  # an nspawn lab whose name ends in -vm: not ours
    assert vm.main(["status"]) == 1
    out = capsys.readouterr().out
    assert "dead-vm" in out and "dead" in out and "4242" in out and "nspawn-lab-vm" not in out


def test_main_refuses_bad_input_with_a_message(capsys):
    assert vm.main(["down", "--name", "../etc"]) == 1
    assert "--name '../etc'" in capsys.readouterr().err
    assert vm.main(["up", "--name", "ok", "--disk-size", "2GB"]) == 1
    assert "--disk-size '2GB'" in capsys.readouterr().err


def test_ssh_and_inventory_need_a_running_vm(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(vm, "STATE_ROOT", tmp_path)
    assert vm.main(["ssh", "--name", "none", "--", "true"]) == 1
    assert vm.main(["inventory", "--name", "none"]) == 1
    assert "not up" in capsys.readouterr().err


# ----------------------------------------------------------------- kernel arguments

@pytest.mark.parametrize("arg", ["transparent_hugepage=madvise", "quiet", "systemd.log_level=debug",
                                 "isolcpus=1,2", "a.b-c=x:y/z"])
def test_kernel_arg_accepted_and_appended(tmp_path, arg):
    assert vm.check_kernel_arg(arg) == arg
    cmd = _cmd(tmp_path, kernel_args=[arg])
    assert cmd[cmd.index("-append") + 1].endswith(" " + arg)


@pytest.mark.parametrize("arg", ["", "a b", "root=/dev/sda", "init=/bin/sh", "console=tty0", "x;reboot",
                                 "ro", "$(id)"])
def test_kernel_arg_refused(arg):
    with pytest.raises(vm.LabVMError, match="--kernel-arg"):
        vm.check_kernel_arg(arg)


def test_up_refuses_a_bad_kernel_arg_before_doing_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(vm, "STATE_ROOT", tmp_path)
    assert vm.main(["up", "--name", "k", "--kernel-arg", "init=/bin/sh"]) == 1
    assert "--kernel-arg 'init=/bin/sh'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model,ok", [("max", True), ("max,-erms", True), ("qemu64,+ssse3", True),
                                      ("max -smp 8", False), ("", False), ("max,,x", False)])
def test_cpu_model(tmp_path, monkeypatch, capsys, model, ok):
    if ok:
        cmd = _cmd(tmp_path, cpu_model=model)
        assert cmd[cmd.index("-cpu") + 1] == model
    else:
        monkeypatch.setattr(vm, "STATE_ROOT", tmp_path)
        assert vm.main(["up", "--name", "c", "--cpu-model", model]) == 1
        assert "--cpu-model" in capsys.readouterr().err
