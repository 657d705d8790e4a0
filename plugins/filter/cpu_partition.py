# -*- coding: utf-8 -*-
# Copyright: (c) 2026, inferfleet.gpu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``inferfleet.gpu.cpu_partition``: the gpu_topology fact -> model-server CPUs vs system CPUs.

Documentation: ``cpu_partition.yml`` beside this file (``ansible-doc -t filter inferfleet.gpu.cpu_partition``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.inferfleet.gpu.plugins.module_utils.cpu_partition import (
    PartitionError, PlacementError, plan_partition)


def cpu_partition(topology, gpus_per_instance=None, instances=None, housekeeping=None, service_cpus=None):
    """Wrap :func:`plan_partition`; a partition that cannot be made is an AnsibleFilterError."""
    try:
        return plan_partition(topology, gpus_per_instance=gpus_per_instance, instances=instances,
                              housekeeping=housekeeping, service_cpus=service_cpus)
    except (PartitionError, PlacementError) as exc:
        raise AnsibleFilterError("inferfleet.gpu.cpu_partition: %s" % exc)


class FilterModule(object):
    """CPU partition filters."""

    def filters(self):
        return {"cpu_partition": cpu_partition}
