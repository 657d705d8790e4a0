# -*- coding: utf-8 -*-
"""Test stand-in (never shipped): returns its ``facts`` argument as ansible_facts, so the render
playbook can give each fake host the gpu_topology fact inferfleet.gpu.gpu_topology would set."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: standin_facts
short_description: Test stand-in, sets the facts it is given
description: Returns O(facts) as C(ansible_facts).
options:
  facts:
    description: The facts.
    type: dict
    required: true
author: inferfleet engineers
"""
EXAMPLES = r"""
- standin_facts:
    facts: {gpu_topology: {gpus: []}}
"""
RETURN = r"""
ansible_facts:
  description: O(facts).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(facts=dict(type="dict", required=True)), supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts=module.params["facts"])


if __name__ == "__main__":
    main()
