#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: flink_job_set
short_description: Declare a whole set of Flink jobs in one step, and prune the ones no longer declared
version_added: 0.2.0
description:
  - Reconciles a list of jobs on one Flink session cluster in one module run. Each job takes
    P(flinkops.flink.flink_job#module)'s options and is brought to its state by the same reconciler as
    P(flinkops.flink.flink_job#module), with the same identity scheme, adoption rules, upgrade transaction, health
    gate and failure handling.
  - The job list is read once for the whole set (C(GET /jobs/overview)), and each live job's record once. A run
    that changes nothing sends C(GET /config), C(GET /jobs/overview) and one C(GET /jobs/<id>/config) per live job
    of the set (with O(prune=true), per live job on the cluster).
  - Jobs are observed and planned first, up to O(max_parallel) at a time, without changing anything. When any job
    cannot be planned safely (the cases where P(flinkops.flink.flink_job#module) fails before touching anything),
    the run fails naming every such job and no job is touched.
  - Then the jobs that must act do so concurrently, up to O(max_parallel) at a time, each within its own
    O(wait_timeout). A job that fails (for example an upgrade whose new version is not healthy, which is rolled
    back) fails alone; the others go on, and the task fails at the end naming the jobs that failed.
  - With O(prune=true), every live job that carries the record of this set's O(scope) but is no longer declared is
    stopped with a savepoint (or cancelled, see O(prune_savepoint)) and reported with RV(jobs[].pruned=true). Jobs
    of another scope, jobs without a flinkops record (started by hand, or by another tool) and jobs declared by
    P(flinkops.flink.flink_job#module) without a scope are never pruned.
author:
  - flinkops maintainers (@flinkops)
extends_documentation_fragment:
  - flinkops.flink.connection
  - flinkops.flink.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads what the real run reads and reports each job's predicted result, the jobs it would prune
        included, or fails where the real run would fail before touching anything.
  diff_mode:
    support: full
    details:
      - One diff per job that changes (or would change), headed with the job's name.
  idempotent:
    support: full
options:
  jobs:
    description:
      - The jobs of the set. Each item takes P(flinkops.flink.flink_job#module)'s options (see there for details),
        plus its own O(jobs[].wait_timeout). Names must be unique.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The job's identity, see P(flinkops.flink.flink_job#module).
        type: str
        required: true
      state:
        description: V(present), V(absent) or V(upgraded), as in P(flinkops.flink.flink_job#module).
        type: str
        choices: [present, absent, upgraded]
        default: present
      jar:
        description: Path of the job jar on the host where the module runs; with V(present) and V(upgraded) a job runs a
          jar or SQL (O(jobs[].sql), O(jobs[].sql_file)). Jobs of the set that run the same jar find or upload it once.
        type: path
      sql:
        description: A SQL job instead of a jar, as P(flinkops.flink.flink_job#module)'s O(flinkops.flink.flink_job#module:sql).
          Every SQL job of the set runs the same generated SQL runner jar, uploaded once.
        type: str
        version_added: 0.2.0
      sql_file:
        description: Like O(jobs[].sql), the statements read from this UTF-8 file on the host where the module runs.
        type: path
        version_added: 0.2.0
      python:
        description: A PyFlink job instead of a jar, as P(flinkops.flink.flink_job#module)'s
          O(flinkops.flink.flink_job#module:python) - the entry script, or a directory with O(jobs[].python_module).
        type: path
        version_added: 0.2.0
      python_module:
        description: With O(jobs[].python) a directory, the module to run (for example C(etl.main)).
        type: str
        version_added: 0.2.0
      entry_class:
        description: Fully qualified main class. Defaults to the jar manifest's C(Main-Class).
        type: str
      args:
        description: Program arguments, passed through exactly as given.
        type: list
        elements: str
        default: []
      secret_args:
        description: Secret program arguments appended after O(jobs[].args); never recorded, returned or shown.
        type: list
        elements: str
        default: []
      parallelism:
        description: Default parallelism of the job; 1 or more.
        type: int
      config:
        description: Flink configuration for the submission, flattened and masked as P(flinkops.flink.flink_job#module)
          does.
        type: dict
        default: {}
      restore_from:
        description: Savepoint or retained checkpoint to start from when the job has to be submitted; V(none) forces
          an empty start.
        type: str
      upgrade_mode:
        description: How V(upgraded) moves a live job to the declared spec.
        type: str
        choices: [savepoint, last-state, stateless]
        default: savepoint
      allow_non_restored_state:
        description: With O(jobs[].restore_from), skip state that maps to no operator.
        type: bool
        default: false
      allow_no_rollback:
        description: Upgrade although the previous version could not be started again.
        type: bool
        default: false
      savepoint:
        description: With V(absent), stop the job with a savepoint instead of cancelling it.
        type: bool
        default: false
      savepoint_dir:
        description: Directory for savepoints of this job; defaults to the cluster's default savepoint directory.
        type: str
      wait:
        description: Wait for the health gate (or, with V(absent), for the job to end).
        type: bool
        default: true
      healthy_for:
        description: Seconds every task of a new instance must stay C(RUNNING) with no failure.
        type: int
        default: 10
      wait_for_checkpoint:
        description: Also wait for the new instance's first completed checkpoint.
        type: bool
        default: false
      rollback_timeout:
        description: The part of the job's wait_timeout reserved for putting the previous version back.
        type: int
        default: 60
      wait_timeout:
        description:
          - This job's budget in seconds, counted from when its turn comes (after the planning step, and once one of
            the O(max_parallel) places is free). Defaults to the module's O(wait_timeout).
        type: int
  scope:
    description:
      - The name of the set. Every job the set starts records it; O(prune=true) stops only jobs that carry it.
      - A live job of the set whose record carries another scope (or none, for example because it was started by
        P(flinkops.flink.flink_job#module) before) is left alone by V(present), with a warning, and restarted
        through a savepoint with this scope's record by V(upgraded).
      - Moving a job from one set to another. Declare it in the new set with V(upgraded) first, then remove it from
        the old set; pruning the old set before would stop it (with a savepoint, from which the new set resumes it).
    type: str
  prune:
    description:
      - Stop the live jobs that carry this set's O(scope) in their record but are not in O(jobs).
      - Needs O(scope). Pruning happens in the same run, alongside the declared jobs.
      - An empty O(jobs) is refused with O(prune=true), because it would stop the whole set; list the jobs with
        C(state=absent) to remove a whole set.
    type: bool
    default: false
  prune_savepoint:
    description:
      - V(true) stops each pruned job with a savepoint (its path is in the job's C(savepoint) result), so it can be
        brought back later; V(false) cancels it.
    type: bool
    default: true
  prune_savepoint_dir:
    description:
      - Directory for the savepoints of pruned jobs. Defaults to the cluster's default savepoint directory, which is
        then checked before anything is touched.
    type: str
  max_parallel:
    description:
      - How many jobs are planned, and how many act, at the same time. V(1) handles them one after the other.
    type: int
    default: 5
notes:
  - The module's O(wait_timeout) is each job's budget, not the budget of the whole run. A run takes about as long as
    its slowest wave of O(max_parallel) jobs.
  - A job's warnings name the job. Its result in RV(jobs) has the same keys as P(flinkops.flink.flink_job#module)'s
    result, plus RV(jobs[].name), RV(jobs[].pruned) and, for a job that failed, RV(jobs[].failed) and RV(jobs[].msg).
  - Jars that upgrades replaced are removed once every job of the set is done, unless a live job still runs them.
seealso:
  - module: flinkops.flink.flink_job
  - name: The flink_jobs role
    description: Declares the jobs of a cluster with this module, from inventory variables.
    link: https://github.com/flinkops/flinkops.flink/tree/main/roles/flink_jobs
'''

EXAMPLES = r'''
- name: The jobs of the orders team, and nothing else of theirs
  flinkops.flink.flink_job_set:
    url: http://flink-jobmanager:8081
    scope: orders
    prune: true
    max_parallel: 5
    jobs:
      - name: orders-enrichment
        state: upgraded
        jar: /opt/jobs/orders-enrichment-1.5.0.jar
        parallelism: 4
      - name: orders-audit
        jar: /opt/jobs/orders-audit-2.0.1.jar
        args: [--topic, orders]
  register: orders

- name: Show where the pruned jobs' savepoints went
  ansible.builtin.debug:
    msg: "{{ orders.jobs | selectattr('pruned') | map(attribute='savepoint') | list }}"
'''

RETURN = r'''
jobs:
  description:
    - One result per declared job, in the order of O(jobs), then one per pruned job.
    - Each has the keys of P(flinkops.flink.flink_job#module)'s result (action, job_id, job, health, generation,
      savepoint, restored_from, new_job_id, ...) and the ones below.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The job's name as declared (for a pruned job, as its record says).
      type: str
      sample: orders-enrichment
    action:
      description: What was done (or would be), as in P(flinkops.flink.flink_job#module)'s result.
      type: str
      sample: upgraded
    changed:
      description: Whether this job changed.
      type: bool
      sample: true
    pruned:
      description: True for a job that pruning stopped (or would stop).
      type: bool
      sample: false
    failed:
      description: True when this job failed; the others went on.
      type: bool
      sample: true
    msg:
      description: Why this job failed.
      type: str
      sample: Upgrade of job 'orders-audit' was rolled back
    planned_action:
      description: When the run failed in its planning step, what this job would have done.
      type: str
      sample: upgrade
  sample:
    - name: orders-enrichment
      action: upgraded
      changed: true
      pruned: false
      job_id: 3f6c1e0a9b2d4c5e0000000000000002
pruned:
  description: Names of the jobs pruning stopped (or would stop, in check mode).
  returned: always
  type: list
  elements: str
  sample: [orders-legacy]
scope:
  description: The set's O(scope).
  returned: always
  type: str
  sample: orders
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.flinkops.flink.plugins.module_utils._common import (
    client_from_module,
    connection_argument_spec,
    hide_sensitive_values,
    run_module,
)
from ansible_collections.flinkops.flink.plugins.module_utils._fleet import FleetReconciler, Member
from ansible_collections.flinkops.flink.plugins.module_utils._job_spec import (
    job_argument_spec,
    job_mutually_exclusive,
    job_required_if,
)
from ansible_collections.flinkops.flink.plugins.module_utils._model import Desired, InputError


def main():
    argument_spec = connection_argument_spec()
    job_options = job_argument_spec()
    job_options['wait_timeout'] = dict(type='int')
    argument_spec.update(
        jobs=dict(type='list', elements='dict', required=True, options=job_options, required_if=job_required_if(),
                  mutually_exclusive=job_mutually_exclusive()),
        scope=dict(type='str'),
        prune=dict(type='bool', default=False),
        prune_savepoint=dict(type='bool', default=True),
        prune_savepoint_dir=dict(type='str'),
        max_parallel=dict(type='int', default=5),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('prune', True, ['scope'])])
    p = module.params
    for job in p['jobs']:
        hide_sensitive_values(module, job['config'])
    # Checks the connection options once, before anything is sent. Every job gets its own client and budget, all
    # on this client's session: its kept-alive connections serve the whole set (one TLS handshake per thread, not
    # one per job).
    session = client_from_module(module).session

    def connect(timeout):
        return client_from_module(module, timeout, session=session)

    scope = p['scope'] or None     # an empty scope (a templated default) is no scope

    def work():
        members = []
        for job in p['jobs']:
            timeout = job['wait_timeout'] if job['wait_timeout'] is not None else p['wait_timeout']
            if timeout < 0:
                raise InputError('job %r: wait_timeout must be 0 or more, got %d' % (job['name'], timeout))
            try:
                desired = Desired(
                    name=job['name'], state=job['state'], jar=job['jar'], sql=job['sql'], sql_file=job['sql_file'],
                    python=job['python'], python_module=job['python_module'],
                    entry_class=job['entry_class'],
                    args=job['args'], secret_args=job['secret_args'], parallelism=job['parallelism'],
                    config=job['config'], restore_from=job['restore_from'],
                    allow_non_restored_state=job['allow_non_restored_state'],
                    allow_no_rollback=job['allow_no_rollback'], savepoint=job['savepoint'],
                    savepoint_dir=job['savepoint_dir'], wait=job['wait'], upgrade_mode=job['upgrade_mode'],
                    healthy_for=job['healthy_for'], wait_for_checkpoint=job['wait_for_checkpoint'],
                    rollback_timeout=job['rollback_timeout'], wait_timeout=timeout, scope=scope)
            except InputError as exc:
                raise InputError('job %r: %s. Nothing was changed.' % (job['name'], exc.msg))
            members.append(Member(desired, timeout))
        fleet = FleetReconciler(connect, members, scope=scope, prune=p['prune'],
                                prune_savepoint=p['prune_savepoint'], prune_savepoint_dir=p['prune_savepoint_dir'],
                                prune_timeout=p['wait_timeout'], max_parallel=p['max_parallel'],
                                check_mode=module.check_mode, diff=module._diff, warn=module.warn)
        return fleet.run()

    result = run_module(module, work)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
