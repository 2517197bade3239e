#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: flink_job
short_description: Make sure a Flink job runs exactly once, or not at all
version_added: 0.1.0
description:
  - Declares a streaming job on an Apache Flink session cluster through its REST API.
  - The job's id is derived from O(name) and the declared spec (jar content, O(entry_class), O(args), O(parallelism),
    O(config)), so a retried or concurrent run of the same task submits under the same id and Flink rejects the
    second submission. At most one instance of the job runs, also across JobManager failovers.
  - A live job whose Flink name equals O(name), started by hand or by another tool, is adopted, not doubled.
  - Answers that mean "the cluster is not ready" (connection refused, HTTP 503 during a leader election, an unreachable
    leader) are waited out within O(wait_timeout), never read as "no jobs".
author:
  - flinkops maintainers (@flinkops)
extends_documentation_fragment:
  - flinkops.flink.connection
  - flinkops.flink.attributes
attributes:
  check_mode:
    support: full
    details: Check mode sends only GET requests and reports exactly what would be done, with the predicted job id.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - The job's identity. flink_job derives the job id from it and finds the job's instances by it.
      - It should equal the name the program passes to C(execute()), so that a job started by hand is recognised.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure one instance runs. A live instance, even of another version, is left alone (a
        warning reports the drift). If the last instance ended (cancelled, failed, finished), the job is submitted
        again.
      - V(absent) cancels every live instance (or stops it with a savepoint when O(savepoint=true)).
      - V(upgraded) behaves like V(present) when no instance is live or the live one runs the declared spec. A live
        instance of another spec (or a job of the same Flink name started outside flinkops) is upgraded as
        O(upgrade_mode) says. The new version is validated first (its jar uploads and its C(main()) builds the job
        graph) while the old one keeps running. If the new version cannot start after the old one was stopped, the
        previous version is started again from the same savepoint and the task fails, naming Flink's reason and the
        savepoint.
    type: str
    choices: [present, absent, upgraded]
    default: present
  jar:
    description:
      - Path of the job jar on the host where the module runs. Required with O(state=present) and O(state=upgraded).
      - The jar is uploaded only when a jar with the same content (SHA-256) is not already on the cluster.
    type: path
  entry_class:
    description:
      - Fully qualified main class. Defaults to the jar manifest's C(Main-Class).
    type: str
  args:
    description:
      - Program arguments, passed through exactly as given (one list element is one argument; spaces and unicode
        are kept).
    type: list
    elements: str
    default: []
  parallelism:
    description:
      - Default parallelism of the job; 1 or more. Defaults to the cluster's C(parallelism.default).
    type: int
  config:
    description:
      - Flink configuration for this submission (C(flinkConfiguration) of the run request), for example
        C(pipeline.max-parallelism). Needs Flink 1.17 or newer. Values are passed as strings; booleans become
        C(true)/C(false).
    type: dict
    default: {}
  restore_from:
    description:
      - Savepoint or retained checkpoint path to start the job from when it has to be submitted.
      - Without it, a job whose previous instance ended (cancelled, failed, finished) resumes from the newest
        savepoint or retained checkpoint Flink still reports for that instance (RV(restored_from) says which); with
        none, it starts empty and warns.
      - V(none) forces an empty start.
      - Ignored while a live instance runs.
    type: str
  upgrade_mode:
    description:
      - How O(state=upgraded) moves a live job to the declared spec.
      - V(savepoint) stops the job with a savepoint (atomic C(/stop)) and starts the new version from it.
      - V(last-state) cancels the job and starts the new version from its newest retained checkpoint, for jobs that
        cannot take a savepoint. The job's checkpoints must be retained on cancellation
        (C(execution.checkpointing.externalized-checkpoint-retention=RETAIN_ON_CANCELLATION)); this is checked before
        the job is touched.
      - V(stateless) cancels the job and starts the new version empty.
    type: str
    choices: [savepoint, last-state, stateless]
    default: savepoint
  allow_non_restored_state:
    description:
      - With O(restore_from), skip state in the savepoint that cannot be mapped to an operator of the job.
    type: bool
    default: false
  savepoint:
    description:
      - With O(state=absent), stop the job with a savepoint (atomic C(/stop)) instead of cancelling it, and return
        the savepoint's path in RV(savepoint). O(state=upgraded) always takes one in O(upgrade_mode=savepoint).
    type: bool
    default: false
  savepoint_dir:
    description:
      - Directory for the savepoint taken with O(savepoint=true) or by an upgrade. Defaults to the cluster's
        C(state.savepoints.dir); one of the two must be set.
      - Each stop-with-savepoint gets a directory of its own, C(<savepoint_dir>/flinkops-<trigger id>/), so when a
        JobManager failover makes Flink forget where the savepoint went, the module still finds it there (when
        that directory is readable from the host the module runs on) or names it in the failure message.
    type: str
  wait:
    description:
      - Return only once the job is C(RUNNING) (O(state=present)) or has ended (O(state=absent)).
      - With V(false), return as soon as Flink accepted the submission or the cancellation.
    type: bool
    default: true
notes:
  - Job identity. The 32-hex-digit job id is C(<name hash:16><spec hash:8><generation:8>). The generation counts up
    when the previous instance of the same spec ended, because Flink refuses to run an id again. See the README.
  - Jars are uploaded under the name C(flinkops-<sha256 prefix>-<file name>), which is how the module recognises
    them on the next run.
  - A no-op run (the job is already running) sends one request, C(GET /jobs/overview), and uploads nothing.
  - What flink_job stores with a job. Every submission records the declared spec (jar SHA-256 and file name,
    O(entry_class), O(args), O(parallelism), O(config)) in the job's global job parameters under
    C(flinkops.spec) (base64url JSON, see C(GET /jobs/<id>/config)). An upgrade reads it to restart the previous
    version on rollback. Nothing is stored on the Ansible side. A program that sets its own global job parameters
    hides the record; such a job can still be upgraded, but a failed upgrade then cannot restart it and reports the
    savepoint instead.
  - After a successful upgrade the previous version's jar is deleted from the cluster, unless another live job
    records that it uses the same jar.
  - flink_job is meant for long-running (streaming) jobs. A batch job that finishes will be submitted again by the
    next run with O(state=present).
seealso:
  - module: flinkops.flink.flink_job_info
  - module: flinkops.flink.flink_cluster_info
  - name: Flink REST API
    description: The endpoints this module uses.
    link: https://nightlies.apache.org/flink/flink-docs-stable/docs/ops/rest_api/
'''

EXAMPLES = r'''
- name: Make sure the orders job runs
  flinkops.flink.flink_job:
    url: http://flink-jobmanager:8081
    name: orders-enrichment
    jar: /opt/jobs/orders-enrichment-1.4.2.jar
    entry_class: com.example.orders.EnrichmentJob
    args: [--input-topic, orders, --output-topic, orders-enriched]
    parallelism: 4
    config:
      pipeline.max-parallelism: 128

- name: Several JobManagers of an HA cluster; any one that answers will do
  flinkops.flink.flink_job:
    url:
      - https://jm-1.example.com:8081
      - https://jm-2.example.com:8081
    ca_path: /etc/pki/flink/ca.pem
    name: orders-enrichment
    jar: /opt/jobs/orders-enrichment-1.4.2.jar

- name: Set the connection once for a whole play
  hosts: localhost
  module_defaults:
    group/flinkops.flink.flink:
      url: http://flink-jobmanager:8081
      wait_timeout: 300
  tasks:
    - name: Start the job from a savepoint if it is not running
      flinkops.flink.flink_job:
        name: sessions
        jar: /opt/jobs/sessions.jar
        restore_from: s3://flink/savepoints/savepoint-3f6c1e-7a7b1d2c1d6a

- name: Move the job to a new version through a savepoint (first deploy included)
  flinkops.flink.flink_job:
    url: http://flink-jobmanager:8081
    name: orders-enrichment
    state: upgraded
    jar: /opt/jobs/orders-enrichment-1.5.0.jar
    entry_class: com.example.orders.EnrichmentJob
    parallelism: 4
    savepoint_dir: s3://flink/savepoints
    wait_timeout: 600
  register: upgrade

- name: Stop the job with a savepoint and keep the path
  flinkops.flink.flink_job:
    url: http://flink-jobmanager:8081
    name: orders-enrichment
    state: absent
    savepoint: true
    savepoint_dir: s3://flink/savepoints
  register: stopped

- name: Show where the savepoint went
  ansible.builtin.debug:
    msg: "{{ stopped.savepoint }}"
'''

RETURN = r'''
action:
  description: What the module did (or, in check mode, would do).
  returned: always
  type: str
  choices: [none, submitted, upgraded, rolled_back, failed, cancelled, stopped]
  sample: submitted
job_id:
  description: Id of the job the result is about (the live, submitted or first stopped instance); null when none.
  returned: always
  type: str
  sample: 3f6c1e0a9b2d4c5e7a7b1d2c00000000
job_ids:
  description: Ids of every instance that was cancelled or stopped.
  returned: when O(state=absent) found live instances
  type: list
  elements: str
  sample: [3f6c1e0a9b2d4c5e7a7b1d2c00000000]
job:
  description: The job as Flink reports it after the module acted; null when there is none.
  returned: always
  type: dict
  contains:
    id:
      description: Job id.
      type: str
      sample: 3f6c1e0a9b2d4c5e7a7b1d2c00000000
    name:
      description: The job's name in Flink.
      type: str
      sample: orders-enrichment
    state:
      description: Flink job status.
      type: str
      sample: RUNNING
    start_time:
      description: Start time, ISO 8601 in UTC.
      type: str
      sample: '2026-11-24T10:15:02.123Z'
    start_time_ms:
      description: Start time in milliseconds since the epoch.
      type: int
      sample: 1795601702123
    end_time:
      description: End time, ISO 8601 in UTC, for jobs that ended.
      type: str
      sample: null
    end_time_ms:
      description: End time in milliseconds since the epoch.
      type: int
      sample: null
    duration_ms:
      description: Run time in milliseconds.
      type: int
      sample: 53021
    generation:
      description: Generation part of the job id under the flinkops scheme.
      type: int
      sample: 0
  sample:
    id: 3f6c1e0a9b2d4c5e7a7b1d2c00000000
    name: orders-enrichment
    state: RUNNING
adopted:
  description: True when the live job was started outside flinkops (its Flink name equals O(name)) and was adopted.
  returned: always
  type: bool
  sample: false
drift:
  description: True when a live instance of the job runs another spec than declared (O(state=present) leaves it alone).
  returned: when O(state=present) found a live job
  type: bool
  sample: false
jar_id:
  description: Id of the uploaded jar on the cluster that was used for the submission.
  returned: when the job was submitted
  type: str
  sample: 1d2c7a7b-3f6c-1e0a-9b2d-4c5e7a7b1d2c_flinkops-5e7a7b1d2c1d6a3f-orders.jar
spec_hash:
  description: SHA-256 of the declared spec (jar content, entry class, args, parallelism, config).
  returned: when O(state=present)
  type: str
  sample: 7a7b1d2c1d6a3f6c1e0a9b2d4c5e7a7b1d2c1d6a3f6c1e0a9b2d4c5e7a7b1d2c
generation:
  description: Generation of the submitted job id.
  returned: when the job was submitted
  type: int
  sample: 0
previous_job_id:
  description: Id of the job that was upgraded (stopped) by O(state=upgraded).
  returned: when an upgrade happened or was attempted
  type: str
  sample: 3f6c1e0a9b2d4c5e1d2c7a7b00000000
upgrade_mode:
  description: The O(upgrade_mode) of an upgrade.
  returned: when an upgrade happened or was attempted
  type: str
  sample: savepoint
restored_from:
  description: Where a (re)submitted job started from, when it was not empty.
  returned: when the job was submitted from a savepoint or checkpoint
  type: dict
  contains:
    path:
      description: Savepoint or checkpoint path.
      type: str
      sample: file:/var/lib/flink/savepoints/savepoint-3f6c1e-7a7b1d2c1d6a
    kind:
      description: V(explicit) (O(restore_from)), V(savepoint) or V(checkpoint) (left by the previous instance).
      type: str
      sample: savepoint
    job_id:
      description: The previous instance the savepoint or checkpoint belongs to; null for V(explicit).
      type: str
      sample: 3f6c1e0a9b2d4c5e7a7b1d2c00000000
  sample: {path: "file:/sp/savepoint-3f6c1e-7a7b1d2c1d6a", kind: savepoint, job_id: 3f6c1e0a9b2d4c5e7a7b1d2c00000000}
savepoint:
  description:
    - Path of the savepoint taken when stopping (the first one if several instances were stopped).
    - With O(state=upgraded), the savepoint (or, for V(last-state), the checkpoint) the new version started from,
      also returned when the upgrade failed.
  returned: when O(savepoint=true) stopped a job, or an upgrade took one
  type: str
  sample: file:/var/lib/flink/savepoints/savepoint-3f6c1e-7a7b1d2c1d6a
savepoints:
  description: Paths of all savepoints taken, in the order of RV(job_ids).
  returned: when O(savepoint=true) stopped a job
  type: list
  elements: str
  sample: [file:/var/lib/flink/savepoints/savepoint-3f6c1e-7a7b1d2c1d6a]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.flinkops.flink.plugins.module_utils._common import (
    check_requirements,
    client_from_module,
    connection_argument_spec,
    run_module,
)
from ansible_collections.flinkops.flink.plugins.module_utils._job import Desired, JobReconciler


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent', 'upgraded']),
        jar=dict(type='path'),
        entry_class=dict(type='str'),
        args=dict(type='list', elements='str', default=[]),
        parallelism=dict(type='int'),
        config=dict(type='dict', default={}),
        restore_from=dict(type='str'),
        upgrade_mode=dict(type='str', default='savepoint', choices=['savepoint', 'last-state', 'stateless']),
        allow_non_restored_state=dict(type='bool', default=False),
        savepoint=dict(type='bool', default=False),
        savepoint_dir=dict(type='str'),
        wait=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'present', ['jar']), ('state', 'upgraded', ['jar'])])
    check_requirements(module)
    p = module.params

    def work():
        desired = Desired(
            name=p['name'], state=p['state'], jar=p['jar'], entry_class=p['entry_class'], args=p['args'],
            parallelism=p['parallelism'], config=p['config'], restore_from=p['restore_from'],
            allow_non_restored_state=p['allow_non_restored_state'], savepoint=p['savepoint'],
            savepoint_dir=p['savepoint_dir'], wait=p['wait'], upgrade_mode=p['upgrade_mode'])
        client = client_from_module(module)
        reconciler = JobReconciler(client, desired, check_mode=module.check_mode, diff=module._diff,
                                   warn=module.warn)
        return reconciler.run()

    result = run_module(module, work)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
