"""The Debian mirror this machine's apt uses: what both lab images are built from.

Both back ends debootstrap Debian 12 (bookworm) from the mirror apt already
uses here, so an air-gapped or proxied machine needs no extra setting.
"""
from __future__ import annotations

import re
from pathlib import Path

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def debian_mirror(root: Path = Path("/"), suite: str = SUITE) -> str:
    """The Debian mirror this machine's apt uses for the main archive.

    Reads deb822 ``*.sources`` and one-line ``sources.list`` entries; skips
    security and disabled entries.  Falls back to deb.debian.org.
    """
    apt = root / "etc" / "apt"
    files = [apt / "sources.list"] + sorted((apt / "sources.list.d").glob("*.list")) \
        + sorted((apt / "sources.list.d").glob("*.sources"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" not in fields.get("types", "").split():
                    continue
                suites = fields.get("suites", "").split()
                if suite not in suites:
                    continue
                for uri in fields.get("uris", "").split():
                    if "security" not in uri:
                        return uri.rstrip("/")
        else:
            for line in text.splitlines():
                parts = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == suite and "security" not in parts[1]:
                    return parts[1].rstrip("/")
    return DEFAULT_MIRROR
