#!/usr/bin/env python3
"""Run ``ansible-test sanity`` on the collection.

ansible-test must run from inside ``ansible_collections/inferfleet/gpu``; the
Makefile creates that path as a link to the repository.  No docker here, so the
tests run ``--local`` with this interpreter.
"""
import os
import subprocess
import sys
from pathlib import Path

COLL = Path(__file__).resolve().parent.parent / ".build" / "ansible_collections" / "inferfleet" / "gpu"
ansible_test = Path(sys.executable).parent / "ansible-test"
py = f"{sys.version_info.major}.{sys.version_info.minor}"
cmd = [str(ansible_test), "sanity", "--local", "--python", py, "--color", "no"]
# Tests whose tooling would have to be downloaded at run time from outside PyPI,
# or that are about ansible-core's own repository, not a collection.
cmd += sys.argv[1:]
os.chdir(COLL)
sys.exit(subprocess.call(cmd))
