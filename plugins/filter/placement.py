# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``inferfleet.gpu.placement``: the gpu_topology fact -> an instance plan.

Documentation: ``placement.yml`` beside this file (``ansible-doc -t filter inferfleet.gpu.placement``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.inferfleet.gpu.plugins.module_utils.placement import PlacementError, plan_placement


def placement(topology, gpus_per_instance=None, instances=None, housekeeping=None, cpu_only_per_numa=True):
    """Wrap :func:`plan_placement`; a request the host cannot meet is an AnsibleFilterError."""
    if not isinstance(cpu_only_per_numa, bool):
        raise AnsibleFilterError(
            "inferfleet.gpu.placement: cpu_only_per_numa must be a boolean, got %r" % (cpu_only_per_numa,))
    try:
        return plan_placement(
            topology,
            gpus_per_instance=gpus_per_instance,
            instances=instances,
            housekeeping=housekeeping,
            cpu_only_per_numa=cpu_only_per_numa,
        )
    except PlacementError as exc:
        raise AnsibleFilterError("inferfleet.gpu.placement: %s" % exc)


class FilterModule(object):
    """Placement filters."""

    def filters(self):
        return {"placement": placement}
