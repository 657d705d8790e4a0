# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mitogen ``linear`` strategy for the ``vm`` scenario only.

Under TCG every task otherwise starts a fresh Python in the guest (~6 s each);
mitogen keeps one interpreter there and cuts a role run from minutes to about
one.  Ansible finds this file because it sits in ``strategy_plugins/`` next to
the scenario's playbooks; molecule.yml selects it, and
``INFERFLEET_VM_STRATEGY=linear`` goes back to the stock strategy.
"""
from __future__ import annotations

import ansible_mitogen.loaders
import ansible_mitogen.strategy

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):  # type: ignore[misc,valid-type]
    """mitogen's StrategyMixin over ansible-core's linear strategy."""
