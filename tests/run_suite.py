"""Run every test stage of the collection and print one summary line.

Stages: ``lint`` (ansible-lint, production profile), ``changelog``
(``antsibull-changelog lint``: every fragment well-formed), ``sanity``
(ansible-test sanity from the ansible_collections/inferfleet/gpu link),
``unit`` (pytest on ``tests/unit``: modules, module_utils, filters and the lab
in-process; each test counts), ``integration`` (pytest on ``tests/integration``:
tests that run ``ansible``/``ansible-playbook`` on this machine; each test
counts) and one stage per molecule scenario under
``extensions/molecule/`` (each scenario counts as one test).

A scenario that tunes the machine running it (``kernel``) runs only with
``INFERFLEET_TEST_TUNE_THIS_HOST=1`` and is otherwise reported as skipped.

The last line is ``N passed, N failed[, N skipped]`` and the exit code is non-zero when
anything failed.  ``--only`` / ``--skip`` take stage names (``molecule``
selects every scenario, ``molecule:NAME`` one of them).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLL = ROOT / ".build" / "ansible_collections" / "inferfleet" / "gpu"
# The scenarios `make test` runs, in this order (cheap first).  A scenario
# joins this list once it passes on a fresh machine; one that exists but is
# not listed is reported as such, so it is never silently left out.
SCENARIOS = ["kernel", "lab", "nvidia_driver", "vllm", "vm"]
# Scenarios that change the machine running the suite (its kernel settings, swap,
# /etc/fstab) run only when this variable is "1" (`.ci/run` sets it on its
# disposable machine); otherwise they are reported as skipped, never as passed.
TUNE_THIS_HOST = "INFERFLEET_TEST_TUNE_THIS_HOST"
TUNES_THIS_HOST = {"kernel": "swapoff, /etc/fstab, sysctl, THP and a loop device on this machine"}


def scenarios() -> list[str]:
    found = {p.parent.name for p in (ROOT / "extensions" / "molecule").glob("*/molecule.yml")}
    for name in sorted(found - set(SCENARIOS)):
        print(f"note: molecule scenario {name!r} exists but is not in the suite (tests/run_suite.py SCENARIOS)")
    missing = [s for s in SCENARIOS if s not in found]
    if missing:
        raise SystemExit(f"run_suite: scenarios listed but not found: {missing}")
    return list(SCENARIOS)


def pytest_stage(name: str) -> list[str]:
    """pytest on ``tests/NAME`` with its results in ``tests/output/NAME.xml``."""
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--junitxml", str(ROOT / "tests" / "output" / f"{name}.xml"), f"tests/{name}"]


def stages() -> list[tuple[str, list[str], Path]]:
    venv_bin = Path(sys.executable).parent
    out: list[tuple[str, list[str], Path]] = [
        ("lint", [str(venv_bin / "ansible-lint"), "--profile", "production", "--offline"], ROOT),
        ("changelog", [str(venv_bin / "antsibull-changelog"), "lint"], ROOT),
        ("sanity", [sys.executable, str(ROOT / "tests" / "sanity.py")], COLL),
        ("unit", pytest_stage("unit"), ROOT),
        ("integration", pytest_stage("integration"), ROOT),
    ]
    for name in scenarios():
        out.append((f"molecule:{name}", [str(venv_bin / "molecule"), "test", "-s", name], ROOT))
    return out


def selected(name: str, only: list[str], skip: list[str]) -> bool:
    def match(sel: str) -> bool:
        return name == sel or name.startswith(sel + ":")
    if only and not any(match(s) for s in only):
        return False
    return not any(match(s) for s in skip)


def junit_counts(path: Path) -> tuple[int, int, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return tests - failed - skipped, failed, skipped


def mitogen_strategy_plugins() -> str:
    """ansible_mitogen's strategy directory in this venv ('' when mitogen is not installed)."""
    try:
        import ansible_mitogen  # noqa: PLC0415  (optional)
    except ImportError:
        return ""
    return str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy")


def skip_reason(name: str, env: dict) -> str | None:
    """Why a stage does not run here, or None."""
    scenario = name.removeprefix("molecule:")
    if name.startswith("molecule:") and scenario in TUNES_THIS_HOST and env.get(TUNE_THIS_HOST) != "1":
        return (f"it tunes the machine running it ({TUNES_THIS_HOST[scenario]}); "
                f"set {TUNE_THIS_HOST}=1 to run it on a disposable machine")
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[], help="run only this stage (repeatable)")
    ap.add_argument("--skip", action="append", default=[], help="skip this stage (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the stages and exit")
    args = ap.parse_args()

    todo = [s for s in stages() if selected(s[0], args.only, args.skip)]
    if args.list:
        print("\n".join(s[0] for s in todo))
        return 0
    (ROOT / "tests" / "output").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build"))
    # molecule and ansible-lint call ansible-config, ansible-playbook, ... by name.
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    env.setdefault("NO_COLOR", "1")
    env.setdefault("PY_COLORS", "0")
    # The vm scenario's strategy (mitogen_linear) comes from the installed package.
    env.setdefault("INFERFLEET_MITOGEN_STRATEGY_PLUGINS", mitogen_strategy_plugins())

    passed = failed = skipped = 0
    rows = []
    for name, cmd, cwd in todo:
        why = skip_reason(name, env)
        if why:
            skipped += 1
            rows.append((name, "SKIPPED", 0.0))
            print(f"\n===== stage {name}: SKIPPED: {why}", flush=True)
            continue
        print(f"\n===== stage {name}: {' '.join(cmd)}", flush=True)
        junit = ROOT / "tests" / "output" / f"{name}.xml"
        junit.unlink(missing_ok=True)  # a stale report must not count for this run
        t0 = time.monotonic()
        rc = subprocess.call(cmd, cwd=cwd, env=env)
        secs = time.monotonic() - t0
        if name in ("unit", "integration") and junit.exists():
            p, f, s = junit_counts(junit)
            if rc != 0 and f == 0:
                f = 1  # pytest failed before or outside a test (collection error, no tests)
            passed, failed, skipped = passed + p, failed + f, skipped + s
            result = f"{p} passed, {f} failed, {s} skipped"
        else:
            ok = rc == 0
            passed += ok
            failed += not ok
            result = "passed" if ok else f"FAILED (exit {rc})"
        rows.append((name, result, secs))
        print(f"===== stage {name}: {result} in {secs:.0f}s", flush=True)

    print("\nSummary:")
    for name, result, secs in rows:
        print(f"  {name:<24} {result:<36} {secs:7.0f}s")
    tail = f"{passed} passed, {failed} failed"
    if skipped:
        tail += f", {skipped} skipped"
    print(tail)
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
