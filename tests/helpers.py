"""What the tests share: the repository's paths, the Ansible environment, and
runners for a module (in-process) and for a playbook (``ansible-playbook``).

    from helpers import ROOT, ansible_env, run_module, run_playbook, write_play, write_vars

A test that runs a few tasks of its own writes them as a play and runs it::

    play = write_play(tmp_path, TASKS, vars_files=[ROLE / "defaults/main.yml", write_vars(tmp_path, overrides)])
    proc = run_playbook(play)
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
VENV_BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = VENV_BIN / "ansible-playbook"


def ansible_env(json_output=False, **extra):
    """The environment Ansible commands run with: this repository's config and collection.

    ``json_output``: results as one JSON document on stdout (the ``ansible.builtin.json``
    callback); otherwise the default callback. ``extra`` adds or overrides variables.
    """
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".build"),
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": "%s:%s" % (VENV_BIN, env.get("PATH", "")),
        "LC_ALL": "C.UTF-8",
    })
    if json_output:
        env.update({"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"})
    else:
        env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    env.update(extra)
    return env


def run_playbook(playbook, inventory="localhost,", extra_vars=None, json_output=False, cwd=None, timeout=300,
                 env=None):
    """Run ``ansible-playbook`` on a playbook file; return the CompletedProcess (never raises on failure).

    ``extra_vars``: a path to a vars file (passed as ``-e @PATH``). ``env``: extra environment.
    """
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(playbook)]
    if extra_vars:
        cmd += ["-e", "@%s" % extra_vars]
    return subprocess.run(cmd, cwd=str(cwd) if cwd else None, env=ansible_env(json_output, **(env or {})),
                          capture_output=True, text=True, timeout=timeout, check=False)


def write_vars(directory, variables, name="vars.json"):
    """``variables`` (a dict) as the JSON vars file ``directory/name``; returns its path, for a play's
    ``vars_files`` or for :func:`run_playbook`'s ``extra_vars``."""
    path = Path(directory) / name
    path.write_text(json.dumps(variables))
    return path


def write_play(directory, tasks, hosts="localhost", vars_files=(), name="play.yml"):
    """A playbook of one play, ``directory/name``: ``tasks`` (the YAML text of a task list) on ``hosts``
    with the local connection and no facts, loading ``vars_files`` in order (a later file wins).
    Returns its path."""
    play = {"hosts": hosts, "connection": "local", "gather_facts": False,
            "vars_files": [str(f) for f in vars_files], "tasks": yaml.safe_load(tasks)}
    if not play["vars_files"]:
        del play["vars_files"]
    path = Path(directory) / name
    path.write_text(yaml.safe_dump([play], sort_keys=False, width=1000))
    return path


def unit_directives(text):
    """A systemd unit's directives as ``{key: [values]}`` (systemd allows repeated keys); section
    headers and comment lines (``#``, ``;``) are left out."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _sep, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def playbook_results(proc):
    """``{task name: {host: result}}`` from the JSON output of :func:`run_playbook` (``json_output=True``)."""
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    results = {}
    for play in out["plays"]:
        for task in play["tasks"]:
            results.setdefault(task["task"]["name"], {}).update(task["hosts"])
    return results


def run_module(module, tmp_path, capsys, check=False, diff=False, **args):
    """Run a module's ``main()`` in this process with ``args``; return its JSON result."""
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    args["_ansible_remote_tmp"] = str(Path(tmp_path) / "remote_tmp")
    args["_ansible_keep_remote_files"] = False
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


HAPROXY_DEBS = ("haproxy", "liblua5.3-0", "libopentracing-c-wrapper0", "libopentracing1")


def haproxy_binary(dest):
    """Debian's haproxy unpacked into ``dest`` (``dpkg-deb -x``): nothing is installed, no service starts.

    The .deb files come from the lab's cached asset when it exists (``python -m lab.assets``:
    ``debs-gateway-*``), else ``apt-get download`` into ``dest``. Returns ``(executable, env)`` with
    ``LD_LIBRARY_PATH`` set for the unpacked libraries, or ``None`` when neither source is there.
    """
    import glob
    import shutil

    dest = Path(dest)
    debs = sorted(glob.glob("/var/cache/inferfleet-lab/debs-gateway-*/haproxy_*.deb"))
    if debs:
        debs = sorted(glob.glob(os.path.join(os.path.dirname(debs[-1]), "*.deb")))
    elif shutil.which("apt-get") and shutil.which("dpkg-deb"):
        (dest / "debs").mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["apt-get", "download", *HAPROXY_DEBS], cwd=dest / "debs", capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            return None
        debs = sorted(str(p) for p in (dest / "debs").glob("*.deb"))
    else:
        return None
    root = dest / "root"
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", deb, str(root)], check=True)
    env = dict(os.environ, LD_LIBRARY_PATH=str(root / "usr" / "lib" / "x86_64-linux-gnu"))
    return str(root / "usr" / "sbin" / "haproxy"), env
