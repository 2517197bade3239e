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
    Deadline,
    FlinkApiError,
    FlinkError,
    FlinkLostAnswer,
    is_duplicate_submission,
    root_cause,
)
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident

TERMINAL_STATES = frozenset(['FINISHED', 'CANCELED', 'FAILED'])
UPGRADE_MODES = ('savepoint', 'last-state', 'stateless')
ENDING_STATES = frozenset(['CANCELLING'])
POLL_INTERVAL = 0.5
# A generation is bumped only past instances that ended; this bounds the walk
# past ids Flink still remembers but no longer lists (non-HA clusters keep them
# until the JobManager restarts).
MAX_GENERATION_STEPS = 64


class PlanError(FlinkError):
    """The observed cluster does not allow a safe decision."""


class UpgradeError(FlinkError):
    """An upgrade failed; ``result`` tells what was left running and where the state is."""

    def __init__(self, msg, result):
        super(UpgradeError, self).__init__(msg)
        self.result = result


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
                 savepoint_dir=None, wait=True, upgrade_mode='savepoint'):
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
        if restore_from is not None and not str(restore_from).strip():
            raise InputError('restore_from must not be empty (use none to force an empty start)')
        self.restore_from = restore_from
        if upgrade_mode not in UPGRADE_MODES:
            raise InputError('upgrade_mode must be one of %s, got %r' % (', '.join(UPGRADE_MODES), upgrade_mode))
        self.upgrade_mode = upgrade_mode
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

    @property
    def explicit_restore(self):
        """(path or None, True if the user decided): restore_from=none forces an empty start."""
        if self.restore_from is None:
            return None, False
        if str(self.restore_from).strip().lower() == 'none':
            return None, True
        return self.restore_from, True

    def submission(self):
        return Submission(self.name, self.spec, jar_path=self.jar,
                          allow_non_restored_state=self.allow_non_restored_state)


class Submission(object):
    """One version of a job that can be submitted: the declared one, or a previous one to roll back to."""

    def __init__(self, name, spec, jar_path=None, jar_name=None, allow_non_restored_state=False):
        self.name = name
        self.spec = spec
        self.spec_hash = ident.spec_hash(spec)
        self.jar_path = jar_path
        self.jar_name = jar_name or (os.path.basename(jar_path) if jar_path else None)
        self.allow_non_restored_state = allow_non_restored_state

    @property
    def jar_sha256(self):
        return self.spec['jar_sha256']

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
                 adopted=False, drift=False, wait_for=None, known_ended=None, previous=None, warnings=None):
        self.action = action          # none | submit | upgrade | cancel | stop
        self.job_id = job_id          # the job the result is about (the predicted id for submit/upgrade)
        self.generation = generation  # for submit/upgrade
        self.live = live              # the live job (present/upgraded)
        self.targets = targets or []  # jobs to cancel/stop (absent)
        self.adopted = adopted
        self.drift = drift
        self.wait_for = wait_for or []      # ids still CANCELLING, waited out before submitting
        self.known_ended = known_ended or set()  # ids of ours that ended before this run
        self.previous = previous      # the most recent ended instance, to resume from
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


def next_generation(ours, spec_digest):
    same_spec = [j for j in ours if ident.runs_spec(j['id'], spec_digest)]
    return max(j['generation'] for j in same_spec) + 1 if same_spec else 0


def plan_present(desired, jobs, upgrade=False):
    ours, named = _instances(desired.name, jobs)
    candidates = ours + named
    live = [j for j in candidates if is_live(j) and not is_ending(j)]
    if len(live) > 1:
        raise PlanError(
            'More than one live job claims the name %r: %s. flink_job adopts exactly one job per name and will not '
            'guess; cancel the extra instances (for example with state=absent, which stops all of them) and run '
            'again.' % (desired.name, _describe(live)))
    generation = next_generation(ours, desired.spec_hash)
    known_ended = set(j['id'] for j in ours if not is_live(j))
    if live:
        job = live[0]
        mine = ident.belongs_to(job['id'], desired.name)
        if mine and ident.runs_spec(job['id'], desired.spec_hash):
            return Plan('none', job_id=job['id'], live=job)
        if upgrade:
            return Plan('upgrade', job_id=desired.job_id(generation), generation=generation, live=job,
                        adopted=not mine, drift=True, known_ended=known_ended)
        if mine:
            parsed = ident.parse_job_id(job['id'])
            warning = (
                'Job %r runs another version than the one declared (job id %s carries spec %s, the declared spec is '
                '%s). state=present leaves a running job alone; use state=upgraded to move it to the declared '
                'version.' % (desired.name, job['id'], parsed.spec_prefix, desired.spec_hash[:ident.SPEC_HASH_LEN]))
            return Plan('none', job_id=job['id'], live=job, drift=True, warnings=[warning])
        return Plan('none', job_id=job['id'], live=job, adopted=True)
    ending = [j['id'] for j in candidates if is_ending(j)]
    ended = [j for j in candidates if not is_live(j)]
    previous = max(ended, key=lambda j: (j['end_time_ms'] or 0, j['start_time_ms'] or 0)) if ended else None
    return Plan('submit', job_id=desired.job_id(generation), generation=generation, wait_for=ending,
                known_ended=known_ended, previous=previous)


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
    return plan_present(desired, jobs, upgrade=desired.state == 'upgraded')


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


def jar_marker(jar_sha256):
    return 'flinkops-%s-' % jar_sha256[:16]


def newest_restore_point(checkpoints):
    """(path, kind) of the newest savepoint or retained checkpoint in ``GET /jobs/<id>/checkpoints``, or None."""
    latest = (checkpoints or {}).get('latest') or {}
    found = []
    for key, kind in (('savepoint', 'savepoint'), ('completed', 'checkpoint')):
        entry = latest.get(key) or {}
        if entry.get('external_path') and not entry.get('discarded'):
            found.append((entry.get('trigger_timestamp') or 0, entry['external_path'], kind))
    if not found:
        return None
    found.sort()
    return found[-1][1], found[-1][2]


# Causes with which Flink declines a savepoint of a job that is still starting or
# recovering: worth another try once its tasks run.
TRANSIENT_SAVEPOINT_MARKERS = (
    'not all required tasks are currently running',
    'is not being executed at the moment',
    'not_all_required_tasks_running',
    'checkpoint_declined_task_not_ready',
    'checkpoint coordinator is suspending',
    'unavailabledispatcheroperationexception',
    'not available while the jobmanager is initializing',
)


class SavepointResultLost(FlinkApiError):
    """The job ended with a savepoint, but Flink lost the operation's result (a JobManager failover)."""


def savepoint_target(base, trigger_id):
    """A directory of its own for each savepoint flink_job takes, so a savepoint can be found by its trigger."""
    if not base:
        return None
    return '%s/flinkops-%s' % (base.rstrip('/'), trigger_id)


def find_local_savepoint(target):
    """The one savepoint in ``target`` when that is a directory this host can read, else None."""
    if not target:
        return None
    if target.startswith('file://'):
        path = target[len('file://'):]
    elif target.startswith('file:'):
        path = target[len('file:'):]
    elif target.startswith('/'):
        path = target
    else:
        return None
    if not os.path.isdir(path):
        return None
    found = [d for d in sorted(os.listdir(path))
             if d.startswith('savepoint-') and os.path.isfile(os.path.join(path, d, '_metadata'))]
    if len(found) != 1:
        return None
    return 'file:' + os.path.join(os.path.abspath(path), found[0])


def is_transient_savepoint_failure(exc):
    text = ('%s %s' % (exc.cause or '', exc.msg or '')).lower()
    return any(marker in text for marker in TRANSIENT_SAVEPOINT_MARKERS)


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

    def default_savepoint_dir(self):
        """The cluster's ``state.savepoints.dir``, or None."""
        data = self.client.get('/jobmanager/config', 'read the cluster configuration', allow_404=True) or []
        for entry in data if isinstance(data, list) else []:
            if isinstance(entry, dict) and entry.get('key') == 'state.savepoints.dir':
                return entry.get('value') or None
        return None

    def job(self, jid):
        data = self.client.get('/jobs/%s' % jid, 'read job %s' % jid, allow_404=True)
        return job_view(data) if data is not None else None

    def version(self):
        if self._version is None:
            data = self.client.get('/config', 'read the cluster configuration')
            self._version = data.get('flink-version') or '0'
        return self._version

    def supports_configuration(self):
        return _version_tuple(self.version()) >= (1, 17)

    def recorded_spec(self, jid):
        """(spec, jar name) recorded with a job by flink_job, or None."""
        data = self.client.get('/jobs/%s/config' % jid, 'read the configuration of job %s' % jid, allow_404=True)
        user = ((data or {}).get('execution-config') or {}).get('user-config') or {}
        return ident.decode_spec(user.get(ident.SPEC_PARAM))

    def checkpoints(self, jid):
        return self.client.get('/jobs/%s/checkpoints' % jid, 'read the checkpoints of job %s' % jid, allow_404=True)

    def checkpoint_config(self, jid):
        return self.client.get('/jobs/%s/checkpoints/config' % jid, 'read the checkpoint settings of job %s' % jid,
                               allow_404=True)

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
    def jars(self):
        return self.client.get('/jars', 'list uploaded jars').get('files', []) or []

    def find_jar(self, jar_sha256):
        marker = jar_marker(jar_sha256)
        for f in self.jars():
            if str(f.get('name', '')).startswith(marker):
                return f['id']
        return None

    def upload_jar(self, path, jar_sha256):
        base = os.path.basename(path)
        if not base.endswith('.jar'):
            base += '.jar'
        upload_name = jar_marker(jar_sha256) + base
        with open(path, 'rb') as fh:
            data = self.client.request('POST', '/jars/upload', 'upload jar %s' % path,
                                       files={'jarfile': (upload_name, fh, 'application/x-java-archive')})
        filename = data.get('filename') or ''
        jar_id = filename.replace('\\', '/').rsplit('/', 1)[-1]
        if not jar_id:
            raise FlinkApiError('Could not upload jar %s: Flink answered without a file name (%r)' % (path, data))
        return jar_id

    def delete_jar(self, jar_id):
        self.client.request('DELETE', '/jars/%s' % jar_id, 'delete jar %s' % jar_id, allow_404=True)

    def plan_jar(self, jar_id, body, what):
        return self.client.request('POST', '/jars/%s/plan' % jar_id, what, json_body=body)

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

    def trigger_savepoint(self, jid, trigger_id, target_dir=None):
        body = {'cancel-job': False, 'triggerId': trigger_id}
        if target_dir:
            body['target-directory'] = target_dir
        return self.client.request('POST', '/jobs/%s/savepoints' % jid, 'trigger a savepoint of job %s' % jid,
                                   json_body=body)

    def savepoint_status(self, jid, trigger_id):
        return self.client.get('/jobs/%s/savepoints/%s' % (jid, trigger_id),
                               'read the savepoint status of job %s' % jid, allow_404=True)

    def wait_savepoint(self, jid, trigger_id, retrigger, deadline, what):
        """Poll a savepoint/stop trigger until Flink reports its location; FlinkApiError on failure."""
        while True:
            status = self.savepoint_status(jid, trigger_id)
            if status is None:
                view = self.job(jid)
                if view is not None and is_live(view):
                    # The trigger was lost (leader change): the same trigger id is safe to send again.
                    retrigger()
                else:
                    raise SavepointResultLost('%s: job %s ended, but Flink no longer knows the result of the '
                                              'savepoint (trigger %s)' % (what, jid, trigger_id))
            elif (status.get('status') or {}).get('id') == 'COMPLETED':
                op = status.get('operation') or {}
                if op.get('location'):
                    return op['location']
                failure = op.get('failure-cause') or {}
                cause = root_cause({'errors': [failure.get('stack-trace') or failure.get('class') or 'unknown']})
                raise FlinkApiError('%s: %s' % (what, cause), cause=cause)
            if deadline.expired():
                raise FlinkApiError('%s: the savepoint did not complete within wait_timeout=%.0f s'
                                    % (what, deadline.timeout))
            self._sleep(min(POLL_INTERVAL, deadline.remaining()))

    def dispose_savepoint(self, path):
        return self.client.request('POST', '/savepoint-disposal', 'dispose savepoint %s' % path,
                                   json_body={'savepoint-path': path})

    def disposal_status(self, trigger_id):
        return self.client.get('/savepoint-disposal/%s' % trigger_id, 'read the savepoint disposal status',
                               allow_404=True)


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
        self._jar_ids = {}

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
        if the_plan.action == 'upgrade':
            return self._upgrade(the_plan)
        return self._present(the_plan)

    def _present(self, the_plan):
        if the_plan.action == 'none':
            state = self._state_of(the_plan.live)
            return self._result(False, 'none', the_plan, job=the_plan.live, before=state, after=state,
                                drift=the_plan.drift)
        predicted = {'state': 'running', 'job_id': the_plan.job_id, 'spec': self.desired.spec_hash[:8],
                     'generation': the_plan.generation, 'name': self.desired.name}
        before = {'state': 'absent'}
        restore = self._restore_point(the_plan.previous)
        extra = {'generation': the_plan.generation}
        if restore:
            extra['restored_from'] = restore
            predicted['restored_from'] = restore['path']
        if self.check_mode:
            return self._result(True, 'submitted', the_plan, before=before, after=predicted, **extra)
        for jid in the_plan.wait_for:
            self._wait_terminal(jid)
        submission = self.desired.submission()
        job, changed, generation = self._submit(submission, the_plan.generation, the_plan.known_ended,
                                                restore['path'] if restore else None)
        extra['generation'] = generation
        after = dict(predicted, job_id=job['id'], generation=generation, flink_state=job['state'])
        return self._result(changed, 'submitted' if changed else 'none', the_plan, job=job, before=before,
                            after=after, **extra)

    def _restore_point(self, previous):
        """Where a (re)submission starts from: explicit restore_from, or what the last ended instance left."""
        path, decided = self.desired.explicit_restore
        if decided:
            return {'path': path, 'kind': 'explicit', 'job_id': None} if path else None
        if previous is None:
            return None
        point = newest_restore_point(self.api.checkpoints(previous['id']))
        if point is None:
            self.warn('Job %r: its last instance %s ended as %s and left no savepoint or retained checkpoint that '
                      'Flink still reports; starting without state.' % (self.desired.name, previous['id'],
                                                                        previous['state']))
            return None
        return {'path': point[0], 'kind': point[1], 'job_id': previous['id']}

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

    # -- upgrade -----------------------------------------------------------
    def _spec_view(self, spec, jar_name=None):
        if spec is None:
            return {'spec': 'unknown (not recorded with the job)'}
        view = dict(spec)
        view['spec_hash'] = ident.spec_hash(spec)
        if jar_name:
            view['jar_name'] = jar_name
        return view

    def _upgrade(self, the_plan):
        d = self.desired
        old = the_plan.live
        recorded = self.api.recorded_spec(old['id'])
        previous = None
        if recorded is not None:
            prev_spec, prev_jar_name = recorded
            if ident.belongs_to(old['id'], d.name) and not ident.runs_spec(old['id'], ident.spec_hash(prev_spec)):
                recorded = None  # the record does not match the job id: do not trust it
            else:
                previous = Submission(d.name, prev_spec, jar_name=prev_jar_name)
        before = self._spec_view(previous.spec if previous else None, previous.jar_name if previous else None)
        before.update(job_id=old['id'], state='running')
        after = self._spec_view(d.spec, os.path.basename(d.jar))
        after.update(job_id=the_plan.job_id, state='running', upgrade_mode=d.upgrade_mode)
        extra = {'previous_job_id': old['id'], 'generation': the_plan.generation, 'upgrade_mode': d.upgrade_mode}
        if self.check_mode:
            return self._result(True, 'upgraded', the_plan, job=None, before=before, after=after, **extra)

        new = d.submission()
        # 1. Validate the new version before the running job is touched.
        jar_id = self._jar_for(new)
        self._validate(new, jar_id)
        restore_path = None
        # 2. Take the state out of the running job.
        if d.upgrade_mode == 'savepoint':
            try:
                restore_path = self._stop_with_savepoint(old['id'])
            except FlinkApiError as exc:
                view = self.api.job(old['id'])
                raise FlinkApiError('Could not upgrade job %r: stopping %s with a savepoint failed (%s). The job %s.'
                                    % (d.name, old['id'], exc.cause or exc.msg,
                                       'keeps running' if view and is_live(view) else
                                       'is %s' % (view['state'] if view else 'gone')))
        elif d.upgrade_mode == 'last-state':
            restore_path = self._last_state(old)
        else:
            self.api.cancel(old['id'])
            self._wait_terminal(old['id'])
        extra['savepoint'] = restore_path
        # 3. Start the new version from it; put the previous one back if it cannot run.
        try:
            job, changed, generation = self._submit(new, the_plan.generation, the_plan.known_ended, restore_path)
        except FlinkError as exc:
            self._roll_back(the_plan, new, previous, restore_path, exc, extra)
            raise  # _roll_back always raises
        extra['generation'] = generation
        self._clean_jars(previous, new)
        after.update(job_id=job['id'])
        return self._result(True, 'upgraded', the_plan, job=job, before=before, after=after, **extra)

    def _validate(self, submission, jar_id):
        body = {'programArgsList': submission.spec['args']}
        if submission.spec['entry_class']:
            body['entryClass'] = submission.spec['entry_class']
        if submission.spec['parallelism']:
            body['parallelism'] = submission.spec['parallelism']
        try:
            self.api.plan_jar(jar_id, body, 'build the job graph of the new version of %r' % self.desired.name)
        except FlinkApiError as exc:
            raise FlinkApiError('The new version of job %r cannot start: %s. The running job was not touched.'
                                % (self.desired.name, exc.cause or exc.msg), status=exc.status, cause=exc.cause)

    def _last_state(self, old):
        d = self.desired
        cfg = self.api.checkpoint_config(old['id']) or {}
        ext = cfg.get('externalization') or {}
        if not ext.get('enabled') or ext.get('delete_on_cancellation', True):
            raise FlinkApiError(
                'Could not upgrade job %r with upgrade_mode=last-state: its checkpoints are not retained on '
                'cancellation (set execution.checkpointing.externalized-checkpoint-retention: '
                'RETAIN_ON_CANCELLATION). The running job was not touched.' % d.name)
        # A job that just started may not have completed a checkpoint yet: wait for one, within wait_timeout.
        while newest_restore_point(self.api.checkpoints(old['id'])) is None:
            if self.deadline.expired():
                raise FlinkApiError('Could not upgrade job %r with upgrade_mode=last-state: job %s reported no '
                                    'completed checkpoint within wait_timeout=%.0f s. The running job was not touched.'
                                    % (d.name, old['id'], self.deadline.timeout))
            self._sleep(min(POLL_INTERVAL, self.deadline.remaining()))
        self.api.cancel(old['id'])
        self._wait_terminal(old['id'])
        point = newest_restore_point(self.api.checkpoints(old['id']))
        if point is None:
            raise FlinkApiError('Job %r (%s) was cancelled for a last-state upgrade, but Flink reports no retained '
                                'checkpoint for it any more; nothing was started. Start it with restore_from.'
                                % (d.name, old['id']))
        return point[0]

    def _roll_back(self, the_plan, new, previous, restore_path, exc, extra):
        d = self.desired
        reason = exc.cause or exc.msg
        # Never leave the failed new version behind.
        for view in self.api.overview():
            if ident.belongs_to(view['id'], d.name) and ident.runs_spec(view['id'], new.spec_hash) and is_live(view):
                self.api.cancel(view['id'])
                self._wait_terminal(view['id'])
        where = ('savepoint %s' % restore_path) if restore_path else 'an empty state (upgrade_mode=stateless)'
        result = dict(extra, changed=True, action='rolled_back', job_id=None)
        if previous is None:
            result['action'] = 'failed'
            raise UpgradeError(
                'Upgrade of job %r failed: %s. The previous version could not be restarted: its spec is not recorded '
                'with job %s (it was not started by flink_job, or the program sets its own global job parameters). '
                'Its state is in %s; start it again with restore_from.'
                % (d.name, reason, the_plan.live['id'], restore_path or 'no savepoint'), result)
        # The rollback gets its own time budget: the deadline may be what made the upgrade fail.
        self.client.deadline = Deadline(max(self.deadline.timeout, 60))
        try:
            jar_id = self._jar_for(previous)
            if jar_id is None:
                raise FlinkApiError('the jar of the previous version (sha256 %s) is no longer on the cluster'
                                    % previous.jar_sha256[:16])
            generation = next_generation(
                [v for v in self.api.overview() if ident.belongs_to(v['id'], d.name)], previous.spec_hash)
            job, unused_changed, unused_gen = self._submit(previous, generation, set(), restore_path)
        except FlinkError as again:
            result['action'] = 'failed'
            raise UpgradeError(
                'Upgrade of job %r failed: %s. Restarting the previous version failed too: %s. Its state is in %s.'
                % (d.name, reason, again.cause or again.msg, restore_path or 'no savepoint'), result)
        result.update(job_id=job['id'], job=job)
        raise UpgradeError(
            'Upgrade of job %r failed: %s. The previous version was restored from %s and runs as job %s.'
            % (d.name, reason, where, job['id']), result)

    def _clean_jars(self, previous, new):
        """Remove the previous version's jar, unless another live job recorded that it uses it."""
        if previous is None or previous.jar_sha256 == new.jar_sha256:
            return
        for view in self.api.overview():
            if is_live(view):
                rec = self.api.recorded_spec(view['id'])
                if rec is not None and rec[0]['jar_sha256'] == previous.jar_sha256:
                    return
        marker = jar_marker(previous.jar_sha256)
        for f in self.api.jars():
            if str(f.get('name', '')).startswith(marker):
                self.api.delete_jar(f['id'])

    # -- submission ------------------------------------------------------
    def _jar_for(self, submission):
        """Jar id of a submission's jar on the cluster, uploading it when the module has the file."""
        sha = submission.jar_sha256
        if sha not in self._jar_ids:
            jar_id = self.api.find_jar(sha)
            if jar_id is None and submission.jar_path:
                jar_id = self.api.upload_jar(submission.jar_path, sha)
            self._jar_ids[sha] = jar_id
        if submission.jar_path:
            self.jar_id = self._jar_ids[sha]
        return self._jar_ids[sha]

    def _run_body(self, submission, jid, restore_path):
        spec = submission.spec
        body = {'jobId': jid, 'programArgsList': spec['args']}
        if spec['entry_class']:
            body['entryClass'] = spec['entry_class']
        if spec['parallelism']:
            body['parallelism'] = int(spec['parallelism'])
        if restore_path:
            body['savepointPath'] = restore_path
            body['allowNonRestoredState'] = submission.allow_non_restored_state
        if self.api.supports_configuration():
            encoded = ident.encode_spec(spec, submission.jar_name)
            body['flinkConfiguration'] = ident.with_spec_param(spec['config'], encoded)
        elif spec['config']:
            raise InputError('config needs Flink 1.17 or newer (the cluster runs %s); nothing was submitted'
                             % self.api.version())
        return body

    def _submit(self, submission, generation, known_ended, restore_path=None):
        """Submit under the deterministic id. Returns (job view, changed, generation)."""
        name = submission.name
        self._jar_for(submission)
        maybe_sent = False
        reuploaded = False
        what = 'start job %r' % name
        for _step in range(MAX_GENERATION_STEPS):
            jid = submission.job_id(generation)
            try:
                self.api.run_jar(self._jar_ids[submission.jar_sha256], self._run_body(submission, jid, restore_path),
                                 what)
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
                    if view is None or jid in known_ended:
                        # Flink remembers this id from an instance that ended: next generation.
                        generation += 1
                        maybe_sent = False
                        continue
                    cause = self.api.failure_cause(jid)
                    raise FlinkApiError('Job %r (id %s) ended as %s right after it was submitted: %s'
                                        % (name, jid, view['state'], cause or 'no exception reported'), cause=cause)
                if not reuploaded and submission.jar_path and _jar_missing(exc):
                    # The jar vanished (JobManager restarted with a new web.tmpdir): upload again.
                    reuploaded = True
                    self._jar_ids[submission.jar_sha256] = self.api.upload_jar(submission.jar_path,
                                                                               submission.jar_sha256)
                    self.jar_id = self._jar_ids[submission.jar_sha256]
                    continue
                raise FlinkApiError('Could not start job %r: %s' % (name, exc.cause or exc.msg), status=exc.status,
                                    cause=exc.cause or exc.msg)
            else:
                return self._after_submit(jid), True, generation
        raise FlinkApiError('Could not start job %r: gave up after %d job id generations were all taken'
                            % (name, MAX_GENERATION_STEPS))

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
                                        % (self.desired.name, jid, view['state'], cause or 'no exception reported'),
                                        cause=cause)
            if self.deadline.expired():
                cause = self.api.failure_cause(jid) if last else None
                raise FlinkApiError(
                    'Job %r (id %s) was submitted but is not RUNNING within wait_timeout=%.0f s (state %s)%s.'
                    % (self.desired.name, jid, self.deadline.timeout, last['state'] if last else 'unknown',
                       '; latest exception: %s' % cause if cause else ''),
                    cause='not RUNNING within wait_timeout=%.0f s' % self.deadline.timeout)
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
        """Stop ``jid`` with a savepoint and return its path.

        A job that is recovering (after a JobManager failover, or a restart)
        declines savepoints until all its tasks run again; that refusal is
        waited out, with a fresh trigger, within ``wait_timeout``. Any other
        failure is final, and the job keeps running.
        """
        base = self.desired.savepoint_dir or self.api.default_savepoint_dir()
        what = 'Could not stop job %r (id %s) with a savepoint' % (self.desired.name, jid)
        while True:
            trigger_id = uuid.uuid4().hex
            target = savepoint_target(base, trigger_id)

            def trigger():
                self.api.trigger_stop(jid, trigger_id, target)
            try:
                trigger()
                return self.api.wait_savepoint(jid, trigger_id, trigger, self.deadline, what)
            except SavepointResultLost as exc:
                # The job finished with the savepoint, and the JobManager that knew where it went died.
                # The savepoint has a directory of its own: take it from there when this host can see it.
                found = find_local_savepoint(target)
                if found:
                    self.warn('Flink lost the result of the stop-with-savepoint of job %s in a JobManager failover; '
                              'using the savepoint written for it: %s' % (jid, found))
                    return found
                raise SavepointResultLost('%s. The savepoint is in %s (savepoint-*/_metadata); start the job with '
                                          'restore_from set to it.' % (exc.msg, target or 'the savepoint directory'),
                                          cause=exc.cause)
            except FlinkApiError as exc:
                view = self.api.job(jid)
                if not (is_transient_savepoint_failure(exc) and view is not None and is_live(view)
                        and not self.deadline.expired()):
                    raise
            self._pause('stop job %s with a savepoint (it was not ready for one yet)' % jid)
