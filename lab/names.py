"""The one rule for lab names (``--name``), for both back ends.

A name is lower-case letters, digits and '-', starts with a letter and does not
end with '-'. What differs is the length each back end can carry: an nspawn
lab's name goes into interface and netns names (23 characters), a VM's into
its state directory and qemu process name (31).
"""
from __future__ import annotations

import re

NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")


def check_name(name: str, max_len: int, reserved_suffixes: tuple[str, ...] = (),
               error: type[Exception] = ValueError) -> str:
    """Return ``name`` or raise ``error`` saying what a name may be."""
    if (not NAME_RE.fullmatch(name or "") or len(name) > max_len or name.endswith("-")
            or any(name.endswith(s) for s in reserved_suffixes)):
        ending = " or ".join(repr(s) for s in ("-", *reserved_suffixes))
        why = " (the VM's state dir)" if "-vm" in reserved_suffixes else ""
        raise error(f"--name {name!r} is not allowed: use 1-{max_len} characters a-z, 0-9 and '-', "
                    f"starting with a letter and not ending with {ending}{why}")
    return name
