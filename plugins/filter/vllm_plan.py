# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``inferfleet.gpu.vllm_plan``: the gpu_topology fact + vllm_service variables -> the plan.

Documentation: ``vllm_plan.yml`` beside this file (``ansible-doc -t filter inferfleet.gpu.vllm_plan``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.inferfleet.gpu.plugins.module_utils.vllm_plan import plan_vllm


def vllm_plan(topology, settings, host=None):
    """Wrap :func:`plan_vllm`. Input errors come back in ``errors`` (never raised), for the role to assert."""
    if not isinstance(settings, dict):
        raise AnsibleFilterError("inferfleet.gpu.vllm_plan: settings must be a dict of vllm_service_* variables, got %s"
                                 % type(settings).__name__)
    if host is not None and not isinstance(host, dict):
        raise AnsibleFilterError("inferfleet.gpu.vllm_plan: host must be a dict, got %s" % type(host).__name__)
    return plan_vllm(topology, dict(settings), dict(host or {}))


class FilterModule(object):
    """vllm_service plan filter."""

    def filters(self):
        return {"vllm_plan": vllm_plan}
