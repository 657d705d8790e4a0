"""The recipe hash that keys the image cache, and the mirror lookup."""
import json

from lab.nspawn import image


def test_hash_is_stable_and_order_insensitive():
    rec = image.recipe("http://deb.debian.org/debian")
    shuffled = dict(reversed(list(rec.items())))
    shuffled["packages"] = list(reversed(rec["packages"]))
    assert image.recipe_hash(rec) == image.recipe_hash(shuffled)
    assert len(image.recipe_hash(rec)) == 16


def test_hash_changes_with_what_goes_into_the_tree():
    rec = image.recipe("http://deb.debian.org/debian")
    base = image.recipe_hash(rec)
    assert image.recipe_hash({**rec, "packages": rec["packages"] + ["curl"]}) != base
    assert image.recipe_hash({**rec, "mirror": "http://other/debian"}) != base
    assert image.recipe_hash({**rec, "post_version": rec["post_version"] + 1}) != base


def test_recipe_carries_the_packages_the_playbooks_need():
    rec = image.recipe("http://x/debian")
    for pkg in ("systemd", "dbus", "openssh-server", "python3", "python3-venv", "python3-packaging",
                "python3-apt", "xfsprogs", "iproute2", "kmod", "procps", "udev"):
        assert pkg in rec["packages"]
    assert rec["suite"] == "bookworm"


def test_rootfs_path_is_keyed_by_hash(tmp_path):
    rec = image.recipe("http://x/debian")
    assert image.rootfs_path(rec, tmp_path) == tmp_path / f"rootfs-{image.recipe_hash(rec)}"


def test_post_build_masks_units_and_resets_machine_id(tmp_path):
    tree = tmp_path / "t"
    for d in ("etc/systemd/system", "etc/ssh", "root", "var/lib/dbus"):
        (tree / d).mkdir(parents=True)
    (tree / "etc" / "machine-id").write_text("abc\n")
    (tree / "var" / "lib" / "dbus" / "machine-id").write_text("abc\n")
    rec = image.recipe("http://x/debian")
    image._post_build(tree, rec)
    for unit in rec["masked"]:
        assert (tree / "etc/systemd/system" / unit).readlink().as_posix() == "/dev/null"
    assert (tree / "etc/machine-id").read_text() == ""
    assert not (tree / "var/lib/dbus/machine-id").exists()
    assert "PermitRootLogin prohibit-password" in (tree / "etc/ssh/sshd_config.d/inferlab.conf").read_text()
    assert json.loads((tree / "etc/inferlab-image").read_text()) == rec


def test_prune_keeps_the_current_and_in_use_trees(tmp_path):
    for name in ("rootfs-aaa", "rootfs-bbb", "rootfs-ccc", "vm-xyz"):
        (tmp_path / name / "etc").mkdir(parents=True)
    (tmp_path / "rootfs-aaa.build.log").write_text("log")
    removed = image.prune(tmp_path / "rootfs-aaa", tmp_path, keep_also={tmp_path / "rootfs-ccc"})
    assert removed == [tmp_path / "rootfs-bbb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs-aaa", "rootfs-aaa.build.log",
                                                          "rootfs-ccc", "vm-xyz"]
