# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""The flink_job reconciler: observe -> plan -> act.

* observe: one ``GET /jobs/overview`` (the only request of a no-op run).
* plan: pure functions of the desired job and the observed jobs; check mode
  stops here and reports the plan.
* act: upload the jar if its bytes are not on the cluster yet, submit under the
  deterministic id (see ``_identity``), cancel or stop with a savepoint, and
  wait, all bounded by one deadline.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time
import uuid
import zipfile
from datetime import datetime

from ansible_collections.flinkops.flink.plugins.module_utils._api import (
    FlinkApiError,
    FlinkError,
    FlinkLostAnswer,
    is_duplicate_submission,
    root_cause,
)
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident

TERMINAL_STATES = frozenset(['FINISHED', 'CANCELED', 'FAILED'])
ENDING_STATES = frozenset(['CANCELLING'])
POLL_INTERVAL = 0.5
# A generation is bumped only past instances that ended; this bounds the walk
# past ids Flink still remembers but no longer lists (non-HA clusters keep them
# until the JobManager restarts).
MAX_GENERATION_STEPS = 64


class PlanError(FlinkError):
    """The observed cluster does not allow a safe decision."""


class InputError(FlinkError):
    """The module's own input is wrong; nothing was sent."""


# ---------------------------------------------------------------------------
# Observed jobs


def job_view(raw):
    """A stable, documented shape for a job from ``/jobs/overview`` or ``/jobs/<id>``."""
    jid = raw.get('jid') or raw.get('id')
    start = raw.get('start-time')
    end = raw.get('end-time')
    view = {
        'id': jid,
        'name': raw.get('name'),
        'state': raw.get('state'),
        'start_time_ms': start if isinstance(start, int) and start > 0 else None,
        'end_time_ms': end if isinstance(end, int) and end > 0 else None,
        'duration_ms': raw.get('duration'),
        'start_time': _iso(start),
        'end_time': _iso(end),
    }
    parsed = ident.parse_job_id(jid)
    view['generation'] = parsed.generation if parsed else None
    return view


def _iso(ms):
    if not isinstance(ms, int) or ms <= 0:
        return None
    return datetime.utcfromtimestamp(ms / 1000.0).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'


def is_live(job):
    return job['state'] not in TERMINAL_STATES


def is_ending(job):
    return job['state'] in ENDING_STATES


# ---------------------------------------------------------------------------
# Desired job


class Desired(object):
    """What the user declared, validated and hashed. Raises InputError on bad input."""

    def __init__(self, name, state, jar=None, entry_class=None, args=None, parallelism=None,
                 config=None, restore_from=None, allow_non_restored_state=False, savepoint=False,
                 savepoint_dir=None, wait=True):
        if name is None or not str(name).strip():
            raise InputError('name must not be empty: it is the job\'s identity')
        if name != name.strip():
            raise InputError('name %r has leading or trailing white space' % name)
        self.name = name
        self.state = state
        if parallelism is not None and int(parallelism) < 1:
            raise InputError('parallelism must be 1 or more, got %s' % parallelism)
        if entry_class is not None and not entry_class.strip():
            raise InputError('entry_class must not be an empty string')
        self.jar = jar
        self.entry_class = entry_class
        self.args = list(args or [])
        self.parallelism = parallelism
        self.config = ident.normalize_config(config)
        self.restore_from = restore_from
        self.allow_non_restored_state = bool(allow_non_restored_state)
        self.savepoint = bool(savepoint)
        self.savepoint_dir = savepoint_dir
        self.wait = bool(wait)
        self.jar_sha256 = None
        self.spec = None
        self.spec_hash = None
        if state in ('present', 'upgraded'):
            if not jar:
                raise InputError('jar is required when state=%s' % state)
            self.jar_sha256 = check_jar(jar)
            self.spec = ident.canonical_spec(self.jar_sha256, entry_class, self.args, parallelism, config)
            self.spec_hash = ident.spec_hash(self.spec)

    def job_id(self, generation):
        return ident.job_id(self.name, self.spec_hash, generation)


def check_jar(path):
    """SHA-256 of a readable jar file; InputError names what is wrong with it."""
    if not os.path.exists(path):
        raise InputError('jar %s does not exist on the host the module runs on' % path)
    if not os.path.isfile(path):
        raise InputError('jar %s is not a regular file' % path)
    if not os.access(path, os.R_OK):
        raise InputError('jar %s is not readable' % path)
    try:
        ok = zipfile.is_zipfile(path)
    except (IOError, OSError) as exc:
        raise InputError('jar %s cannot be read: %s' % (path, exc))
    if not ok:
        raise InputError('%s is not a jar file (not a zip archive)' % path)
    return ident.sha256_file(path)


# ---------------------------------------------------------------------------
# Plan (pure)


class Plan(object):
    def __init__(self, action, job_id=None, generation=None, live=None, targets=None,
                 adopted=False, drift=False, wait_for=None, known_ended=None, warnings=None):
        self.action = action          # none | submit | cancel | stop
        self.job_id = job_id          # the job the result is about
        self.generation = generation  # for submit
        self.live = live              # the live job (present, none)
        self.targets = targets or []  # jobs to cancel/stop (absent)
        self.adopted = adopted
        self.drift = drift
        self.wait_for = wait_for or []      # ids still CANCELLING, waited out before submitting
        self.known_ended = known_ended or set()  # ids of ours that ended before this run
        self.warnings = warnings or []

    @property
    def changes(self):
        return self.action != 'none'


def _instances(name, jobs):
    """(ours, named): jobs with our id scheme for ``name``, and others whose Flink name is ``name``."""
    ours = [j for j in jobs if ident.belongs_to(j['id'], name)]
    named = [j for j in jobs if j['name'] == name and not ident.belongs_to(j['id'], name)]
    return ours, named


def _describe(jobs):
    return ', '.join('%s (%s, %s)' % (j['id'], j['name'], j['state']) for j in jobs)


def plan_present(desired, jobs):
    ours, named = _instances(desired.name, jobs)
    candidates = ours + named
    live = [j for j in candidates if is_live(j) and not is_ending(j)]
    if len(live) > 1:
        raise PlanError(
            'More than one live job claims the name %r: %s. flink_job adopts exactly one job per name and will not '
            'guess; cancel the extra instances (for example with state=absent, which stops all of them) and run '
            'again.' % (desired.name, _describe(live)))
    if live:
        job = live[0]
        if ident.belongs_to(job['id'], desired.name):
            if ident.runs_spec(job['id'], desired.spec_hash):
                return Plan('none', job_id=job['id'], live=job)
            parsed = ident.parse_job_id(job['id'])
            warning = (
                'Job %r runs another version than the one declared (job id %s carries spec %s, the declared spec is '
                '%s). state=present leaves a running job alone; use state=upgraded to move it to the declared '
                'version.' % (desired.name, job['id'], parsed.spec_prefix, desired.spec_hash[:ident.SPEC_HASH_LEN]))
            return Plan('none', job_id=job['id'], live=job, drift=True, warnings=[warning])
        return Plan('none', job_id=job['id'], live=job, adopted=True)
    ending = [j['id'] for j in candidates if is_ending(j)]
    same_spec = [j for j in ours if ident.runs_spec(j['id'], desired.spec_hash)]
    generation = 0
    if same_spec:
        generation = max(j['generation'] for j in same_spec) + 1
    known_ended = set(j['id'] for j in ours if not is_live(j))
    return Plan('submit', job_id=desired.job_id(generation), generation=generation, wait_for=ending,
                known_ended=known_ended)


def plan_absent(desired, jobs):
    ours, named = _instances(desired.name, jobs)
    live = [j for j in ours + named if is_live(j)]
    to_end = [j for j in live if not is_ending(j)]
    if not live:
        return Plan('none')
    if not to_end:
        # Someone else is already cancelling them: wait, but we changed nothing.
        return Plan('none', job_id=live[0]['id'], wait_for=[j['id'] for j in live])
    return Plan('stop' if desired.savepoint else 'cancel', job_id=to_end[0]['id'], targets=to_end,
                wait_for=[j['id'] for j in live if is_ending(j)])


def plan(desired, jobs):
    if desired.state == 'absent':
        return plan_absent(desired, jobs)
    return plan_present(desired, jobs)


# ---------------------------------------------------------------------------
# Act


def _version_tuple(version):
    parts = []
    for piece in str(version or '').split('.'):
        digits = ''.join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or (0,)


def _jar_missing(exc):
    cause = (exc.cause or exc.msg or '').lower()
    return exc.status == 404 or ('jar file' in cause and 'not exist' in cause)


class FlinkJobs(object):
    """Operations on jobs through a FlinkClient (one method per REST operation)."""

    def __init__(self, client, sleep=time.sleep):
        self.client = client
        self._sleep = sleep
        self._version = None

    # reads
    def overview(self):
        data = self.client.get('/jobs/overview', 'list jobs')
        return [job_view(j) for j in data.get('jobs', [])]

    def job(self, jid):
        data = self.client.get('/jobs/%s' % jid, 'read job %s' % jid, allow_404=True)
        return job_view(data) if data is not None else None

    def version(self):
        if self._version is None:
            data = self.client.get('/config', 'read the cluster configuration')
            self._version = data.get('flink-version') or '0'
        return self._version

    def failure_cause(self, jid):
        data = self.client.get('/jobs/%s/exceptions' % jid, 'read the exceptions of job %s' % jid, allow_404=True)
        if not data:
            return None
        entries = (data.get('exceptionHistory') or {}).get('entries') or []
        if entries:
            return root_cause({'errors': [entries[0].get('stacktrace') or entries[0].get('exceptionName') or '']})
        if data.get('root-exception'):
            return root_cause({'errors': [data['root-exception']]})
        return None

    # jars
    def find_jar(self, jar_sha256):
        marker = 'flinkops-%s-' % jar_sha256[:16]
        data = self.client.get('/jars', 'list uploaded jars')
        for f in data.get('files', []) or []:
            if str(f.get('name', '')).startswith(marker):
                return f['id']
        return None

    def upload_jar(self, path, jar_sha256):
        base = os.path.basename(path)
        if not base.endswith('.jar'):
            base += '.jar'
        upload_name = 'flinkops-%s-%s' % (jar_sha256[:16], base)
        with open(path, 'rb') as fh:
            data = self.client.request('POST', '/jars/upload', 'upload jar %s' % path,
                                       files={'jarfile': (upload_name, fh, 'application/x-java-archive')})
        filename = data.get('filename') or ''
        jar_id = filename.replace('\\', '/').rsplit('/', 1)[-1]
        if not jar_id:
            raise FlinkApiError('Could not upload jar %s: Flink answered without a file name (%r)' % (path, data))
        return jar_id

    # mutations
    def run_jar(self, jar_id, body, what):
        return self.client.request('POST', '/jars/%s/run' % jar_id, what, json_body=body, retry_lost=False)

    def cancel(self, jid):
        self.client.request('PATCH', '/jobs/%s' % jid, 'cancel job %s' % jid, params={'mode': 'cancel'},
                            ok_statuses=(200, 202, 409), allow_404=True)

    def trigger_stop(self, jid, trigger_id, target_dir=None):
        body = {'drain': False, 'triggerId': trigger_id}
        if target_dir:
            body['targetDirectory'] = target_dir
        return self.client.request('POST', '/jobs/%s/stop' % jid, 'stop job %s with a savepoint' % jid,
                                   json_body=body)

    def savepoint_status(self, jid, trigger_id):
        return self.client.get('/jobs/%s/savepoints/%s' % (jid, trigger_id),
                               'read the savepoint status of job %s' % jid, allow_404=True)


class JobReconciler(object):
    """Brings one named job to its desired state. ``run()`` returns the module result."""

    def __init__(self, client, desired, check_mode=False, diff=False, warn=None, sleep=time.sleep):
        self.client = client
        self.api = FlinkJobs(client, sleep=sleep)
        self.desired = desired
        self.check_mode = check_mode
        self.diff = diff
        self.warn = warn or (lambda msg: None)
        self._sleep = sleep
        self.jar_id = None

    @property
    def deadline(self):
        return self.client.deadline

    # -- result helpers --------------------------------------------------
    def _state_of(self, job):
        if job is None:
            return {'state': 'absent'}
        out = {'state': 'running' if is_live(job) else 'absent', 'job_id': job['id'], 'flink_state': job['state'],
               'flink_name': job['name']}
        parsed = ident.parse_job_id(job['id'])
        if ident.belongs_to(job['id'], self.desired.name) and parsed:
            out['spec'] = parsed.spec_prefix
            out['generation'] = parsed.generation
        else:
            out['adopted'] = True
        return out

    def _result(self, changed, action, plan, job=None, before=None, after=None, **extra):
        result = {
            'changed': changed,
            'action': action,
            'job_id': job['id'] if job else plan.job_id,
            'job': job,
            'adopted': plan.adopted,
            'jar_id': self.jar_id,
            'spec_hash': self.desired.spec_hash,
        }
        result.update(extra)
        if self.diff:
            result['diff'] = {'before': before or {}, 'after': after or {}}
        return result

    # -- main --------------------------------------------------------------
    def run(self):
        jobs = self.api.overview()
        the_plan = plan(self.desired, jobs)
        for w in the_plan.warnings:
            self.warn(w)
        if self.desired.state == 'absent':
            return self._absent(the_plan)
        return self._present(the_plan)

    def _present(self, the_plan):
        if the_plan.action == 'none':
            state = self._state_of(the_plan.live)
            return self._result(False, 'none', the_plan, job=the_plan.live, before=state, after=state,
                                drift=the_plan.drift)
        predicted = {'state': 'running', 'job_id': the_plan.job_id, 'spec': self.desired.spec_hash[:8],
                     'generation': the_plan.generation, 'name': self.desired.name}
        before = {'state': 'absent'}
        if self.check_mode:
            return self._result(True, 'submitted', the_plan, before=before, after=predicted,
                                generation=the_plan.generation)
        for jid in the_plan.wait_for:
            self._wait_terminal(jid)
        job, changed, generation = self._submit(the_plan)
        after = dict(predicted, job_id=job['id'], generation=generation, flink_state=job['state'])
        return self._result(changed, 'submitted' if changed else 'none', the_plan, job=job, before=before,
                            after=after, generation=generation)

    def _absent(self, the_plan):
        if the_plan.action == 'none':
            for jid in the_plan.wait_for:
                if not self.check_mode and self.desired.wait:
                    self._wait_terminal(jid)
            return self._result(False, 'none', the_plan, before={'state': 'absent'}, after={'state': 'absent'})
        before = self._state_of(the_plan.targets[0])
        before['job_ids'] = [j['id'] for j in the_plan.targets]
        after = {'state': 'absent'}
        action = 'stopped' if the_plan.action == 'stop' else 'cancelled'
        job_ids = [j['id'] for j in the_plan.targets]
        if self.check_mode:
            return self._result(True, action, the_plan, job=the_plan.targets[0], before=before, after=after,
                                job_ids=job_ids)
        savepoints = []
        for job in the_plan.targets:
            if the_plan.action == 'stop':
                savepoints.append(self._stop_with_savepoint(job['id']))
            else:
                self.api.cancel(job['id'])
        final = None
        if self.desired.wait:
            for jid in job_ids + the_plan.wait_for:
                view = self._wait_terminal(jid)
                if jid == job_ids[0]:
                    final = view
        else:
            final = self.api.job(job_ids[0])
        extra = {'job_ids': job_ids}
        if savepoints:
            extra['savepoint'] = savepoints[0]
            extra['savepoints'] = savepoints
        return self._result(True, action, the_plan, job=final or the_plan.targets[0], before=before, after=after,
                            **extra)

    # -- submission ------------------------------------------------------
    def _ensure_jar(self):
        d = self.desired
        jar_id = self.api.find_jar(d.jar_sha256)
        if jar_id is None:
            jar_id = self.api.upload_jar(d.jar, d.jar_sha256)
        self.jar_id = jar_id
        return jar_id

    def _run_body(self, jid):
        d = self.desired
        body = {'jobId': jid, 'programArgsList': d.args}
        if d.entry_class:
            body['entryClass'] = d.entry_class
        if d.parallelism:
            body['parallelism'] = int(d.parallelism)
        if d.restore_from:
            body['savepointPath'] = d.restore_from
            body['allowNonRestoredState'] = d.allow_non_restored_state
        if d.config:
            if _version_tuple(self.api.version()) < (1, 17):
                raise InputError('config needs Flink 1.17 or newer (the cluster runs %s); nothing was submitted'
                                 % self.api.version())
            body['flinkConfiguration'] = dict(d.config)
        return body

    def _submit(self, the_plan):
        """Submit under the deterministic id. Returns (job view, changed, generation)."""
        d = self.desired
        self._ensure_jar()
        generation = the_plan.generation
        maybe_sent = False
        reuploaded = False
        what = 'start job %r' % d.name
        for _step in range(MAX_GENERATION_STEPS):
            jid = d.job_id(generation)
            try:
                self.api.run_jar(self.jar_id, self._run_body(jid), what)
                return self._after_submit(jid), True, generation
            except FlinkLostAnswer:
                # The submission may have arrived: repeat it under the same id; Flink
                # answers "duplicate" if it did.
                maybe_sent = True
                self._pause('retry %s after a lost answer' % what)
                continue
            except FlinkApiError as exc:
                if is_duplicate_submission(exc.msg):
                    view = self.api.job(jid)
                    if view is not None and is_live(view):
                        if is_ending(view):
                            self._wait_terminal(jid)
                            generation += 1
                            continue
                        # Another run (or our own lost attempt) submitted it: one instance, ours.
                        return self._after_submit(jid), maybe_sent, generation
                    if view is None or jid in the_plan.known_ended:
                        # Flink remembers this id from an instance that ended: next generation.
                        generation += 1
                        maybe_sent = False
                        continue
                    cause = self.api.failure_cause(jid)
                    raise FlinkApiError('Job %r (id %s) ended as %s right after it was submitted: %s'
                                        % (d.name, jid, view['state'], cause or 'no exception reported'))
                if not reuploaded and _jar_missing(exc):
                    # The jar vanished (JobManager restarted with a new web.tmpdir): upload again.
                    reuploaded = True
                    self.jar_id = self.api.upload_jar(d.jar, d.jar_sha256)
                    continue
                raise FlinkApiError('Could not start job %r: %s' % (d.name, exc.cause or exc.msg), status=exc.status,
                                    cause=exc.cause)
        raise FlinkApiError('Could not start job %r: gave up after %d job id generations were all taken'
                            % (d.name, MAX_GENERATION_STEPS))

    def _after_submit(self, jid):
        if not self.desired.wait:
            return self.api.job(jid) or {'id': jid, 'name': self.desired.name, 'state': 'SUBMITTED'}
        return self._wait_running(jid)

    def _pause(self, why):
        if self.deadline.expired():
            raise FlinkApiError('Could not %s within wait_timeout=%.0f s' % (why, self.deadline.timeout))
        self._sleep(min(POLL_INTERVAL, self.deadline.remaining()))

    def _wait_running(self, jid):
        last = None
        while True:
            view = self.api.job(jid)
            if view is not None:
                last = view
                if view['state'] == 'RUNNING':
                    return view
                if view['state'] == 'FINISHED':
                    self.warn('Job %r (id %s) finished before it was seen RUNNING; flink_job is meant for '
                              'long-running jobs' % (self.desired.name, jid))
                    return view
                if view['state'] in TERMINAL_STATES:
                    cause = self.api.failure_cause(jid)
                    raise FlinkApiError('Job %r (id %s) was submitted but ended as %s: %s'
                                        % (self.desired.name, jid, view['state'], cause or 'no exception reported'))
            if self.deadline.expired():
                cause = self.api.failure_cause(jid) if last else None
                raise FlinkApiError(
                    'Job %r (id %s) was submitted but is not RUNNING within wait_timeout=%.0f s (state %s)%s. It was '
                    'left as it is.' % (self.desired.name, jid, self.deadline.timeout,
                                        last['state'] if last else 'unknown',
                                        '; latest exception: %s' % cause if cause else ''))
            self._sleep(min(POLL_INTERVAL, self.deadline.remaining()))

    def _wait_terminal(self, jid):
        while True:
            view = self.api.job(jid)
            if view is None or not is_live(view):
                return view
            if self.deadline.expired():
                raise FlinkApiError('Job %r (id %s) did not end within wait_timeout=%.0f s (state %s)'
                                    % (self.desired.name, jid, self.deadline.timeout, view['state']))
            self._sleep(min(POLL_INTERVAL, self.deadline.remaining()))

    # -- stop with savepoint ---------------------------------------------
    def _stop_with_savepoint(self, jid):
        trigger_id = uuid.uuid4().hex
        self.api.trigger_stop(jid, trigger_id, self.desired.savepoint_dir)
        while True:
            status = self.api.savepoint_status(jid, trigger_id)
            if status is None:
                view = self.api.job(jid)
                if view is not None and is_live(view):
                    # The trigger was lost (leader change): the same trigger id is safe to send again.
                    self.api.trigger_stop(jid, trigger_id, self.desired.savepoint_dir)
                else:
                    raise FlinkApiError('Job %r (id %s) ended, but Flink no longer knows the result of its savepoint '
                                        '(trigger %s)' % (self.desired.name, jid, trigger_id))
            elif (status.get('status') or {}).get('id') == 'COMPLETED':
                op = status.get('operation') or {}
                if op.get('location'):
                    return op['location']
                cause = root_cause({'errors': [op.get('failure-cause', {}).get('stack-trace') or
                                               op.get('failure-cause', {}).get('class') or 'unknown']})
                raise FlinkApiError('Could not stop job %r (id %s) with a savepoint: %s. The job keeps running.'
                                    % (self.desired.name, jid, cause))
            if self.deadline.expired():
                raise FlinkApiError('The savepoint of job %r (id %s) did not complete within wait_timeout=%.0f s; '
                                    'the job keeps running unless Flink finishes the stop later'
                                    % (self.desired.name, jid, self.deadline.timeout))
            self._sleep(min(POLL_INTERVAL, self.deadline.remaining()))
