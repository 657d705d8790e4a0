"""Bootstrap pip into ansible-test's empty sanity virtual environments.

ansible-test normally downloads a ``get-pip.py`` from its own CI file host,
which this project's machines cannot reach (only PyPI is).  ``tests/sanity.py``
puts this file where ansible-test caches that script; it does the same job
with the interpreter's own ``ensurepip`` and then asks pip (from PyPI) for the
exact packages ansible-test requested.
"""
import ensurepip
import subprocess
import sys

ARGS = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
ensurepip.bootstrap(upgrade=True)
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *ARGS])
