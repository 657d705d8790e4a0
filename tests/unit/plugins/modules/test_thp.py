"""Unit tests of inferfleet.gpu.thp on THP trees built in tmp_path."""
from ansible_collections.inferfleet.gpu.plugins.modules import thp
from helpers import run_module

ENABLED = "always [madvise] never\n"
DEFRAG = "always defer defer+madvise [madvise] never\n"


def make_tree(tmp_path, enabled=ENABLED, defrag=DEFRAG, khugepaged="1\n", cmdline="quiet\n"):
    base = tmp_path / "sys/kernel/mm/transparent_hugepage"
    (base / "khugepaged").mkdir(parents=True)
    (base / "enabled").write_text(enabled)
    (base / "defrag").write_text(defrag)
    (base / "khugepaged/defrag").write_text(khugepaged)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cmdline").write_text(cmdline)
    return base


def run(tmp_path, capsys, check=False, diff=False, **args):
    args.setdefault("root", str(tmp_path))
    return run_module(thp, tmp_path, capsys, check=check, diff=diff, **args)


def test_sets_runtime_and_persists(tmp_path, capsys):
    base = make_tree(tmp_path)
    res = run(tmp_path, capsys, enabled="always", defrag="madvise", khugepaged_defrag=True)
    assert res["changed"] is True
    assert res["changed_items"] == ["runtime:enabled", "persisted:enabled", "persisted:defrag",
                                    "persisted:khugepaged_defrag"]
    assert res["runtime"]["before"] == {"enabled": "madvise", "defrag": "madvise", "khugepaged_defrag": "1"}
    assert res["runtime"]["after"]["enabled"] == "always"
    assert (base / "enabled").read_text() == "always"
    # untouched attributes are not rewritten
    assert (base / "defrag").read_text() == DEFRAG
    conf = (tmp_path / "etc/tmpfiles.d/60-inferfleet-thp.conf").read_text()
    assert "w /sys/kernel/mm/transparent_hugepage/enabled - - - - always\n" in conf
    assert "w /sys/kernel/mm/transparent_hugepage/defrag - - - - madvise\n" in conf
    assert "w /sys/kernel/mm/transparent_hugepage/khugepaged/defrag - - - - 1\n" in conf
    assert res["persisted"]["before"] == {}
    assert res["reboot_required"] is False


def test_second_run_changes_nothing(tmp_path, capsys):
    make_tree(tmp_path)
    run(tmp_path, capsys, enabled="always", defrag="madvise")
    res = run(tmp_path, capsys, enabled="always", defrag="madvise")
    assert res["changed"] is False
    assert res["changed_items"] == []


def test_check_mode_predicts_and_writes_nothing(tmp_path, capsys):
    base = make_tree(tmp_path)
    res = run(tmp_path, capsys, check=True, diff=True, enabled="never", defrag="defer")
    assert res["changed"] is True
    assert res["changed_items"] == ["runtime:enabled", "runtime:defrag", "persisted:enabled", "persisted:defrag"]
    assert res["runtime"]["after"] == {"enabled": "never", "defrag": "defer", "khugepaged_defrag": "1"}
    assert (base / "enabled").read_text() == ENABLED
    assert (base / "defrag").read_text() == DEFRAG
    assert not (tmp_path / "etc").exists()
    assert "enabled: never" in res["diff"][0]["after"]
    assert "enabled: madvise" in res["diff"][0]["before"]
    assert "defrag - - - - defer" in res["diff"][1]["after"]


def test_drift_in_persisted_file_only(tmp_path, capsys):
    make_tree(tmp_path)
    run(tmp_path, capsys, enabled="always", defrag="madvise")
    conf = tmp_path / "etc/tmpfiles.d/60-inferfleet-thp.conf"
    conf.write_text(conf.read_text().replace("enabled - - - - always", "enabled - - - - never"))
    res = run(tmp_path, capsys, enabled="always", defrag="madvise")
    assert res["changed_items"] == ["persisted:enabled"]
    assert res["persisted"]["before"]["enabled"] == "never"
    assert "enabled - - - - always" in conf.read_text()


def test_drift_in_runtime_only(tmp_path, capsys):
    base = make_tree(tmp_path)
    run(tmp_path, capsys, enabled="always", defrag="madvise")
    (base / "enabled").write_text("always madvise [never]\n")
    res = run(tmp_path, capsys, enabled="always", defrag="madvise")
    assert res["changed_items"] == ["runtime:enabled"]
    assert res["runtime"]["before"]["enabled"] == "never"


def test_refuses_mode_the_kernel_does_not_offer(tmp_path, capsys):
    base = make_tree(tmp_path, defrag="[always] madvise never\n")
    res = run(tmp_path, capsys, defrag="defer+madvise")
    assert res["failed"] is True
    assert "does not offer 'defer+madvise'" in res["msg"]
    assert "always, madvise, never" in res["msg"]
    assert (base / "defrag").read_text() == "[always] madvise never\n"
    assert not (tmp_path / "etc").exists()


def test_unknown_mode_rejected_by_argument_spec(tmp_path, capsys):
    make_tree(tmp_path)
    res = run(tmp_path, capsys, enabled="sometimes")
    assert res["failed"] is True
    assert "sometimes" in res["msg"] and "always, madvise, never" in res["msg"]


def test_runtime_false_writes_only_the_file(tmp_path, capsys):
    base = make_tree(tmp_path)
    res = run(tmp_path, capsys, enabled="always", runtime=False)
    assert res["changed_items"] == ["persisted:enabled"]
    assert (base / "enabled").read_text() == ENABLED
    assert (tmp_path / "etc/tmpfiles.d/60-inferfleet-thp.conf").exists()


def test_kernel_cmdline_needs_reboot(tmp_path, capsys):
    make_tree(tmp_path)
    grub = tmp_path / "etc/default/grub"
    grub.parent.mkdir(parents=True)
    grub.write_text('GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet transparent_hugepage=never"\n')
    res = run(tmp_path, capsys, enabled="always", kernel_cmdline=True, persist=False)
    assert res["reboot_required"] is True
    assert res["cmdline"] == {"path": str(grub), "before": "never", "after": "always", "changed": True,
                              "booted": None}
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="quiet transparent_hugepage=always"' in grub.read_text()
    assert grub.read_text().startswith("GRUB_DEFAULT=0\n")


def test_kernel_cmdline_booted_means_no_reboot(tmp_path, capsys):
    make_tree(tmp_path, enabled="[always] madvise never\n", cmdline="ro quiet transparent_hugepage=always\n")
    grub = tmp_path / "etc/default/grub"
    grub.parent.mkdir(parents=True)
    grub.write_text('GRUB_CMDLINE_LINUX_DEFAULT="quiet transparent_hugepage=always"\n')
    res = run(tmp_path, capsys, enabled="always", kernel_cmdline=True, persist=False)
    assert res["changed"] is False
    assert res["reboot_required"] is False


def test_kernel_cmdline_requires_enabled(tmp_path, capsys):
    make_tree(tmp_path)
    res = run(tmp_path, capsys, defrag="madvise", kernel_cmdline=True)
    assert res["failed"] is True and "enabled" in res["msg"]


def test_missing_thp_directory_fails_clearly(tmp_path, capsys):
    (tmp_path / "proc").mkdir()
    res = run(tmp_path, capsys, enabled="always")
    assert res["failed"] is True
    assert "does not exist" in res["msg"]
