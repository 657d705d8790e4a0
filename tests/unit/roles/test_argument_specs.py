"""Every role's ``meta/argument_specs.yml`` mirrors its ``defaults/main.yml``.

A default with no spec is unvalidated input; a spec with no default (and not
``required``) is a variable the role reads but never defines.  Both are bugs.
Also: every public variable carries the role's prefix, private ones ``__<role>_``.
"""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(p for p in (ROOT / "roles").glob("*") if (p / "tasks" / "main.yml").exists())


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {} if path.exists() else {}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_argument_specs(role: Path) -> None:
    specs = _load(role / "meta" / "argument_specs.yml").get("argument_specs", {})
    assert "main" in specs, f"{role.name}: meta/argument_specs.yml has no 'main' entry point"
    for entry, spec in specs.items():
        assert spec.get("short_description"), f"{role.name}:{entry} needs a short_description"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_match_argument_specs(role: Path) -> None:
    defaults = _load(role / "defaults" / "main.yml")
    options = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get("options", {})
    undocumented = sorted(set(defaults) - set(options))
    assert not undocumented, f"{role.name}: defaults without an argument spec: {undocumented}"
    missing = sorted(k for k, v in options.items() if k not in defaults and not v.get("required"))
    assert not missing, f"{role.name}: specs that are neither required nor defaulted: {missing}"
    for key, spec in options.items():
        assert spec.get("description"), f"{role.name}: option {key} has no description"
        assert spec.get("type"), f"{role.name}: option {key} has no type"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_variables_are_prefixed(role: Path) -> None:
    defaults = _load(role / "defaults" / "main.yml")
    bad = sorted(k for k in defaults if not k.startswith(f"{role.name}_"))
    assert not bad, f"{role.name}: defaults must start with '{role.name}_': {bad}"
    for vars_file in (role / "vars").glob("*.yml"):
        for key in _load(vars_file):
            assert key.startswith(f"__{role.name}_"), f"{vars_file}: private vars are '__{role.name}_*', got {key}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_readme(role: Path) -> None:
    assert (role / "README.md").is_file(), f"{role.name}: README.md missing"
