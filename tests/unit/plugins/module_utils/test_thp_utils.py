"""Parsers and renderers of module_utils.thp."""
from hypothesis import given, strategies as st

from ansible_collections.inferfleet.gpu.plugins.module_utils import thp


@given(values=st.fixed_dictionaries({}, optional={
    "enabled": st.sampled_from(thp.ENABLED_MODES),
    "defrag": st.sampled_from(thp.DEFRAG_MODES),
    "khugepaged_defrag": st.sampled_from(["0", "1"])}))
def test_tmpfiles_round_trip(values):
    assert thp.parse_tmpfiles(thp.render_tmpfiles(values, ["header"])) == values


def test_parse_tmpfiles_ignores_other_lines():
    text = "# c\nw /sys/kernel/mm/transparent_hugepage/enabled - - - - never\nd /run/x 0755 root root -\n" \
           "w /sys/other - - - - 1\n"
    assert thp.parse_tmpfiles(text) == {"enabled": "never"}


def test_grub_cmdline_set_and_read():
    text = 'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\nGRUB_CMDLINE_LINUX=""\n'
    assert thp.grub_cmdline_value(text) is None
    new = thp.set_grub_cmdline(text, "always")
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash transparent_hugepage=always"' in new
    assert thp.grub_cmdline_value(new) == "always"
    newer = thp.set_grub_cmdline(new, "never")
    assert newer.count("transparent_hugepage=") == 1
    assert thp.grub_cmdline_value(newer) == "never"
    assert thp.set_grub_cmdline("", "always") == 'GRUB_CMDLINE_LINUX_DEFAULT="transparent_hugepage=always"\n'
