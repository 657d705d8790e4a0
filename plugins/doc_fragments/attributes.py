# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared documentation attributes of the kernel-tuning modules."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """Attributes of a module that sets runtime kernel values and persists them in files."""

    # inferfleet.gpu.attributes.runtime_and_persisted (thp, io_scheduler)
    RUNTIME_AND_PERSISTED = r"""
attributes:
  check_mode:
    description: Can run in check mode and predict the change without modifying the target.
    support: full
  diff_mode:
    description: Returns the before and after of the runtime values and of the files it writes.
    support: full
  platform:
    description: Target platforms.
    support: full
    platforms: [posix]
"""
