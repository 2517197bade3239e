# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""flink_savepoint: trigger a savepoint of a running job, or dispose one through Flink."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
import uuid

from ansible_collections.flinkops.flink.plugins.module_utils._api import FlinkApiError, FlinkLostAnswer, root_cause
from ansible_collections.flinkops.flink.plugins.module_utils._model import InputError, PlanError, describe, is_live
from ansible_collections.flinkops.flink.plugins.module_utils._plan import Observation
from ansible_collections.flinkops.flink.plugins.module_utils._service import FlinkJobs
from ansible_collections.flinkops.flink.plugins.module_utils._waiter import POLL_INTERVAL

# Disposal failures that mean "there is nothing (left) to dispose".
_GONE_MARKERS = ('filenotfoundexception', 'does not exist', 'cannot find', 'no such file')


def find_live_job(api, name=None, job_id=None):
    """The one live job to take a savepoint of, by flinkops name or by id."""
    if job_id:
        view = api.job(job_id.lower())
        if view is None or not is_live(view):
            raise PlanError('Job %s is not running (%s); no savepoint taken'
                            % (job_id, view['state'] if view else 'unknown to the cluster'))
        return view
    obs = Observation(name, api.overview())
    live = [j for j in obs.own if is_live(j)]
    if not live:
        # A job started outside flinkops under this Flink name: flink_job's adoption rule decides.
        named = [j for j in obs.named if is_live(j)]
        obs.records.update((j['id'], api.record(j['id'])) for j in named)
        live = [j for j in named if obs.adoptable(j)]
    if not live:
        raise PlanError('No live job named %r; no savepoint taken' % name)
    if len(live) > 1:
        raise PlanError('More than one live job claims the name %r: %s; give job_id' % (name, describe(live)))
    return live[0]


class SavepointManager(object):
    def __init__(self, client, check_mode=False, sleep=time.sleep):
        self.client = client
        self.api = FlinkJobs(client, sleep=sleep)
        self.check_mode = check_mode
        self._sleep = sleep

    def take(self, name=None, job_id=None, target_dir=None):
        self.api.capabilities()
        job = find_live_job(self.api, name, job_id)
        result = {'changed': True, 'job_id': job['id'], 'job': job, 'savepoint': None}
        if self.check_mode:
            return result
        trigger_id = uuid.uuid4().hex

        def trigger():
            self.api.trigger_savepoint(job['id'], trigger_id, target_dir)
        trigger()
        result['savepoint'] = self.api.wait_savepoint(
            job['id'], trigger_id, trigger, self.client.deadline,
            'Could not take a savepoint of job %s (%s)' % (job['id'], job['name']))
        return result

    def dispose(self, path):
        if not path or not path.strip():
            raise InputError('path must name the savepoint to dispose')
        self.api.capabilities()
        result = {'changed': True, 'savepoint': path}
        if self.check_mode:
            return result
        deadline = self.client.deadline
        sent = False
        while True:
            try:
                answer = self.api.dispose_savepoint(path)
                break
            except FlinkLostAnswer:
                # It may have been carried out: if the next attempt finds nothing, this run deleted it.
                sent = True
                if deadline.expired():
                    raise FlinkApiError('Could not dispose savepoint %s: no answer within wait_timeout=%.0f s'
                                        % (path, deadline.timeout))
                self._sleep(min(POLL_INTERVAL, deadline.remaining()))
        trigger_id = answer.get('request-id')
        while True:
            status = self.api.disposal_status(trigger_id)
            if status and (status.get('status') or {}).get('id') == 'COMPLETED':
                failure = (status.get('operation') or {}).get('failure-cause')
                if not failure:
                    return result
                cause = root_cause({'errors': [failure.get('stack-trace') or failure.get('class') or '']})
                if any(m in cause.lower() for m in _GONE_MARKERS):
                    # Gone: by an earlier attempt of this run whose answer was lost, or before this run.
                    result['changed'] = sent
                    return result
                raise FlinkApiError('Could not dispose savepoint %s: %s' % (path, cause), cause=cause)
            if deadline.expired():
                raise FlinkApiError('Disposing savepoint %s did not complete within wait_timeout=%.0f s'
                                    % (path, deadline.timeout))
            self._sleep(min(POLL_INTERVAL, deadline.remaining()))
