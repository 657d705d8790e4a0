"""meta/argument_specs.yml of host_tuning mirrors defaults/main.yml, and the task files use them."""
import re
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "host_tuning"
DEFAULTS = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
OPTIONS = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]


def test_every_default_is_specified_with_the_same_default():
    assert sorted(DEFAULTS) == sorted(OPTIONS)
    for name, value in DEFAULTS.items():
        assert OPTIONS[name].get("default") == value, name


def test_every_variable_is_prefixed_and_described():
    for name, spec in OPTIONS.items():
        assert name.startswith("host_tuning_"), name
        assert spec.get("description"), name
        assert spec.get("type"), name


def test_every_part_has_a_switch_and_a_tag():
    main = (ROLE / "tasks/main.yml").read_text()
    for part in ("sysctl", "thp", "swap", "io_scheduler", "model_volume", "cpufreq", "prewarm", "cpu_partition"):
        assert "host_tuning_%s_enabled" % part in DEFAULTS
        assert "when: host_tuning_%s_enabled" % part in main
        assert "tags: [host_tuning_%s]" % part in main


def test_prewarm_is_off_by_default():
    assert DEFAULTS["host_tuning_prewarm_enabled"] is False


def test_task_files_use_only_known_public_variables():
    tags = {"host_tuning_" + p for p in ("sysctl", "thp", "swap", "io_scheduler", "model_volume", "cpufreq", "prewarm",
                                         "cpu_partition")}
    outputs = {"host_tuning_reboot_required", "host_tuning_summary", "host_tuning_cpu_partition"}
    known = set(DEFAULTS) | tags | outputs
    for path in (ROLE / "tasks").glob("*.yml"):
        used = set(re.findall(r"\bhost_tuning_[a-z_]+", path.read_text()))
        used = {u for u in used if not u.startswith("host_tuning_register")}
        assert used <= known, (path.name, sorted(used - known))


def test_validation_runs_before_any_part():
    tasks = yaml.safe_load((ROLE / "tasks/main.yml").read_text())
    names = [t.get("ansible.builtin.import_tasks") or t.get("ansible.builtin.include_tasks", {}).get("file")
             for t in tasks if "ansible.builtin.debug" not in t]
    # the CPU partition plan only reads (and fails naming the role variables) before validate.yml
    assert names[:3] == ["facts.yml", "cpu_partition_plan.yml", "validate.yml"]
    assert tasks[1].get("tags") == ["always"] and tasks[2].get("tags") == ["always"]
