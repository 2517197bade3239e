#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: flink_savepoint
short_description: Take a savepoint of a running Flink job, or dispose a savepoint
version_added: 0.1.0
description:
  - With O(state=present), triggers a savepoint of a running job, waits until Flink reports it complete and returns its
    path. The job keeps running. Every run takes a new savepoint, so the task always reports a change.
  - With O(state=absent), disposes the savepoint at O(path) through Flink (C(POST /savepoint-disposal)), so the
    cluster's file system credentials are used. A savepoint that no longer exists is not a change.
author:
  - flinkops maintainers (@flinkops)
extends_documentation_fragment:
  - flinkops.flink.connection
  - flinkops.flink.attributes
attributes:
  check_mode:
    support: full
    details: Check mode finds the job (or, for O(state=absent), assumes the savepoint exists) and triggers nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: O(state=present) takes a new savepoint on every run; O(state=absent) is idempotent.
options:
  name:
    description:
      - The job, as M(flinkops.flink.flink_job) knows it (its O(flinkops.flink.flink_job#module:name)), or its Flink
        name. Exactly one live job must match.
      - One of O(name) or O(job_id) is required with O(state=present).
    type: str
  job_id:
    description:
      - Id of the running job.
    type: str
  state:
    description:
      - V(present) takes a savepoint; V(absent) disposes the savepoint at O(path).
    type: str
    choices: [present, absent]
    default: present
  savepoint_dir:
    description:
      - Directory to write the savepoint to. Defaults to the cluster's C(state.savepoints.dir).
    type: str
  path:
    description:
      - Path of the savepoint to dispose, as Flink reported it. Required with O(state=absent).
    type: str
seealso:
  - module: flinkops.flink.flink_job
'''

EXAMPLES = r'''
- name: Take a savepoint before a risky change
  flinkops.flink.flink_savepoint:
    url: http://flink-jobmanager:8081
    name: orders-enrichment
    savepoint_dir: s3://flink/savepoints
  register: sp

- name: Dispose an old savepoint
  flinkops.flink.flink_savepoint:
    url: http://flink-jobmanager:8081
    state: absent
    path: "{{ sp.savepoint }}"
'''

RETURN = r'''
savepoint:
  description: Path of the savepoint taken (O(state=present)) or disposed (O(state=absent)); null in check mode.
  returned: always
  type: str
  sample: file:/var/lib/flink/savepoints/savepoint-3f6c1e-7a7b1d2c1d6a
job_id:
  description: Id of the job the savepoint was taken of.
  returned: when O(state=present)
  type: str
  sample: 3f6c1e0a9b2d4c5e7a7b1d2c00000000
job:
  description: The job as Flink reported it before the savepoint (id, name, state, start time).
  returned: when O(state=present)
  type: dict
  sample: {id: 3f6c1e0a9b2d4c5e7a7b1d2c00000000, name: orders-enrichment, state: RUNNING}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.flinkops.flink.plugins.module_utils._common import (
    client_from_module,
    connection_argument_spec,
    run_module,
)
from ansible_collections.flinkops.flink.plugins.module_utils._savepoint import SavepointManager


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        name=dict(type='str'),
        job_id=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        savepoint_dir=dict(type='str'),
        path=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'absent', ['path'])],
                           mutually_exclusive=[('name', 'job_id')])
    p = module.params
    if p['state'] == 'present' and not (p['name'] or p['job_id']):
        module.fail_json(msg='state=present needs name or job_id: the job to take a savepoint of')

    def work():
        manager = SavepointManager(client_from_module(module), check_mode=module.check_mode)
        if p['state'] == 'absent':
            return manager.dispose(p['path'])
        return manager.take(name=p['name'], job_id=p['job_id'], target_dir=p['savepoint_dir'])

    module.exit_json(**run_module(module, work))


if __name__ == '__main__':
    main()
