# -*- coding: utf-8 -*-
"""The inferfleet.gpu.placement filter: a thin wrapper of plan_placement
(its documentation and a real render through Ansible: tests/integration/plugins/).

(The empty ``__init__.py`` beside this file makes it ``filter.test_placement``,
so it does not clash with module_utils/test_placement.py under pytest's
default import mode.)
"""


import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.inferfleet.gpu.plugins.filter.placement import FilterModule, placement
from ansible_collections.inferfleet.gpu.plugins.module_utils import topology as T
from ansible_collections.inferfleet.gpu.plugins.module_utils.placement import plan_placement

import topology_trees as tt


@pytest.fixture(scope="module")
def hgx():
    return T.gather(str(tt.cached_tree("hgx-h100")))[0]


def test_registered_under_its_name():
    assert FilterModule().filters() == {"placement": placement}


def test_same_answer_as_the_planner(hgx):
    assert placement(hgx, gpus_per_instance=2) == plan_placement(hgx, gpus_per_instance=2)
    assert placement(hgx, instances=4, housekeeping="0-1,112-113") == plan_placement(
        hgx, instances=4, housekeeping="0-1,112-113")


def test_impossible_request_is_a_filter_error(hgx):
    with pytest.raises(AnsibleFilterError) as err:
        placement(hgx, gpus_per_instance=3)
    assert "inferfleet.gpu.placement" in str(err.value)
    assert "gpus_per_instance=3" in str(err.value) and "8 GPUs" in str(err.value)


def test_non_boolean_switch_is_refused(hgx):
    with pytest.raises(AnsibleFilterError) as err:
        placement(hgx, cpu_only_per_numa="yes")
    assert "cpu_only_per_numa must be a boolean" in str(err.value) and "'yes'" in str(err.value)
