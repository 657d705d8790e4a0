"""The kernel-interface layer of module_utils.sysfs: reads, choice files, writes."""
from hypothesis import given, strategies as st

from ansible_collections.inferfleet.gpu.plugins.module_utils import sysfs

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz+-", min_size=1, max_size=12)


def test_parse_choice_real_kernel_text():
    assert sysfs.parse_choice("always [madvise] never\n") == ("madvise", ["always", "madvise", "never"])
    assert sysfs.parse_choice("always defer defer+madvise [madvise] never") == (
        "madvise", ["always", "defer", "defer+madvise", "madvise", "never"])
    assert sysfs.parse_choice("1\n") == ("1", None)
    assert sysfs.parse_choice("") == (None, None)


@given(words=st.lists(WORD, min_size=1, max_size=6, unique=True), data=st.data())
def test_parse_choice_round_trip(words, data):
    index = data.draw(st.integers(min_value=0, max_value=len(words) - 1))
    text = " ".join("[%s]" % w if i == index else w for i, w in enumerate(words))
    assert sysfs.parse_choice(text) == (words[index], words)


def test_read_choice_on_a_tree(tmp_path):
    queue = tmp_path / "sys/block/vda/queue"
    queue.mkdir(parents=True)
    (queue / "scheduler").write_text("[mq-deadline] none\n")
    (queue / "one").write_text("none\n")
    assert sysfs.read_choice(str(queue / "scheduler")) == ("mq-deadline", ["mq-deadline", "none"])
    assert sysfs.read_choice(str(queue / "one")) == ("none", ["none"])
    assert sysfs.read_choice(str(queue / "missing")) == (None, [])


def test_read_strips_nul_and_reads_procfs_to_the_end(tmp_path):
    (tmp_path / "proc").mkdir()
    big = "x" * 70000 + "\n"
    (tmp_path / "proc/big").write_text(big)
    (tmp_path / "proc/nul").write_bytes(b"a\x00b\n")
    assert sysfs.read(sysfs.under_root(str(tmp_path), "/proc/big")) == big.strip()
    assert sysfs.read(str(tmp_path / "proc/nul")) == "ab"
    assert sysfs.read(str(tmp_path / "proc/none")) is None
    assert sysfs.read_int(str(tmp_path / "proc/nul")) is None
    (tmp_path / "proc/hex").write_text("0x10\n")
    assert sysfs.read_int(str(tmp_path / "proc/hex")) == 16
    assert sysfs.listdir(str(tmp_path / "nothing")) == []


def test_write_value_and_read_text(tmp_path):
    path = tmp_path / "attr"
    sysfs.write_value(str(path), 5)
    assert sysfs.read_text(str(path)) == "5"
    assert sysfs.read_text(str(tmp_path / "absent")) is None
