#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: flink_job_info
short_description: List Flink jobs by name and state
version_added: 0.1.0
description:
  - Reads the jobs of a Flink cluster from its REST API (C(GET /jobs/overview)), optionally only those of one job
    name or in some states.
  - With O(name), a job matches when its id belongs to that name under the flinkops identity scheme (see
    M(flinkops.flink.flink_job)) or when its Flink name equals O(name).
  - Flink lists ended jobs only for a while (C(jobstore.expiration-time), one hour by default).
author:
  - flinkops maintainers (@flinkops)
extends_documentation_fragment:
  - flinkops.flink.connection
  - flinkops.flink.attributes
  - flinkops.flink.attributes.info_module
options:
  name:
    description:
      - Only jobs of this name (as M(flinkops.flink.flink_job) knows it, or the job's Flink name).
    type: str
  job_id:
    description:
      - Only the job with this id.
    type: str
  states:
    description:
      - Only jobs in these Flink states, for example V(RUNNING). Case does not matter.
    type: list
    elements: str
  live:
    description:
      - V(true) lists only jobs that have not ended; V(false) only ended jobs; unset lists both.
    type: bool
seealso:
  - module: flinkops.flink.flink_job
'''

EXAMPLES = r'''
- name: All jobs of the cluster
  flinkops.flink.flink_job_info:
    url: http://flink-jobmanager:8081
  register: all_jobs

- name: The live instances of one job
  flinkops.flink.flink_job_info:
    url: http://flink-jobmanager:8081
    name: orders-enrichment
    live: true
  register: orders

- name: Fail when more than one instance runs
  ansible.builtin.assert:
    that: orders.jobs | length <= 1
'''

RETURN = r'''
jobs:
  description: The matching jobs, newest start time first.
  returned: always
  type: list
  elements: dict
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
    live:
      description: Whether the job has not ended (its state is not FINISHED, CANCELED or FAILED).
      type: bool
      sample: true
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
      description: Generation part of the job id under the flinkops scheme (meaningful for jobs flink_job started).
      type: int
      sample: 0
    health:
      description: For live jobs, how the job is doing from Flink's status and task counts (V(healthy), V(starting),
        V(restarting), V(failing), V(cancelling)); null for ended jobs.
      type: str
      sample: healthy
    tasks:
      description: Flink's task counts per state (C(running), C(total), ...) from C(GET /jobs/overview).
      type: dict
      sample: {running: 5, total: 5}
    managed:
      description: With O(name), whether the job id follows the flinkops scheme for that name (false for a job started
        by hand and matched by its Flink name). Null without O(name).
      type: bool
      sample: true
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.flinkops.flink.plugins.module_utils._common import (
    client_from_module,
    connection_argument_spec,
    run_module,
)
from ansible_collections.flinkops.flink.plugins.module_utils._model import health, is_live
from ansible_collections.flinkops.flink.plugins.module_utils._service import FlinkJobs
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident


def select(jobs, name=None, job_id=None, states=None, live=None):
    wanted_states = set(s.upper() for s in states) if states else None
    out = []
    for job in jobs:
        managed = None
        if name is not None:
            managed = ident.belongs_to(job['id'], name)
            if not managed and job['name'] != name:
                continue
        if job_id is not None and job['id'] != job_id.lower():
            continue
        if wanted_states is not None and job['state'] not in wanted_states:
            continue
        if live is not None and is_live(job) != live:
            continue
        item = dict(job, live=is_live(job), managed=managed, health=health(job))
        out.append(item)
    out.sort(key=lambda j: j['start_time_ms'] or 0, reverse=True)
    return out


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        name=dict(type='str'),
        job_id=dict(type='str'),
        states=dict(type='list', elements='str'),
        live=dict(type='bool'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    def work():
        api = FlinkJobs(client_from_module(module))
        api.capabilities()
        jobs = api.overview()
        return select(jobs, name=p['name'], job_id=p['job_id'], states=p['states'], live=p['live'])

    module.exit_json(changed=False, jobs=run_module(module, work))


if __name__ == '__main__':
    main()
