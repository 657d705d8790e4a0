# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and writing a host's kernel interfaces (sysfs, procfs) under a root.

The one place the collection's readers open ``/sys`` and ``/proc`` files, parse
the kernel's ``"a [b] c"`` choice files, and write files atomically. Every path
is absolute; ``under_root(root, "/sys/...")`` makes one for a root that is ``/``
(the live machine) or a captured tree. Plain functions; nothing here calls
Ansible except :func:`write_atomic`, which takes the module it writes for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile


def under_root(root, path):
    """``path`` (absolute or relative) below ``root``."""
    return os.path.join(root, path.lstrip("/"))


def read(path):
    """Contents of a small sysfs/procfs file, stripped, or None if unreadable.

    (os.open/os.read: sysfs attributes are at most a page, and skipping the
    text-file layers halves the cost of the few thousand reads of a big host.)
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except (IOError, OSError):
        return None
    try:
        chunks = [os.read(fd, 65536)]
        # sysfs attributes are one page at most and come in one read;
        # procfs files may need several.
        while chunks[-1] and "/sys/" not in path:
            chunks.append(os.read(fd, 65536))
    except (IOError, OSError):
        return None
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text.strip()


def read_text(path):
    """Whole contents of a (config) file as they are, or None if unreadable."""
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def read_int(path):
    """An integer file (decimal, or ``0x`` hex), or None if unreadable or not a number."""
    text = read(path)
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def listdir(path):
    """Entries of a directory, or [] if it cannot be listed."""
    try:
        return os.listdir(path)
    except (IOError, OSError):
        return []


def parse_choice(text):
    """Parse a sysfs choice file.

    ``"always [madvise] never"`` -> ``("madvise", ["always", "madvise", "never"])``.
    A file holding one plain word (``"1"``, or a test tree's ``"always"``)
    gives ``(word, None)``: the offered choices are not known.
    """
    words = text.split()
    selected = None
    choices = []
    for word in words:
        if word.startswith("[") and word.endswith("]"):
            word = word[1:-1]
            selected = word
        choices.append(word)
    if selected is None:
        return (words[0] if words else None), None
    return selected, choices


def read_choice(path):
    """``(selected, offered)`` of a choice file such as ``queue/scheduler``.

    ``offered`` is ``[selected]`` when the file holds one plain word, and
    ``(None, [])`` when the file cannot be read.
    """
    text = read(path)
    if text is None:
        return None, []
    selected, choices = parse_choice(text)
    if choices is None:
        choices = [selected] if selected is not None else []
    return selected, choices


def write_value(path, value):
    """Write a value to a sysfs/procfs attribute (a plain write: they cannot be renamed over)."""
    with open(path, "w") as handle:
        handle.write(str(value))


def write_atomic(module, path, text, mode=0o644):
    """Write a config file through a temporary file and ``module.atomic_move``."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(dir=module.tmpdir)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    module.atomic_move(tmp, path)
