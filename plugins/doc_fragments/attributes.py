# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # Every module of the collection.
    DOCUMENTATION = r'''
attributes:
  check_mode:
    description: Can run in check mode and return a change prediction without modifying the cluster.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) in diff mode.
  idempotent:
    description: Running the task again with the same options changes nothing and reports no change.
  action_group:
    description: Use C(group/flinkops.flink.flink) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - flinkops.flink.flink
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
'''

    # Modules that only read.
    INFO_MODULE = r'''
attributes:
  check_mode:
    support: full
    details: This module only reads, so it always runs, also in check mode.
  diff_mode:
    support: N/A
    details: This module does not change anything.
  idempotent:
    support: full
'''
