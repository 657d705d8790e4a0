# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vllm_service plan: every instance's unit settings, decided once, in Python.

A pure function of the ``gpu_topology`` fact, the role's variables and a
few host values. The filter ``inferfleet.gpu.vllm_plan`` runs it on the
controller; the role only asserts that ``errors`` is empty and renders the
instances. The contract is written down in ``docs/vllm.md`` ("The plan").

Input errors are never raised: they are returned in ``errors``, one message
per wrong variable, each naming the ROLE variable the user set, its value and
what is allowed, so the role can fail before anything changes with exactly
that text. Placement (``module_utils/placement.py``) keeps its own contract;
its messages are re-worded here to name the role variables.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import re

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpulist import CpuListError, format_cpulist, parse_cpulist
from ansible_collections.inferfleet.gpu.plugins.module_utils.cpu_partition import PartitionError, with_service_cpus
from ansible_collections.inferfleet.gpu.plugins.module_utils.placement import PlacementError, plan_placement

RT_POLICIES = ("fifo", "rr")
POLICIES = ("fifo", "rr", "other", "batch", "idle")
FLAVOURS = ("cuda", "cpu")
MODEL_SOURCES = ("hub", "mirror", "path")
DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
MODALITIES = ("image", "video", "audio")
RESTARTS = ("no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always")
# Thread-pool variables sized to the instance's CPUs for the cpu flavour only.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TORCH_NUM_THREADS")
# Set by the plan itself; vllm_service_environment may not override them.
PLANNED_ENV = ("CUDA_VISIBLE_DEVICES", "VLLM_CPU_OMP_THREADS_BIND", "HOME", "TMPDIR")

_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?$")
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNIT_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]+$")
_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]+$")
_DIR_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_MIRROR = re.compile(r"^https?://[^\s/]+")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _show(value):
    """A value as the user would have typed it in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=False, default=str)
    return str(value)


class _Checker(object):
    """Collects one message per wrong variable; returns normalised values."""

    def __init__(self, settings):
        self.settings = settings
        self.errors = []

    def fail(self, name, allowed, value=None, raw=False):
        shown = _show(self.settings.get(name) if value is None and not raw else value)
        self.errors.append("%s=%s is not allowed: %s" % (name, shown, allowed))

    def get(self, name, default=None):
        return self.settings.get(name, default)

    def integer(self, name, low=None, high=None, null=False, what=None):
        value = self.get(name)
        if value is None and null:
            return None
        number = value
        if isinstance(value, str) and re.match(r"^-?[0-9]+$", value.strip()):
            number = int(value.strip())
        if isinstance(number, bool) or not isinstance(number, int):
            self.fail(name, "it must be %s" % (what or _range_text(low, high, null)))
            return None
        if (low is not None and number < low) or (high is not None and number > high):
            self.fail(name, "it must be %s" % (what or _range_text(low, high, null)))
            return None
        return number

    def number(self, name, low_exclusive, high):
        value = self.get(name)
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not low_exclusive < number <= high:
            self.fail(name, "it must be a number greater than %s and at most %s" % (low_exclusive, high))
            return None
        return number

    def boolean(self, name):
        value = self.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        self.fail(name, "it must be a boolean (true or false)")
        return None

    def choice(self, name, choices):
        value = self.get(name)
        if not isinstance(value, str) or value not in choices:
            self.fail(name, "it must be one of %s" % ", ".join(choices))
            return None
        return value

    def string(self, name, pattern=None, allowed=None, empty=True):
        value = self.get(name)
        if not isinstance(value, str):
            self.fail(name, "it must be a string%s, not %s" % (
                (" (" + allowed + ")") if allowed else "", _type_name(value)))
            return None
        if not value and not empty:
            self.fail(name, "it must not be empty%s" % ((" (" + allowed + ")") if allowed else ""), raw=True, value='""')
            return None
        if value and pattern is not None and not pattern.match(value):
            self.fail(name, allowed or "it must match %s" % pattern.pattern)
            return None
        return value


def _type_name(value):
    """``an integer``, ``a boolean``, ... for messages."""
    if isinstance(value, bool):
        return "a boolean"
    # isinstance, not type(): Ansible passes tagged subclasses of int, str, dict, ...
    for kind, name in ((int, "an integer"), (float, "a number"), (dict, "a mapping"), (list, "a list"),
                       (str, "a string")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else "a " + type(value).__name__


def _range_text(low, high, null):
    if low is not None and high is not None:
        text = "an integer from %d to %d" % (low, high)
    elif low is not None:
        text = "an integer >= %d" % low
    elif high is not None:
        text = "an integer <= %d" % high
    else:
        text = "an integer"
    return text + (" or null" if null else "")


def size_to_bytes(text):
    """``"64G"`` -> bytes (K/M/G/T are powers of 1024, as systemd reads them); None when it is not a size."""
    match = _SIZE.match(str(text).strip())
    if not match:
        return None
    power = " KMGT".index(match.group(2) or " ")
    return int(float(match.group(1)) * (1024 ** power))


def _is_address(value):
    """An IPv4/IPv6 literal or a DNS host name."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    return 0 < len(name) <= 253 and all(_HOSTNAME_LABEL.match(label) for label in name.split("."))


def _check_settings(c):
    """Every first-class variable: type and range. Returns the normalised values."""
    v = {}
    v["flavour"] = c.choice("vllm_service_flavour", FLAVOURS)
    v["user"] = c.string("vllm_service_user", _ACCOUNT, "a system account name: a-z, 0-9, _ and -, at most 32", empty=False)
    v["group"] = c.string("vllm_service_group", _ACCOUNT, "a group name: a-z, 0-9, _ and -, at most 32", empty=False)
    for name in ("vllm_service_state_dir", "vllm_service_model_volume", "vllm_service_venv"):
        path = c.get(name)
        if not isinstance(path, str) or not path.startswith("/") or any(ch.isspace() for ch in path):
            c.fail(name, "it must be an absolute path without spaces")
    v["state_dir"] = (c.get("vllm_service_state_dir") or "").rstrip("/")
    v["source"] = c.choice("vllm_service_model_source", MODEL_SOURCES)
    c.string("vllm_service_model", allowed="a model id such as Qwen/Qwen3-VL-30B-A3B-Instruct", empty=False)
    c.string("vllm_service_model_revision", allowed="a branch, tag or commit", empty=False)
    if v["source"] == "path":
        c.string("vllm_service_model_path", re.compile(r"^/"), "an absolute directory on the target, required with "
                 "vllm_service_model_source=path", empty=False)
    if v["source"] == "mirror":
        c.string("vllm_service_model_mirror_url", _MIRROR, "an http(s) URL, required with vllm_service_model_source=mirror",
                 empty=False)
    c.string("vllm_service_model_dir_name", _DIR_NAME, "letters, digits, . _ and - only", empty=False)
    gated = c.boolean("vllm_service_model_gated")
    token = c.string("vllm_service_hf_token", _TOKEN, "a Hugging Face token (letters, digits, _ . : -)")
    if gated and v["source"] in ("hub", "mirror") and token == "":
        c.errors.append(
            "vllm_service_hf_token is empty but vllm_service_model=%s is gated (vllm_service_model_gated=true, "
            "vllm_service_model_source=%s): put the token in Ansible Vault and pass it as vllm_service_hf_token"
            % (_show(c.get("vllm_service_model")), v["source"]))
    v["fanout"] = c.boolean("vllm_service_model_fanout_enabled")
    v["fanout_port"] = c.integer("vllm_service_model_fanout_port", 1, 65535)
    c.integer("vllm_service_model_fanout_timeout", 60, 86400 * 7)
    fanout_address = c.get("vllm_service_model_fanout_address")
    if not isinstance(fanout_address, str) or not _is_address(fanout_address):
        c.fail("vllm_service_model_fanout_address", "it must be the IP address or host name the other hosts reach "
               "this one on")
    v["served"] = c.string("vllm_service_served_model_name", allowed="the model name clients ask for", empty=False)
    v["gpus_per_instance"] = c.integer("vllm_service_gpus_per_instance", 1, 1024)
    v["instances"] = c.integer("vllm_service_instances", 1, 1024, null=True)
    hk = c.get("vllm_service_housekeeping_cpus")
    if hk is not None and not isinstance(hk, str):
        c.fail("vllm_service_housekeeping_cpus", "it must be a cpulist string such as \"0,56\", \"\" for none, or null "
               "for the first core of each NUMA node")
        hk = None
    elif hk:
        try:
            parse_cpulist(hk)
        except CpuListError as exc:
            c.fail("vllm_service_housekeeping_cpus", "it must be a cpulist such as \"0,56\" (%s)" % exc)
            hk = None
    v["housekeeping"] = hk
    address = c.get("vllm_service_listen_address")
    if not isinstance(address, str) or not _is_address(address):
        c.fail("vllm_service_listen_address", "it must be an IP address (0.0.0.0, ::, 10.0.0.5) or a host name")
    v["address"] = address
    probe = c.get("vllm_service_probe_address")
    if not isinstance(probe, str) or not _is_address(probe):
        c.fail("vllm_service_probe_address", "it must be an IP address (127.0.0.1) or a host name")
    v["port_base"] = c.integer("vllm_service_port_base", 1, 65535)
    key = c.get("vllm_service_api_key")
    if not isinstance(key, str):
        c.errors.append("vllm_service_api_key must be a string (quote it, and keep it in Ansible Vault), not %s; "
                        "\"\" for no key" % _type_name(key))
    elif key and not re.match(r"^[\x21-\x7e]+$", key):
        c.errors.append("vllm_service_api_key has spaces or control characters (%d characters long): use printable "
                        "ASCII without spaces" % len(key))
    v["api_key"] = key
    v["dtype"] = c.choice("vllm_service_dtype", DTYPES)
    v["gpu_memory_utilization"] = c.number("vllm_service_gpu_memory_utilization", 0, 1)
    v["max_model_len"] = c.integer("vllm_service_max_model_len", 1)
    v["max_num_seqs"] = c.integer("vllm_service_max_num_seqs", 1)
    v["max_num_batched_tokens"] = c.integer("vllm_service_max_num_batched_tokens", 1)
    if v["max_num_seqs"] and v["max_num_batched_tokens"] and v["max_num_batched_tokens"] < v["max_num_seqs"]:
        c.fail("vllm_service_max_num_batched_tokens", "it must be at least vllm_service_max_num_seqs=%d (vLLM refuses "
               "fewer batched tokens than sequences)" % v["max_num_seqs"])
        v["max_num_batched_tokens"] = None
    v["prefix_caching"] = c.boolean("vllm_service_enable_prefix_caching")
    v["quantization"] = c.string("vllm_service_quantization", re.compile(r"^[a-z0-9_-]+$"),
                                 "a vLLM quantization method such as fp8 or awq, \"\" for the checkpoint's own")
    v["kv_cache_dtype"] = c.string("vllm_service_kv_cache_dtype", re.compile(r"^[a-z0-9_]+$"),
                                   "auto or a vLLM KV-cache dtype such as fp8", empty=False)
    mm = c.get("vllm_service_limit_mm_per_prompt")
    if not isinstance(mm, dict) or not all(
            k in MODALITIES and isinstance(n, int) and not isinstance(n, bool) and n >= 0 for k, n in mm.items()):
        c.fail("vllm_service_limit_mm_per_prompt", "it must map modalities (%s) to whole numbers >= 0, such as "
               "{image: 4, video: 1}" % ", ".join(MODALITIES))
        mm = None
    v["limit_mm"] = mm
    extra = c.get("vllm_service_extra_flags")
    if not isinstance(extra, list) or not all(isinstance(f, (str, int, float)) and not isinstance(f, bool)
                                              for f in extra):
        c.fail("vllm_service_extra_flags", "it must be a list of strings (flags and their values)")
        extra = None
    v["extra_flags"] = [str(f) for f in extra] if extra is not None else None
    env = c.get("vllm_service_environment")
    v["environment"] = None
    if not isinstance(env, dict):
        c.fail("vllm_service_environment", "it must be a mapping of variable names to values")
    else:
        bad = [k for k, val in env.items() if not isinstance(k, str) or not _ENV_NAME.match(k)
               or isinstance(val, (dict, list)) or val is None or "\n" in str(val)]
        planned = [k for k in env if k in PLANNED_ENV]
        if bad:
            c.fail("vllm_service_environment", "names must be shell variable names and values single-line strings or "
                   "numbers (wrong: %s)" % ", ".join(str(k) for k in bad))
        elif planned:
            c.fail("vllm_service_environment", "%s are set by the plan (GPUs by UUID, the instance's CPUs and "
                   "directories) and cannot be overridden" % ", ".join(planned))
        else:
            v["environment"] = env
    v["unit_prefix"] = c.string("vllm_service_unit_prefix", _UNIT_PREFIX, "letters, digits and _ . : - (a systemd unit "
                                "name)", empty=False)
    v["cpu_quota"] = c.boolean("vllm_service_cpu_quota_enabled")
    v["memory_share"] = c.integer("vllm_service_memory_share_percent", 1, 100)
    v["tasks_max"] = c.integer("vllm_service_tasks_max", 64)
    v["nice"] = c.integer("vllm_service_nice", -20, 19)
    v["policy"] = c.choice("vllm_service_sched_policy", POLICIES)
    v["priority"] = c.integer("vllm_service_sched_priority", 1, 99)
    v["numa_bind"] = c.boolean("vllm_service_numa_bind_enabled")
    memlock = c.get("vllm_service_limit_memlock")
    if not (memlock == "infinity" or (isinstance(memlock, (str, int)) and not isinstance(memlock, bool)
                                      and size_to_bytes(memlock) is not None)):
        c.fail("vllm_service_limit_memlock", "it must be infinity or a size such as 64G")
    c.integer("vllm_service_limit_nofile", 1024, 1048576)
    c.integer("vllm_service_timeout_start_sec", 1)
    c.choice("vllm_service_restart", RESTARTS)
    c.integer("vllm_service_restart_sec", 0)
    c.boolean("vllm_service_hardening_enabled")
    c.boolean("vllm_service_readiness_enabled")
    timeout = c.integer("vllm_service_readiness_timeout", 10)
    c.integer("vllm_service_readiness_delay", 1, timeout if timeout else None)
    c.integer("vllm_service_readiness_journal_lines", 0, 10000)
    c.boolean("vllm_service_flag_check_enabled")
    return v


def _placement_error(message, settings):
    """Re-word a placement message so it names the role variables the user sets."""
    text = re.sub(r"\bgpus_per_instance\b", "vllm_service_gpus_per_instance", message)
    text = re.sub(r"(?<![_\w])instances(?==|\s+in\s|\s+to\s)", "vllm_service_instances", text)
    text = re.sub(r"\bset instances\b", "set vllm_service_instances", text)
    text = re.sub(r"\bhousekeeping(?==)", "vllm_service_housekeeping_cpus", text)
    text = re.sub(r"\ba smaller housekeeping set\b", "a smaller vllm_service_housekeeping_cpus", text)
    text = text.replace("pass housekeeping=''", "set vllm_service_housekeeping_cpus: \"\"")
    text = text.replace("with cpu_only_per_numa=true needs", "needs, on a host without GPUs (one instance per NUMA node),")
    text = re.sub(r"; set cpu_only_per_numa=false to spread [0-9]+ instances over all CPUs", "", text)
    if not text.startswith("vllm_service_"):
        names = ("vllm_service_instances", "vllm_service_gpus_per_instance", "vllm_service_housekeeping_cpus")
        blamed = next((n for n in names if settings.get(n) is not None), names[-1])
        text = "%s=%s cannot be met: %s" % (blamed, _show(settings.get(blamed)), text)
    return text


def common_flags(v):
    """``vllm serve`` flags shared by every instance (per instance: --host, --port)."""
    flags = ["--served-model-name", v["served"],
             "--dtype", v["dtype"],
             "--max-model-len", str(v["max_model_len"]),
             "--max-num-seqs", str(v["max_num_seqs"]),
             "--max-num-batched-tokens", str(v["max_num_batched_tokens"]),
             "--enable-prefix-caching" if v["prefix_caching"] else "--no-enable-prefix-caching",
             "--kv-cache-dtype", v["kv_cache_dtype"],
             "--limit-mm-per-prompt", json.dumps(v["limit_mm"], separators=(",", ":"))]
    if v["flavour"] == "cuda":
        flags += ["--tensor-parallel-size", str(v["gpus_per_instance"]),
                  "--gpu-memory-utilization", str(v["gpu_memory_utilization"])]
    if v["quantization"]:
        flags += ["--quantization", v["quantization"]]
    return flags + v["extra_flags"]


def _driver_blocker(driver):
    """Why GPU instances must not be (re)started now, or None."""
    driver = driver or {}
    if driver.get("reboot_required") in (True, "true", "True", "yes"):
        return ("the NVIDIA driver needs a reboot (nvidia_driver_reboot_required=true): the GPU instances are not "
                "(re)started. Fix: reboot the host (nvidia_driver_reboot=true does it, one host at a time), then run again")
    loaded = str(driver.get("loaded_version") or "")
    pinned = str(driver.get("pinned_version") or "")
    if loaded and pinned and loaded != pinned and not loaded.startswith(pinned + "."):
        return ("the loaded NVIDIA driver is %s but %s is pinned/installed: the GPU instances are not (re)started "
                "(CUDA fails with 'driver/library version mismatch'). Fix: reboot the host into the pinned driver "
                "(nvidia_driver_reboot=true does it), then run again" % (loaded, pinned))
    return None


def _gpu_ids(instance, gpus_by_index):
    """UUIDs and minors of an instance's GPUs, or the reason they cannot be known."""
    uuids, minors, missing = [], [], []
    for index in instance["gpus"]:
        gpu = gpus_by_index.get(index, {})
        uuid, minor = gpu.get("uuid"), gpu.get("minor")
        if not uuid or minor is None or isinstance(minor, bool):
            missing.append("%d (%s: uuid %s, minor %s)" % (index, gpu.get("bus_id"), _show(uuid), _show(minor)))
        uuids.append(uuid)
        minors.append(minor)
    return uuids, minors, missing


def _environment(v, inst, state, gpu):
    """The unit's environment, in order: [{name, value, comment}]."""
    env = []

    def add(name, value, comment=None):
        env.append({"name": name, "value": str(value), "comment": comment})

    add("HOME", state, "Everything vLLM writes stays in the instance's own directory (the unit's only writable path).")
    add("TMPDIR", state + "/tmp")
    add("XDG_CACHE_HOME", state + "/cache")
    add("VLLM_CACHE_ROOT", state + "/cache/vllm")
    add("HF_HOME", state + "/cache/huggingface")
    add("TORCHINDUCTOR_CACHE_DIR", state + "/cache/torchinductor")
    add("TRITON_CACHE_DIR", state + "/cache/triton")
    add("HF_HUB_OFFLINE", "1", "Weights come from the model volume only; no telemetry.")
    add("VLLM_NO_USAGE_STATS", "1")
    add("DO_NOT_TRACK", "1")
    add("PYTHONUNBUFFERED", "1")
    if v["flavour"] == "cpu":
        first = True
        for name in THREAD_VARS:
            add(name, inst["cpu_count"], (
                "cpu flavour: the thread pools do the inference, sized to this instance's CPUs (torch/OpenMP "
                "ignore cgroup limits and would start one thread per host CPU).") if first else None)
            first = False
        add("VLLM_CPU_OMP_THREADS_BIND", inst["cpus"], "vLLM's CPU backend binds its OpenMP threads to these CPUs.")
    if gpu:
        add("CUDA_DEVICE_ORDER", "PCI_BUS_ID", (
            "GPUs by UUID: under DevicePolicy=closed CUDA sees only the allowed GPUs, renumbered from 0, so an index "
            "would name the wrong GPU or none; a UUID names the same GPU whatever the enumeration."))
        add("CUDA_VISIBLE_DEVICES", ",".join(inst["gpu_uuids"]))
    else:
        add("CUDA_VISIBLE_DEVICES", "", "CPU instance: no GPU.")
    user = v["environment"] or {}
    names = [e["name"] for e in env]
    for name in user:
        if name in names:
            env = [e for e in env if e["name"] != name]
    first = True
    for name, value in user.items():
        comment = None
        if first:
            comment = "From vllm_service_environment."
            first = False
        if gpu and name in THREAD_VARS:
            comment = ((comment + " ") if comment else "") + (
                "%s overrides vLLM's own 1 thread per GPU worker: each worker starts this many threads, at the "
                "unit's scheduling policy." % name)
        add(name, _show(value) if isinstance(value, bool) else value, comment)
    return env


def _scheduling(v):
    """Policy, priority, nice and quota, with what each does under the policy."""
    rt = v["policy"] in RT_POLICIES
    return {
        "policy": v["policy"],
        "rt": rt,
        "priority": v["priority"] if rt else None,
        "nice": v["nice"],
        "nice_comment": (
            "Nice= has no effect on SCHED_%s threads (the kernel ignores nice for real-time tasks); it applies if "
            "vllm_service_sched_policy is other/batch/idle." % v["policy"].upper()) if rt else (
            "Nice=: the weight of these threads under SCHED_%s." % v["policy"].upper()),
        "cpu_quota_enabled": bool(v["cpu_quota"]),
        "quota_comment": (
            "CPUQuota= does not limit SCHED_%s threads (CFS bandwidth control throttles only normal tasks; "
            "kernel.sched_rt_runtime_us is the only, host-wide, real-time limit): the CPU set above is the bound. "
            "It applies if vllm_service_sched_policy is other/batch/idle." % v["policy"].upper()) if rt else (
            "CPUQuota=: at most the instance's CPU count of CPU time (cgroup v2 cpu.max; enforced on VMs and bare "
            "metal, not in nspawn labs)."),
    }


def plan_vllm(topology, settings, host=None):
    """The whole vllm_service plan.

    :param topology: the ``gpu_topology`` fact.
    :param settings: ``{role variable name: value}`` of every ``vllm_service_*`` variable.
    :param host: ``{memtotal_bytes, rt_runtime_us, service_cpus, nvidia_driver: {reboot_required,
        loaded_version, pinned_version}}``. ``service_cpus``: the cgroup root's CPUs (what system
        services may use, ``/sys/fs/cgroup/cpuset.cpus.effective``). On a host partitioned by
        host_tuning the process that gathered the topology is itself confined to the housekeeping
        CPUs, so its ``cpus.allowed`` would leave no CPU for the instances: plan over these instead.
    :returns: ``{errors, warnings, instances, flags, scheduling, memory_max_bytes, units, ...}``
        (see ``docs/vllm.md``); ``instances`` is empty when ``errors`` is not.
    """
    host = host or {}
    c = _Checker(settings or {})
    result = {"errors": c.errors, "warnings": [], "instances": [], "units": [], "flags": [], "scheduling": None,
              "driver_blocker": None, "gpu_count": 0}
    if not isinstance(topology, dict) or "cpus" not in topology or "numa_nodes" not in topology:
        c.errors.append("the gpu_topology fact is missing or incomplete (vllm_service_topology=%s): run "
                        "inferfleet.gpu.gpu_topology on the host or pass its fact" % _show(
                            settings.get("vllm_service_topology") if settings else None))
        return result
    v = _check_settings(c)
    try:
        topology = with_service_cpus(topology, host.get("service_cpus"))
    except PartitionError as exc:
        result["warnings"].append("the cgroup root's CPUs were not used: %s" % exc)
    gpus = topology.get("gpus") or []
    result["gpu_count"] = len(gpus)
    hk = v["housekeeping"]
    if isinstance(hk, str) and hk:
        online = set(parse_cpulist(topology["cpus"].get("online") or ""))
        extra = set(parse_cpulist(hk)) - online
        if extra:
            c.fail("vllm_service_housekeeping_cpus", "it names CPUs %s that are not online on this host (online: %s)"
                   % (format_cpulist(extra), format_cpulist(online)))
            hk = None
    if c.errors:
        return result
    try:
        placed = plan_placement(topology, gpus_per_instance=v["gpus_per_instance"] if gpus else None,
                                instances=v["instances"], housekeeping=hk)
    except PlacementError as exc:
        c.errors.append(_placement_error(str(exc), settings))
        return result
    count = len(placed)
    if v["fanout"] and v["fanout_port"] is not None and v["port_base"] <= v["fanout_port"] < v["port_base"] + count:
        c.fail("vllm_service_model_fanout_port", "it must not be one of the instances' ports %d-%d"
               % (v["port_base"], v["port_base"] + count - 1))
    if v["port_base"] + count - 1 > 65535:
        c.fail("vllm_service_port_base", "instance %d would listen on %d; it must be at most %d for %d instances"
               % (count - 1, v["port_base"] + count - 1, 65536 - count, count))
    memtotal = host.get("memtotal_bytes") or topology.get("memory_total_bytes")
    memory = c.get("vllm_service_memory_max")
    memory_bytes = None
    if memory not in (None, ""):
        memory_bytes = size_to_bytes(memory) if isinstance(memory, (str, int)) and not isinstance(memory, bool) else None
        if memory_bytes is None or memory_bytes <= 0:
            c.fail("vllm_service_memory_max", "it must be a size such as 64G, or \"\" for "
                   "vllm_service_memory_share_percent of the RAM split between the instances")
        elif memtotal and memory_bytes > memtotal:
            c.fail("vllm_service_memory_max", "it must be a size no larger than the host's RAM (%d MiB); \"\" for "
                   "%d%% of the RAM split between the instances" % (memtotal // 1048576, v["memory_share"]))
    elif memtotal:
        memory_bytes = int(memtotal * v["memory_share"] / 100 / count)
    else:
        c.errors.append("vllm_service_memory_max is empty and the host's RAM is unknown: set vllm_service_memory_max")
    rt = v["policy"] in RT_POLICIES
    if rt and not (placed[0]["housekeeping_cpus"] or ""):
        c.errors.append(
            "vllm_service_sched_policy=%s is refused with vllm_service_housekeeping_cpus=\"\": a busy real-time server "
            "on every CPU starves sshd and the kernel's own threads. Keep housekeeping CPUs or use policy other"
            % v["policy"])
    rt_runtime = host.get("rt_runtime_us")
    if rt and rt_runtime is not None and str(rt_runtime).strip() == "-1":
        c.errors.append(
            "vllm_service_sched_policy=%s is refused on this host: it has kernel.sched_rt_runtime_us=-1, so a runaway "
            "real-time server could take its CPUs for good. Restore the kernel default 950000 "
            "(inferfleet.gpu.host_tuning does) or use policy other" % v["policy"])
    gpus_by_index = dict((g.get("index"), g) for g in gpus)
    state_base = v["state_dir"]
    flags = common_flags(v)
    instances = []
    for inst in placed:
        index = inst["index"]
        has_gpu = bool(inst["gpus"])
        uuids, minors, missing = _gpu_ids(inst, gpus_by_index) if has_gpu else ([], [], [])
        if missing:
            c.errors.append(
                "instance %d cannot get a unit: GPU %s has no UUID or device minor in the gpu_topology fact. The "
                "NVIDIA driver is not loaded yet (/proc/driver/nvidia/gpus/<bus id>/information is missing and NVML "
                "did not answer), and without them the unit could only guess which GPU and which /dev/nvidiaN to "
                "allow. Fix: install and load the driver (inferfleet.gpu.nvidia_driver, then reboot) and run again"
                % (index, ", ".join(missing)))
            continue
        name = "%s-%d" % (v["unit_prefix"], index)
        state = "%s/instance-%d" % (state_base, index)
        port = v["port_base"] + index
        planned = dict(inst)
        planned.update({
            "name": name,
            "unit": name + ".service",
            "port": port,
            "address": v["address"],
            "state_dir": state,
            "gpu_uuids": uuids,
            "gpu_minors": minors,
            "cuda_visible_devices": ",".join(uuids),
            "device_allow": ["/dev/nvidia%d" % m for m in minors],
            "cpu_affinity": inst["cpus"].replace(",", " "),
            "cpu_quota_percent": inst["cpu_count"] * 100,
            "memory_max_bytes": memory_bytes,
            "flags": flags + ["--host", v["address"], "--port", str(port)],
        })
        planned["environment"] = _environment(v, planned, state, has_gpu)
        # Start order: a GPU server starts after the persistence daemon (GPUs initialised) and, on NVSwitch
        # systems, needs the fabric manager (CUDA fails to initialise without it).
        planned["unit_after"] = ["network-online.target"]
        planned["unit_wants"] = ["network-online.target"]
        planned["unit_requires"] = []
        if has_gpu:
            planned["unit_after"].append("nvidia-persistenced.service")
            planned["unit_wants"].append("nvidia-persistenced.service")
            if topology.get("nvswitch_count"):
                planned["unit_after"].append("nvidia-fabricmanager.service")
                planned["unit_requires"].append("nvidia-fabricmanager.service")
        instances.append(planned)
    if any(i["gpus"] for i in placed):
        blocker = _driver_blocker(host.get("nvidia_driver"))
        if blocker:
            result["driver_blocker"] = blocker
            c.errors.append(blocker)
    if c.errors:
        return result
    result.update({
        "instances": instances,
        "units": [i["unit"] for i in instances],
        "flags": flags,
        "scheduling": _scheduling(v),
        "memory_max_bytes": memory_bytes,
    })
    if rt and v["cpu_quota"]:
        result["warnings"].append(
            "vllm_service_cpu_quota_enabled=true with vllm_service_sched_policy=%s: CPUQuota= does not limit "
            "SCHED_FIFO/RR threads (only kernel.sched_rt_runtime_us does, host-wide); the instance's CPU set is the "
            "real bound" % v["policy"])
    return result
