# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``inferfleet.gpu.vllm_units``: ``systemctl show`` of the vLLM units -> their instances.

Documentation: ``vllm_units.yml`` beside this file (``ansible-doc -t filter inferfleet.gpu.vllm_units``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.inferfleet.gpu.plugins.module_utils.benchmark import instances_from_units, parse_systemctl_show


def vllm_units(show_output, address):
    """Parse the output, keep the active ``vllm serve`` units, describe each instance."""
    if not isinstance(show_output, str):
        raise AnsibleFilterError("inferfleet.gpu.vllm_units: expects the text of systemctl show, got %s"
                                 % type(show_output).__name__)
    return instances_from_units(parse_systemctl_show(show_output), str(address))


class FilterModule(object):
    """vLLM unit filters."""

    def filters(self):
        return {"vllm_units": vllm_units}
