"""What both lab back ends share: the apt mirror, the name rule, recipe hashes, SSH, mounts."""
import pytest

from lab import apt, mounts, names, recipe, ssh
from lab.nspawn import image as nspawn_image, net
from lab.vm import base, image as vm_image, machine


def _apt(tmp_path, sources=None, lists=None, main=None):
    d = tmp_path / "etc" / "apt" / "sources.list.d"
    d.mkdir(parents=True)
    for fname, text in (sources or {}).items():
        (d / fname).write_text(text)
    for fname, text in (lists or {}).items():
        (d / fname).write_text(text)
    if main is not None:
        (tmp_path / "etc" / "apt" / "sources.list").write_text(main)
    return tmp_path


def test_mirror_from_deb822_skips_security_and_disabled(tmp_path):
    root = _apt(tmp_path, sources={"debian.sources": (
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n")})
    assert apt.debian_mirror(root) == "http://mirror.example/debian"


def test_mirror_from_one_line_list_with_options(tmp_path):
    root = _apt(tmp_path, main=(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://one.example/debian bookworm main\n"))
    assert apt.debian_mirror(root) == "http://one.example/debian"


def test_mirror_ignores_other_suites_and_deb_src(tmp_path):
    root = _apt(tmp_path, main="deb-src http://src.example/debian bookworm main\n"
                               "deb http://old.example/debian bullseye main\n")
    assert apt.debian_mirror(root) == apt.DEFAULT_MIRROR


def test_mirror_falls_back_without_apt(tmp_path):
    assert apt.debian_mirror(tmp_path) == apt.DEFAULT_MIRROR


def test_mirror_from_one_line_sources_without_suite_match_falls_back(tmp_path):
    root = _apt(tmp_path, main="deb http://m.example/debian trixie main\n")
    assert apt.debian_mirror(root) == apt.DEFAULT_MIRROR
    assert apt.debian_mirror(root, suite="trixie") == "http://m.example/debian"


def test_both_images_read_the_same_mirror(monkeypatch):
    monkeypatch.setattr(apt, "debian_mirror", lambda *a, **k: "http://same.example/debian")
    assert nspawn_image.recipe()["mirror"] == "http://same.example/debian"
    assert nspawn_image.recipe()["suite"] == vm_image.RECIPE["suite"] == apt.SUITE


@pytest.mark.parametrize("name", ["a", "mol-lab", "x" * 23])
def test_one_name_rule_both_back_ends_accept(name):
    assert net.check_name(name) == name and machine.check_name(name) == name


@pytest.mark.parametrize("name,nspawn_ok,vm_ok", [
    ("x" * 24, False, True), ("x" * 31, False, True), ("x" * 32, False, False),
    ("lab-vm", False, True), ("lab-", False, False), ("Lab", False, False), ("1lab", False, False),
])
def test_what_differs_is_the_length_and_the_vm_suffix(name, nspawn_ok, vm_ok):
    for check, ok, error in ((net.check_name, nspawn_ok, ValueError), (machine.check_name, vm_ok, base.LabVMError)):
        if ok:
            assert check(name) == name
        else:
            with pytest.raises(error, match="--name %r is not allowed" % name):
                check(name)


def test_recipe_digest_ignores_key_order_and_keeps_each_back_ends_length():
    assert recipe.digest({"a": 1, "b": [2]}, 12) == recipe.digest({"b": [2], "a": 1}, 12)
    assert len(vm_image.recipe_hash()) == 12
    assert len(nspawn_image.recipe_hash(nspawn_image.recipe("http://x/debian"))) == 16
    assert names.NAME_RE.fullmatch("a-b") and names.NAME_RE.fullmatch("a\n") is None


def test_ssh_command_with_and_without_port():
    plain = ssh.command("/k", "10.0.0.1", "true")
    assert plain[:3] == ["ssh", "-i", "/k"] and plain[-2:] == ["root@10.0.0.1", "true"] and "-p" not in plain
    ported = ssh.command("/k", "127.0.0.1", port=2222)
    assert ported[ported.index("-p") + 1] == "2222" and ported[-1] == "root@127.0.0.1"
    assert "StrictHostKeyChecking=no" in ssh.ANSIBLE_SSH_ARGS and ssh.ANSIBLE_SSH_ARGS.startswith(ssh.ANSIBLE_SSH_ARGS_BASE)


def test_mounts_under_a_tree(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text("22 1 254:0 / / rw - ext4 /dev/vda rw\n"
                  "30 22 0:5 / /srv/a rw - tmpfs t rw\n31 30 0:6 / /srv/a/b rw - tmpfs t rw\n"
                  "32 22 0:7 / /srv/ab rw - tmpfs t rw\n")
    assert mounts.mounts_under("/srv/a", str(mi)) == ["/srv/a/b", "/srv/a"]
    assert mounts.is_mountpoint("/srv/ab", str(mi)) and not mounts.is_mountpoint("/srv", str(mi))
