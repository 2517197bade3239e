#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: flink_cluster_info
short_description: Tell whether a Flink cluster answers, and what it has
version_added: 0.1.0
description:
  - Reads the overview of a Flink cluster from its REST API (C(GET /overview)) - Flink version, task managers, slots
    and job counts.
  - An unreachable cluster (or one that stays "not ready", for example during a leader election, for O(wait_timeout)
    seconds) is not an error; the module returns RV(reachable=false). Wrong credentials or TLS settings are errors.
author:
  - flinkops maintainers (@flinkops)
extends_documentation_fragment:
  - flinkops.flink.connection
  - flinkops.flink.attributes
  - flinkops.flink.attributes.info_module
options: {}
seealso:
  - module: flinkops.flink.flink_job_info
'''

EXAMPLES = r'''
- name: Wait up to five minutes for the cluster to take jobs
  flinkops.flink.flink_cluster_info:
    url: http://flink-jobmanager:8081
    wait_timeout: 300
  register: cluster
  until: cluster.reachable and cluster.slots_total > 0
  retries: 30
  delay: 10

- name: Quick health check that does not wait
  flinkops.flink.flink_cluster_info:
    url: [http://jm-1:8081, http://jm-2:8081]
    wait_timeout: 0
  register: cluster
'''

RETURN = r'''
reachable:
  description: Whether the cluster answered within O(wait_timeout).
  returned: always
  type: bool
  sample: true
url:
  description: The REST endpoint that answered.
  returned: when reachable
  type: str
  sample: http://flink-jobmanager:8081
flink_version:
  description: Flink version of the cluster.
  returned: when reachable
  type: str
  sample: 2.3.0
flink_commit:
  description: Commit id of the Flink build.
  returned: when reachable
  type: str
  sample: 9a7b1d2
taskmanagers:
  description: Number of registered task managers.
  returned: when reachable
  type: int
  sample: 2
slots_total:
  description: Task slots of all task managers.
  returned: when reachable
  type: int
  sample: 8
slots_available:
  description: Free task slots.
  returned: when reachable
  type: int
  sample: 6
jobs:
  description: Number of jobs by state group.
  returned: when reachable
  type: dict
  contains:
    running:
      description: Jobs that have not ended.
      type: int
      sample: 1
    finished:
      description: Finished jobs still listed.
      type: int
      sample: 0
    cancelled:
      description: Cancelled jobs still listed.
      type: int
      sample: 0
    failed:
      description: Failed jobs still listed.
      type: int
      sample: 0
  sample: {running: 1, finished: 0, cancelled: 0, failed: 0}
msg:
  description: Why the cluster is not reachable.
  returned: when not reachable
  type: str
  sample: "Flink was not ready to read the cluster overview within wait_timeout=0 s; last problem: connection refused"
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.flinkops.flink.plugins.module_utils._api import FlinkNotReadyTimeout
from ansible_collections.flinkops.flink.plugins.module_utils._service import FlinkJobs
from ansible_collections.flinkops.flink.plugins.module_utils._common import (
    client_from_module,
    connection_argument_spec,
    run_module,
)


def summarize(overview, url):
    return dict(
        reachable=True,
        url=url,
        flink_version=overview.get('flink-version'),
        flink_commit=overview.get('flink-commit'),
        taskmanagers=overview.get('taskmanagers', 0),
        slots_total=overview.get('slots-total', 0),
        slots_available=overview.get('slots-available', 0),
        jobs=dict(
            running=overview.get('jobs-running', 0),
            finished=overview.get('jobs-finished', 0),
            cancelled=overview.get('jobs-cancelled', 0),
            failed=overview.get('jobs-failed', 0),
        ),
    )


def main():
    module = AnsibleModule(argument_spec=connection_argument_spec(), supports_check_mode=True)

    def work():
        client = client_from_module(module)
        try:
            FlinkJobs(client).capabilities()
            overview = client.get('/overview', 'read the cluster overview')
        except FlinkNotReadyTimeout as exc:
            return dict(reachable=False, msg=exc.msg)
        return summarize(overview, client.url)

    module.exit_json(changed=False, **run_module(module, work))


if __name__ == '__main__':
    main()
