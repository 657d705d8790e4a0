"""Unit tests of inferfleet.gpu.managed_files on trees in tmp_path."""
import os
import stat

from ansible_collections.inferfleet.gpu.plugins.modules import managed_files
from helpers import run_module

SYSTEMD = "/etc/systemd/system"
SLICE = SYSTEMD + "/inferfleet.slice"
DROPIN = SYSTEMD + "/system.slice.d/60-cpus.conf"
UNIT = SYSTEMD + "/irq.service"
LINK = SYSTEMD + "/sysinit.target.wants/irq.service"


def args(**over):
    base = dict(
        directories=[SYSTEMD, SYSTEMD + "/system.slice.d", SYSTEMD + "/sysinit.target.wants"],
        files=[dict(path=SLICE, content="[Slice]\n"),
               dict(path=DROPIN, content="[Slice]\nAllowedCPUs=0\n"),
               dict(path=UNIT, content="[Service]\n", mode="0640")],
        links=[dict(src=UNIT, dest=LINK)],
    )
    base.update(over)
    return base


def run(tmp_path, capsys, check=False, diff=False, **kw):
    kw.setdefault("root", str(tmp_path / "root"))
    return run_module(managed_files, tmp_path, capsys, check=check, diff=diff, **kw)


def real(tmp_path, path):
    return tmp_path / "root" / path.lstrip("/")


def test_first_run_writes_everything(tmp_path, capsys):
    res = run(tmp_path, capsys, **args())
    assert res["changed"] is True
    assert res["changed_directories"] == [SYSTEMD, SYSTEMD + "/system.slice.d", SYSTEMD + "/sysinit.target.wants"]
    assert res["changed_files"] == [SLICE, DROPIN, UNIT]
    assert res["changed_links"] == [LINK]
    assert res["changed_paths"] == res["changed_directories"] + res["changed_files"] + res["changed_links"]
    assert real(tmp_path, DROPIN).read_text() == "[Slice]\nAllowedCPUs=0\n"
    assert stat.S_IMODE(real(tmp_path, UNIT).stat().st_mode) == 0o640
    assert stat.S_IMODE(real(tmp_path, SLICE).stat().st_mode) == 0o644
    assert os.readlink(real(tmp_path, LINK)) == UNIT
    # no temporary file left behind
    assert sorted(p.name for p in real(tmp_path, SYSTEMD).iterdir()) == [
        "inferfleet.slice", "irq.service", "sysinit.target.wants", "system.slice.d"]


def test_second_run_changes_nothing(tmp_path, capsys):
    run(tmp_path, capsys, **args())
    before = real(tmp_path, SLICE).stat().st_mtime_ns
    res = run(tmp_path, capsys, diff=True, **args())
    assert res["changed"] is False
    assert res["changed_paths"] == []
    assert res["diff"] == []
    assert real(tmp_path, SLICE).stat().st_mtime_ns == before


def test_drift_is_repaired_and_shown(tmp_path, capsys):
    run(tmp_path, capsys, **args())
    real(tmp_path, DROPIN).write_text("[Slice]\nAllowedCPUs=0-3\n")
    os.chmod(real(tmp_path, UNIT), 0o644)
    os.unlink(real(tmp_path, LINK))
    os.symlink("/elsewhere", real(tmp_path, LINK))
    res = run(tmp_path, capsys, diff=True, **args())
    assert res["changed_files"] == [DROPIN, UNIT]
    assert res["changed_links"] == [LINK]
    diffs = {d["before_header"].split()[0]: d for d in res["diff"]}
    assert diffs[DROPIN]["before"] == "[Slice]\nAllowedCPUs=0-3\n"
    assert diffs[DROPIN]["after"] == "[Slice]\nAllowedCPUs=0\n"
    assert "(mode 0644)" in diffs[UNIT]["before_header"] and "(mode 0640)" in diffs[UNIT]["after_header"]
    assert diffs[LINK]["before"] == "link to /elsewhere\n"
    assert real(tmp_path, DROPIN).read_text() == "[Slice]\nAllowedCPUs=0\n"
    assert stat.S_IMODE(real(tmp_path, UNIT).stat().st_mode) == 0o640
    assert os.readlink(real(tmp_path, LINK)) == UNIT


def test_check_mode_predicts_and_writes_nothing(tmp_path, capsys):
    res = run(tmp_path, capsys, check=True, diff=True, **args())
    assert res["changed"] is True
    assert res["changed_files"] == [SLICE, DROPIN, UNIT]
    assert res["changed_links"] == [LINK]
    assert len(res["diff"]) == 7
    assert not (tmp_path / "root").exists()


def test_check_mode_on_drift_writes_nothing(tmp_path, capsys):
    run(tmp_path, capsys, **args())
    real(tmp_path, DROPIN).write_text("drifted\n")
    res = run(tmp_path, capsys, check=True, **args())
    assert res["changed_files"] == [DROPIN]
    assert real(tmp_path, DROPIN).read_text() == "drifted\n"


def test_bad_input_fails_before_anything_changes(tmp_path, capsys):
    res = run(tmp_path, capsys, **args(files=[dict(path=SLICE, content="x", mode="0999")]))
    assert res["failed"] is True
    assert "files[].mode of %s must be an octal mode" % SLICE in res["msg"] and "'0999'" in res["msg"]
    assert not (tmp_path / "root").exists()
    res = run(tmp_path, capsys, **args(files=[dict(path="relative/x", content="x")]))
    assert res["failed"] is True and "files[].path must be absolute paths, got 'relative/x'" in res["msg"]
    res = run(tmp_path, capsys, **args(files=[dict(path=SLICE, content="a"), dict(path=SLICE, content="b")]))
    assert res["failed"] is True and "names %s twice" % SLICE in res["msg"]
    assert not (tmp_path / "root").exists()


def test_missing_directory_and_wrong_kinds_fail(tmp_path, capsys):
    res = run(tmp_path, capsys, directories=[], files=[dict(path=SLICE, content="x")])
    assert res["failed"] is True and "the directory of %s does not exist" % SLICE in res["msg"]
    real(tmp_path, LINK).parent.mkdir(parents=True)
    real(tmp_path, LINK).write_text("a file\n")
    res = run(tmp_path, capsys, directories=[], links=[dict(src=UNIT, dest=LINK)])
    assert res["failed"] is True and "%s exists and is not a symlink" % LINK in res["msg"]
    assert real(tmp_path, LINK).read_text() == "a file\n"
