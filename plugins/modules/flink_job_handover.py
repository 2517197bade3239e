#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: flink_job_handover
short_description: Carry the jobs of a Flink cluster across a JobManager restart without losing their state
version_added: 0.2.0
description:
  - A JobManager without high availability forgets every job when it restarts. This module takes the jobs out
    before such a restart and brings them back afterwards, each from a savepoint, under the identity and record
    M(flinkops.flink.flink_job) gives them, so M(flinkops.flink.flink_job) finds them unchanged afterwards. The
    M(flinkops.flink.flink_cluster) role uses it for configuration changes; it is usable on its own around any
    planned restart.
  - With O(state=suspended), every live job is stopped with a savepoint (C(POST /jobs/<id>/stop)). Before a job is
    touched it is written to the O(handover_file) on the host the module runs on (the JobManager host), with a copy
    of its jar, and the file is completed with the savepoint once it is known. A run that dies in between leaves the
    file, and the next O(state=resumed) goes on from it.
  - A job that could not be started again stops the suspension before anything is touched - one without a readable
    flinkops record (started by hand or by another tool), one started with secret values (O(flinkops.flink.flink_job#module:secret_args)
    or sensitive O(flinkops.flink.flink_job#module:config) values are never recorded), or one whose jar is not in
    O(jar_dirs). With O(unrecorded=cancel) such jobs are cancelled instead, and reported.
  - With O(state=resumed), every job in the O(handover_file) is started again from its savepoint, as
    M(flinkops.flink.flink_job) with O(flinkops.flink.flink_job#module:state=present) and
    O(flinkops.flink.flink_job#module:restore_from) would, verified by the same health gate. The file and the jar
    copies are removed once every job runs; a job that could not be started stays in the file for the next run.
    Without a file there is nothing to do.
  - With O(state=settled), the module only waits until the cluster answers with at least O(taskmanagers)
    TaskManagers and O(slots) task slots and every job in O(job_ids) is RUNNING with all its tasks running; a
    listed job that ended fails the task. Use it between the steps of a rolling restart.
author:
  - flinkops maintainers (@flinkops)
extends_documentation_fragment:
  - flinkops.flink.connection
  - flinkops.flink.attributes
attributes:
  check_mode:
    support: full
    details: Check mode lists the jobs that would be taken out (with the reason for those that would be cancelled)
      or started again, and touches nothing.
  diff_mode:
    support: full
    details: Shows the running jobs before and which are taken out or started again after.
  idempotent:
    support: full
    details: Without live jobs O(state=suspended) changes nothing; without a handover file O(state=resumed) changes
      nothing.
options:
  state:
    description:
      - V(suspended) takes every live job out with a savepoint; V(resumed) starts the jobs of the O(handover_file)
        again from their savepoints; V(settled) waits for the cluster and the jobs in O(job_ids).
    type: str
    required: true
    choices: [suspended, resumed, settled]
  handover_file:
    description:
      - File on the host the module runs on that lists the jobs taken out. Required with O(state=suspended) and
        O(state=resumed). Their jars are kept in the directory C(<handover_file>.jars).
    type: path
  jar_dirs:
    description:
      - Directories on the host the module runs on where the JobManager keeps uploaded jars (its C(web.upload.dir),
        or C(web.tmpdir), searched recursively). Used with O(state=suspended) to keep a copy of each job's jar.
    type: list
    elements: path
    default: []
  unrecorded:
    description:
      - What O(state=suspended) does with a live job it could not start again. V(fail) fails before any job is
        touched; V(cancel) cancels such jobs (their state is lost) and takes the others out with a savepoint.
    type: str
    choices: [fail, cancel]
    default: fail
  savepoint_dir:
    description:
      - Where the savepoints go. Defaults to the cluster's savepoint directory (C(state.savepoints.dir)).
    type: str
  healthy_for:
    description:
      - With O(state=resumed), seconds each job must stay healthy once all its tasks run, as
        O(flinkops.flink.flink_job#module:healthy_for).
    type: int
    default: 10
  job_ids:
    description:
      - With O(state=settled), the jobs that must be RUNNING again (all tasks running).
    type: list
    elements: str
    default: []
  taskmanagers:
    description:
      - With O(state=settled), the TaskManagers that must be registered.
    type: int
    default: 0
  slots:
    description:
      - With O(state=settled), the task slots that must be registered.
    type: int
    default: 0
notes:
  - The handover file holds job names, their public configuration, program arguments and savepoint paths, never
    secret values; it is written with mode C(0600).
  - O(wait_timeout) bounds the whole run, savepoints included. A stop-with-savepoint that Flink has begun is followed
    to its end as in M(flinkops.flink.flink_job).
seealso:
  - module: flinkops.flink.flink_job
'''

EXAMPLES = r'''
- name: Take the jobs out before restarting the JobManager
  flinkops.flink.flink_job_handover:
    url: http://localhost:8081
    state: suspended
    handover_file: /opt/flink/instance/handover.json
    jar_dirs: [/opt/flink/instance/jars, /opt/flink/instance/web]
    wait_timeout: 600

- name: Restart the JobManager
  ansible.builtin.command: /opt/flink/instance/bin/flinkctl jobmanager restart
  changed_when: true

- name: Start the jobs again from their savepoints
  flinkops.flink.flink_job_handover:
    url: http://localhost:8081
    state: resumed
    handover_file: /opt/flink/instance/handover.json
    wait_timeout: 600

- name: Wait until a restarted TaskManager is back and the jobs run again
  flinkops.flink.flink_job_handover:
    url: [http://jm-1:8081, http://jm-2:8081]
    state: settled
    taskmanagers: 2
    slots: 8
    job_ids: "{{ running_job_ids }}"
'''

RETURN = r'''
jobs:
  description:
    - With O(state=suspended) and O(state=resumed), the jobs taken out or started again (in check mode, that would
      be), each with C(name), C(job_id), C(action) (V(stopped), V(cancelled), V(resumed) or V(already_running)) and
      C(savepoint).
    - With O(state=settled), the awaited jobs (or every live job) as Flink reports them, with C(health).
  returned: always
  type: list
  elements: dict
  sample: [{name: orders-enrichment, job_id: 6f1c2a9e0b7d4c3a0000000000000000, action: stopped,
            savepoint: "file:/opt/flink/instance/savepoints/savepoint-6f1c2a-0123456789ab"}]
handover_file:
  description: The handover file used.
  returned: with O(state=suspended) and O(state=resumed)
  type: str
pending:
  description: Jobs an earlier run took out and that were not started again yet (still in the file).
  returned: with O(state=suspended)
  type: list
  elements: dict
taskmanagers:
  description: Registered TaskManagers when the cluster settled.
  returned: with O(state=settled)
  type: int
slots_total:
  description: Registered task slots when the cluster settled.
  returned: with O(state=settled)
  type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.flinkops.flink.plugins.module_utils._common import (
    client_from_module,
    connection_argument_spec,
    run_module,
)
from ansible_collections.flinkops.flink.plugins.module_utils._handover import Handover


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        state=dict(type='str', required=True, choices=['suspended', 'resumed', 'settled']),
        handover_file=dict(type='path'),
        jar_dirs=dict(type='list', elements='path', default=[]),
        unrecorded=dict(type='str', default='fail', choices=['fail', 'cancel']),
        savepoint_dir=dict(type='str'),
        healthy_for=dict(type='int', default=10),
        job_ids=dict(type='list', elements='str', default=[]),
        taskmanagers=dict(type='int', default=0),
        slots=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'suspended', ['handover_file']),
                                        ('state', 'resumed', ['handover_file'])])
    p = module.params
    if p['healthy_for'] < 0:
        module.fail_json(msg='healthy_for must be 0 or more seconds, got %d' % p['healthy_for'])

    def work():
        handover = Handover(client_from_module(module), path=p['handover_file'], jar_dirs=p['jar_dirs'],
                            unrecorded=p['unrecorded'], savepoint_dir=p['savepoint_dir'],
                            healthy_for=p['healthy_for'], check_mode=module.check_mode, diff=module._diff,
                            warn=module.warn)
        if p['state'] == 'suspended':
            return handover.suspend()
        if p['state'] == 'resumed':
            return handover.resume()
        return handover.settle(job_ids=p['job_ids'], taskmanagers=p['taskmanagers'], slots=p['slots'])

    module.exit_json(**run_module(module, work))


if __name__ == '__main__':
    main()
