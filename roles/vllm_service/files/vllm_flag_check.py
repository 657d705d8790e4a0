"""Check `vllm serve` flags against the installed vLLM's own argument parser.

Usage (inside the vLLM venv): python vllm_flag_check.py JSON
where JSON is {"model": "...", "flags": ["--max-model-len", "2048", ...]}.

Builds the parser exactly as the `vllm` command does (the `serve` subcommand's
``cmd_init()`` / ``subparser_init()`` under vLLM's ``FlexibleArgumentParser``),
parses ``serve MODEL FLAGS...`` and runs the subcommand's own ``validate``.
Nothing is started and no model is read.  Prints one JSON object:
{"ok": bool, "unknown": [flags vLLM does not have], "error": "parser message",
 "vllm_version": "..."}; exits 0 either way (the caller decides).
Shipped by inferfleet.gpu.vllm_service (files/vllm_flag_check.py).
"""
import contextlib
import importlib.metadata
import io
import json
import os
import re
import sys


def check(model, flags):
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import vllm.entrypoints.cli.serve as serve_cli  # noqa: E402
    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # vLLM < 0.11 kept it in vllm.utils
        from vllm.utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    cmds = {}
    for cmd in serve_cli.cmd_init():
        cmd.subparser_init(subparsers).set_defaults(dispatch_function=cmd.cmd)
        cmds[cmd.name] = cmd
    err = io.StringIO()
    result = {"ok": True, "unknown": [], "error": ""}
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = parser.parse_args(["serve", model] + list(flags))
            cmds["serve"].validate(args)
    except SystemExit:
        message = err.getvalue().strip().splitlines()
        result["ok"] = False
        result["error"] = message[-1] if message else "vllm serve rejected the flags"
        m = re.search(r"unrecognized arguments: (.*)$", result["error"])
        if m:
            result["unknown"] = [a for a in m.group(1).split() if a.startswith("-")]
    except (TypeError, ValueError) as exc:
        result["ok"] = False
        result["error"] = str(exc)
    return result


def main():
    req = json.loads(sys.argv[1])
    try:
        result = check(req["model"], req.get("flags", []))
    except Exception as exc:  # pylint: disable=broad-except
        result = {"ok": False, "unknown": [], "error": "could not build vLLM's parser: %s: %s"
                  % (type(exc).__name__, exc)}
    try:
        result["vllm_version"] = importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        result["vllm_version"] = ""
    print(json.dumps(result))


if __name__ == "__main__":
    main()
