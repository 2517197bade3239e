# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""Jobs across a JobManager restart that Flink would not survive by itself.

A JobManager without high availability forgets every job when it restarts. To
restart one that runs jobs without losing their state, the jobs are taken out
first with stop-with-savepoint (``suspend``) and started again from those
savepoints once the JobManager is back (``resume``), under the same identity
and record flink_job gives them, so flink_job finds them unchanged afterwards.

What was taken out is written to a *handover file* on the JobManager host
before each job is touched, and completed with the savepoint when it is known:
a run that dies between the two steps leaves the file, and the next run
resumes from it. The job's jar is copied next to the file, since the
JobManager's upload directory may not survive the restart.

A job that cannot be brought back (no readable record: started by hand or by
another tool; started with secret values, which are never recorded; its jar not
found on the host) stops the suspension before anything is touched, unless the
caller says to cancel such jobs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import tempfile
import time

from ansible_collections.flinkops.flink.plugins.module_utils._api import FlinkApiError, FlinkError
from ansible_collections.flinkops.flink.plugins.module_utils._health import CHECKPOINTING_DISABLED
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils._model import (
    Desired,
    Version,
    describe,
    health,
    is_ending,
    is_live,
)
from ansible_collections.flinkops.flink.plugins.module_utils._service import FlinkJobs, restore_point
from ansible_collections.flinkops.flink.plugins.module_utils._waiter import POLL_INTERVAL, WaitTimeout, wait_for

HANDOVER_VERSION = 1
UNRECORDED_CHOICES = ('fail', 'cancel')


class HandoverError(FlinkError):
    """The handover cannot go on; the message says what was done and what is left."""

    def __init__(self, msg, result=None, **kwargs):
        super(HandoverError, self).__init__(msg, **kwargs)
        self.result = result or {}


# -- the handover file ------------------------------------------------------------------


def load(path):
    """The handover file's content, or None when there is none. A damaged file is an error, never "no jobs"."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except (IOError, OSError, ValueError) as exc:
        raise HandoverError('The handover file %s cannot be read (%s). It lists jobs taken out of the cluster with a '
                            'savepoint to be started again; look at it before removing it.' % (path, exc))
    if not isinstance(data, dict) or data.get('version') != HANDOVER_VERSION or not isinstance(data.get('jobs'), list):
        raise HandoverError('The handover file %s is not in the format this collection writes (version %d). Look at '
                            'it before removing it.' % (path, HANDOVER_VERSION))
    return data


def save(path, data):
    """Write atomically (a new file renamed over the old one), readable by its owner only."""
    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd, tmp = tempfile.mkstemp(prefix='.handover-', dir=directory)
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def jar_store(path):
    """Where the jars of a handover file are kept."""
    return path + '.jars'


def find_jar_file(jar_id, jar_dirs):
    """Path of the file Flink keeps for ``jar_id`` (its upload name) under one of ``jar_dirs``, or None."""
    if not jar_id:
        return None
    for top in jar_dirs:
        for root, _dirs, files in os.walk(top):
            if jar_id in files:
                return os.path.join(root, jar_id)
    return None


class Handover(object):
    """Suspend, resume and settle the jobs of one cluster. Each method returns the module result."""

    def __init__(self, client, path=None, jar_dirs=(), unrecorded='fail', savepoint_dir=None, healthy_for=10,
                 check_mode=False, diff=False, warn=None, sleep=time.sleep, reconciler=None):
        if unrecorded not in UNRECORDED_CHOICES:
            raise HandoverError('unrecorded must be one of %s, got %r' % (', '.join(UNRECORDED_CHOICES), unrecorded))
        self.client = client
        self.api = FlinkJobs(client, sleep=sleep)
        self.path = path
        self.jar_dirs = [d for d in (jar_dirs or []) if d]
        self.unrecorded = unrecorded
        self.savepoint_dir = savepoint_dir
        self.healthy_for = healthy_for
        self.check_mode = check_mode
        self.diff = diff
        self.warn = warn or (lambda msg: None)
        self._sleep = sleep
        if reconciler is None:
            from ansible_collections.flinkops.flink.plugins.module_utils._job import JobReconciler
            reconciler = JobReconciler
        self._reconciler = reconciler

    def _run_job(self, desired):
        return self._reconciler(self.client, desired, warn=self.warn, sleep=self._sleep).run()

    # -- suspend --------------------------------------------------------------------------
    def _classify(self, job):
        """(record, jar file, None) for a job that can be brought back, else (record, None, reason)."""
        record = self.api.record(job['id'])
        if record is None:
            return None, None, 'it carries no flinkops record (started by hand or by another tool)'
        if record.version != ident.RECORD_VERSION or not record.name:
            return record, None, 'its record is of an old format that does not name the job'
        if record.has_secrets():
            return record, None, ('it was started with secret values (secret_args or sensitive config), which are '
                                  'never recorded, so they cannot be given again')
        # A SQL job's jar is the SQL runner, which every run has (Version knows it); any other is looked for among
        # the uploaded jars.
        jar_file = Version(record.name, record.spec).jar_path
        jar_id = None
        if jar_file is None:
            jar_id = self.api.find_jar(record.spec.jar_sha256)
            jar_file = find_jar_file(jar_id, self.jar_dirs)
        if jar_file is None:
            return record, None, ('its jar (sha256 %s, %s) is not among the uploaded jars in %s'
                                  % (record.spec.jar_sha256[:16], record.jar_name or jar_id or 'not listed by Flink',
                                     ', '.join(self.jar_dirs) or 'no jar directory given'))
        return record, jar_file, None

    def suspend(self):
        self.api.capabilities()
        data = load(self.path) or {'version': HANDOVER_VERSION, 'jobs': []}
        jobs = self.api.overview()
        live = [j for j in jobs if is_live(j) and not is_ending(j)]
        ending = [j for j in jobs if is_live(j) and is_ending(j)]
        keep, refused = [], []
        for job in live:
            record, jar_file, reason = self._classify(job)
            if reason is None:
                keep.append((job, record, jar_file))
            else:
                refused.append((job, reason))
        if refused and self.unrecorded == 'fail':
            raise HandoverError(
                'The cluster runs jobs that could not be started again after the restart: %s. Nothing was stopped '
                'and nothing restarted. Deploy them with flink_job (so they carry a record and no secret values), '
                'stop them yourself, or let the restart cancel such jobs (unrecorded=cancel; the flink_cluster '
                'role: flink_cluster_restart_unrecorded_jobs: cancel).'
                % '; '.join('%s (%s): %s' % (j['name'], j['id'], why) for j, why in refused))
        savepoint_dir = self.savepoint_dir
        if keep and not savepoint_dir:
            savepoint_dir = self.api.default_savepoint_dir()
            if not savepoint_dir:
                raise HandoverError('Taking jobs out with a savepoint needs a savepoint directory: set savepoint_dir or '
                                    'state.savepoints.dir / execution.checkpointing.savepoint-dir in the cluster '
                                    'configuration. Nothing was stopped.')
        planned = [self._entry(job, record) for job, record, _jar in keep]
        cancelled = [{'name': j['name'], 'job_id': j['id'], 'action': 'cancelled', 'reason': why} for j, why in refused]
        result = {
            'changed': bool(keep or refused),
            'handover_file': self.path,
            'jobs': [dict(e, action='stopped') for e in planned] + cancelled,
            'pending': [dict(e) for e in data['jobs']],
        }
        if ending:
            result['ending'] = [j['id'] for j in ending]
        if self.diff:
            result['diff'] = {
                'before': {'running': sorted('%s (%s)' % (j['name'], j['id']) for j in live)},
                'after': {'running': [],
                          'taken_out_with_savepoint': sorted(e['name'] for e in planned),
                          'cancelled': sorted(c['name'] for c in cancelled)},
            }
        if self.check_mode or not (keep or refused):
            return result
        done = []
        for (job, record, jar_file), entry in zip(keep, planned):
            entry['jar'] = self._keep_jar(jar_file, record)
            data['jobs'].append(entry)
            save(self.path, data)
            try:
                outcome = self._run_job(Desired(record.name, 'absent', savepoint=True, savepoint_dir=savepoint_dir,
                                                wait=True))
            except FlinkError as exc:
                result['jobs'] = done
                raise HandoverError('Taking job %r (%s) out with a savepoint failed: %s. Jobs taken out before it are '
                                    'in the handover file %s; nothing was restarted.'
                                    % (record.name, job['id'], exc.msg, self.path), result=result)
            entry['savepoint'] = outcome.get('savepoint')
            entry['stopped_job_ids'] = outcome.get('job_ids') or [job['id']]
            save(self.path, data)
            done.append(dict(entry, action='stopped'))
        for job, why in refused:
            self.api.cancel(job['id'])
        for job, why in refused:
            self._wait_ended(job['id'])
        for jid in result.get('ending', []):
            self._wait_ended(jid)
        result['jobs'] = done + cancelled
        return result

    @staticmethod
    def _entry(job, record):
        return {
            'name': record.name,
            'job_id': job['id'],
            'flink_name': job['name'],
            'spec': record.spec.core(),
            'jar_name': record.jar_name,
            'restored_from': record.restored_from,
            'jar': None,
            'savepoint': None,
        }

    def _keep_jar(self, jar_file, record):
        store = os.path.join(jar_store(self.path), record.spec.jar_sha256)
        if not os.path.isdir(store):
            os.makedirs(store, 0o700)
        target = os.path.join(store, os.path.basename(record.jar_name or jar_file))
        if not target.endswith('.jar'):
            target += '.jar'
        if not os.path.exists(target) or ident.sha256_file(target) != record.spec.jar_sha256:
            shutil.copyfile(jar_file, target + '.part')
            os.rename(target + '.part', target)
        return target

    def _wait_ended(self, jid):
        try:
            wait_for(lambda: self.api.job(jid), lambda view: view is None or not is_live(view), self.client.deadline,
                     'job %s to end' % jid, sleep=self._sleep)
        except WaitTimeout as exc:
            raise HandoverError('%s; nothing was restarted.' % exc)

    # -- resume --------------------------------------------------------------------------------
    def resume(self):
        self.api.capabilities()
        data = load(self.path)
        if not data or not data['jobs']:
            return {'changed': False, 'handover_file': self.path, 'jobs': []}
        entries = list(data['jobs'])
        for entry in entries:
            if not entry.get('savepoint'):
                entry['savepoint'] = self._find_savepoint(entry)
        result = {'changed': True, 'handover_file': self.path,
                  'jobs': [{'name': e['name'], 'job_id': e['job_id'], 'action': 'resumed',
                            'savepoint': e.get('savepoint')} for e in entries]}
        if self.diff:
            result['diff'] = {'before': {'taken_out_with_savepoint': sorted(e['name'] for e in entries)},
                              'after': {'running': sorted(e['name'] for e in entries)}}
        unknown = [e for e in entries if not e.get('savepoint')]
        if unknown:
            raise HandoverError(
                'The handover file %s lists jobs that were being taken out when an earlier run stopped, and their '
                'savepoint is not known: %s. Nothing was started. Find the savepoint (in the savepoint directory) '
                'and deploy the job with flink_job and restore_from, then remove the entry from the file.'
                % (self.path, ', '.join('%s (%s)' % (e['name'], e['job_id']) for e in unknown)), result=result)
        if self.check_mode:
            return result
        done, failed = [], []
        for entry in entries:
            spec = entry['spec']
            try:
                # A SQL job's program is its statements (its jar, the SQL runner, comes with them); any other
                # job's the jar kept for it.
                program = dict(sql=spec['sql']) if spec.get('sql') is not None else dict(
                    jar=entry['jar'], entry_class=spec.get('entry_class'), args=spec.get('args'))
                desired = Desired(entry['name'], 'present', parallelism=spec.get('parallelism'),
                                  config=spec.get('config'), restore_from=entry['savepoint'], wait=True,
                                  healthy_for=self.healthy_for, **program)
                outcome = self._run_job(desired)
            except FlinkError as exc:
                failed.append('%s: %s' % (entry['name'], exc.msg))
                continue
            done.append({'name': entry['name'], 'job_id': outcome.get('job_id'), 'previous_job_id': entry['job_id'],
                         'action': 'resumed' if outcome.get('changed') else 'already_running',
                         'savepoint': entry['savepoint']})
            data['jobs'] = [e for e in data['jobs'] if e is not entry]
            save(self.path, data)
        result['jobs'] = done
        if failed:
            raise HandoverError('Could not start again every job taken out with a savepoint: %s. They stay in the '
                                'handover file %s; the next run tries again.' % ('; '.join(failed), self.path),
                                result=result)
        os.unlink(self.path)
        shutil.rmtree(jar_store(self.path), ignore_errors=True)
        return result

    def _find_savepoint(self, entry):
        """The savepoint of a job whose stop finished after the run that started it died, if Flink still knows it."""
        for jid in entry.get('stopped_job_ids') or [entry['job_id']]:
            try:
                point = restore_point(self.api.checkpoints(jid))
            except FlinkApiError:
                point = None
            if point and point[1] == 'savepoint':
                return point[0]
        return None

    # -- settle ------------------------------------------------------------------------------
    def settle(self, job_ids=None, taskmanagers=0, slots=0):
        """Wait until the cluster answers with its TaskManagers and slots and the given jobs are healthy again."""
        job_ids = list(job_ids or [])
        state = {}

        def read():
            self.api.capabilities()
            state['overview'] = self.client.get('/overview', 'read the cluster overview')
            state['jobs'] = dict((j['id'], j) for j in self.api.overview())
            return state

        def settled(_state):
            overview, jobs = state['overview'], state['jobs']
            ended = [jobs[j] for j in job_ids if j in jobs and not is_live(jobs[j])]
            if ended:
                raise HandoverError('Job(s) ended while the cluster restarted: %s.' % describe(ended),
                                    result=self._settle_result(state, job_ids))
            if overview.get('taskmanagers', 0) < taskmanagers or overview.get('slots-total', 0) < slots:
                return False
            return all(j in jobs and health(jobs[j]) == 'healthy' for j in job_ids)

        try:
            wait_for(read, settled, self.client.deadline, 'the cluster to come back with %d TaskManager(s), %d slot(s) '
                     'and job(s) %s running' % (taskmanagers, slots, ', '.join(job_ids) or 'none'),
                     sleep=self._sleep, interval=POLL_INTERVAL)
        except WaitTimeout as exc:
            raise HandoverError(str(exc), result=self._settle_result(state, job_ids))
        result = self._settle_result(state, job_ids)
        for job in result['jobs']:
            if job.get('state') not in (None, 'unknown') and is_live(job):
                job['checkpointing'] = self._checkpointing(job['id'])
        return result

    def _checkpointing(self, jid):
        """Whether a job takes periodic checkpoints (Flink reports the interval Long.MAX_VALUE when it does not).

        A job without them cannot survive any restart with its state: Flink restarts it from nothing (or, with
        the default restart strategy of such jobs, not at all).
        """
        conf = self.api.checkpoint_config(jid) or {}
        interval = conf.get('interval')
        return isinstance(interval, int) and 0 < interval < CHECKPOINTING_DISABLED

    @staticmethod
    def _settle_result(state, job_ids):
        overview = state.get('overview') or {}
        jobs = state.get('jobs') or {}
        return {
            'changed': False,
            'taskmanagers': overview.get('taskmanagers'),
            'slots_total': overview.get('slots-total'),
            'jobs': [dict(jobs[j], health=health(jobs[j])) if j in jobs else {'id': j, 'state': 'unknown'}
                     for j in job_ids] if job_ids else
            [dict(j, health=health(j)) for j in jobs.values() if is_live(j)],
        }
