# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""The Flink REST service layer: one method per operation on jobs, jars and savepoints.

No decisions live here: the reconciler (``_job``), the info modules and
``flink_savepoint`` all call these methods. Every method names what it was
doing in its errors ("read the checkpoints of job X").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.flinkops.flink.plugins.module_utils._api import (
    FlinkApiError,
    FlinkError,
    FlinkLostAnswer,
    root_cause,
)
from ansible_collections.flinkops.flink.plugins.module_utils import _capabilities as capabilities
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils import _python
from ansible_collections.flinkops.flink.plugins.module_utils._model import is_live, job_view
from ansible_collections.flinkops.flink.plugins.module_utils._program_gate import GateTimeout, lock_path, program_gate
from ansible_collections.flinkops.flink.plugins.module_utils._waiter import POLL_INTERVAL


class FlinkUnsupportedVersion(FlinkError):
    """The cluster runs a Flink version the collection does not support (checked before anything else)."""


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


def is_transient_savepoint_failure(exc):
    text = ('%s %s' % (exc.cause or '', exc.msg or '')).lower()
    return any(marker in text for marker in TRANSIENT_SAVEPOINT_MARKERS)


def is_jar_missing(exc):
    cause = (exc.cause or exc.msg or '').lower()
    return exc.status == 404 or ('jar file' in cause and 'not exist' in cause)


class SavepointResultLost(FlinkApiError):
    """The job ended with a savepoint, but Flink lost the operation's result (a JobManager failover)."""


class SavepointTimeout(FlinkApiError):
    """The budget ran out while a savepoint was still in flight; Flink goes on with it (``trigger_id``)."""

    def __init__(self, msg, trigger_id=None, **kwargs):
        super(SavepointTimeout, self).__init__(msg, **kwargs)
        self.trigger_id = trigger_id


def jar_marker(jar_sha256):
    return 'flinkops-%s-' % jar_sha256[:16]


def restore_point(checkpoints):
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


def restored_source(checkpoints, own_job_id=None):
    """The path an instance was started from, from ``latest.restored`` in ``GET /jobs/<id>/checkpoints``.

    Flink overwrites ``latest.restored`` on every restart and failover recovery, with the
    instance's own checkpoint (``.../<job id>/chk-N``); that is not where the instance was
    started from, and it is gone once the job was cancelled: with ``own_job_id`` such a
    path gives None.
    """
    restored = ((checkpoints or {}).get('latest') or {}).get('restored') or {}
    path = restored.get('external_path') or None
    if path and own_job_id and '/%s/' % own_job_id in path:
        return None
    return path


def savepoint_target(base, trigger_id):
    """A directory of its own for each savepoint flink_job takes, so a savepoint can be found by its trigger."""
    if not base:
        return None
    return '%s/flinkops-%s' % (base.rstrip('/'), trigger_id)


def local_path(location):
    """``file:///a/b``, ``file:/a/b`` or ``/a/b`` as the path ``/a/b``; None for other schemes."""
    for prefix in ('file://', 'file:'):
        if location.startswith(prefix):
            return '/' + location[len(prefix):].lstrip('/')
    return location if location.startswith('/') else None


def is_under(location, directory):
    """Whether ``location`` lies in ``directory`` (both Flink paths; ``file:`` spellings compared as paths)."""
    inner, outer = local_path(location) or location, local_path(directory) or directory
    return inner.startswith(outer.rstrip('/') + '/')


def find_local_savepoint(target):
    """The one savepoint in ``target`` when that is a directory this host can read, else None."""
    path = local_path(target) if target else None
    if not path or not os.path.isdir(path):
        return None
    found = [d for d in sorted(os.listdir(path))
             if d.startswith('savepoint-') and os.path.isfile(os.path.join(path, d, '_metadata'))]
    if len(found) != 1:
        return None
    return 'file:' + os.path.join(os.path.abspath(path), found[0])


class FlinkJobs(object):
    """Operations on jobs, jars and savepoints through a FlinkClient."""

    # /jars/<id>/plan and /run run the program's main() inside the request; uploads move whole jars.
    LONG_CALL_TIMEOUT = 120.0

    def __init__(self, client, sleep=time.sleep):
        self.client = client
        self._sleep = sleep
        self._cluster_config = None

    # -- cluster ---------------------------------------------------------------
    def capabilities(self):
        """What the cluster's Flink line can do (``_capabilities``), read once per module run.

        The answer is kept on the client, which lives for one module run, so every
        FlinkJobs of that run shares it. An unsupported version raises
        FlinkUnsupportedVersion, before any other request when called first.
        """
        caps = getattr(self.client, 'capabilities', None)
        if caps is None:
            data = self.client.get('/config', 'read the Flink version', allow_404=True)
            if data is None:
                raise FlinkApiError(
                    'GET /config answered HTTP 404 from %s: url does not lead to a Flink REST API. Check the address '
                    'and any path prefix in front of it (a reverse proxy, an ingress path or the YARN proxy, for '
                    'example https://gateway/flink/). Nothing was changed.' % self.client.url, status=404)
            try:
                caps = capabilities.for_version((data or {}).get('flink-version'), where=self.client.url)
            except capabilities.UnsupportedVersion as exc:
                raise FlinkUnsupportedVersion(str(exc))
            self.client.capabilities = caps
        return caps

    def cluster_config(self, fresh=False):
        """The JobManager's configuration (``GET /jobmanager/config``), read once per run unless ``fresh``."""
        if self._cluster_config is None or fresh:
            data = self.client.get('/jobmanager/config', 'read the cluster configuration', allow_404=True) or []
            self._cluster_config = dict((e.get('key'), e.get('value')) for e in (data if isinstance(data, list) else [])
                                        if isinstance(e, dict))
        return self._cluster_config

    def default_savepoint_dir(self):
        """The cluster's default savepoint directory under either of its keys, or None."""
        conf = self.cluster_config()
        for key in self.capabilities().savepoint_dir_keys:
            if conf.get(key):
                return conf[key]
        return None

    # -- jobs --------------------------------------------------------------------
    def overview(self):
        data = self.client.get('/jobs/overview', 'list jobs')
        return [job_view(j) for j in data.get('jobs', [])]

    def job(self, jid):
        data = self.client.get('/jobs/%s' % jid, 'read job %s' % jid, allow_404=True)
        return job_view(data) if data is not None else None

    def record(self, jid):
        """The record flink_job stored with a job (``_identity.Record``), or None."""
        data = self.client.get('/jobs/%s/config' % jid, 'read the configuration of job %s' % jid, allow_404=True)
        user = ((data or {}).get('execution-config') or {}).get('user-config') or {}
        return ident.record_from_user_config(user)

    def checkpoints(self, jid):
        return self.client.get('/jobs/%s/checkpoints' % jid, 'read the checkpoints of job %s' % jid, allow_404=True)

    def checkpoint_timeout_s(self, jid):
        """The job's checkpoint timeout in seconds (Flink aborts a savepoint that takes longer), or None."""
        conf = self.checkpoint_config(jid) or {}
        value = conf.get('timeout')
        return value / 1000.0 if isinstance(value, (int, float)) and value > 0 else None

    def exceptions(self, jid):
        """Entries of the job's exception history (newest first), [] when none or the job is unknown."""
        data = self.client.get('/jobs/%s/exceptions' % jid, 'read the exceptions of job %s' % jid, allow_404=True)
        return list(((data or {}).get('exceptionHistory') or {}).get('entries') or [])

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

    def cancel(self, jid):
        self.client.request('PATCH', '/jobs/%s' % jid, 'cancel job %s' % jid, params={'mode': 'cancel'},
                            ok_statuses=(200, 202, 409), allow_404=True)

    # -- jars --------------------------------------------------------------------
    def jars(self):
        return self.client.get('/jars', 'list uploaded jars').get('files', []) or []

    def find_jar(self, jar_sha256):
        marker = jar_marker(jar_sha256)
        for f in self.jars():
            if str(f.get('name', '')).startswith(marker):
                return f['id']
        return None

    def find_jar_on_any(self, jar_sha256, keep):
        """The jar's id on the first endpoint in ``url`` that has it, or None.

        Jars live with the JobManager whose REST endpoint took the upload. With
        ``keep`` the client stays on that endpoint (to run the jar there), else it
        goes back to the endpoint it used before.
        """
        client = self.client
        start = client.current_index
        for step in range(len(client.urls)):
            client.use_index((start + step) % len(client.urls))
            try:
                jar_id = self.find_jar(jar_sha256)
            except FlinkError:
                jar_id = None
            if jar_id is not None:
                if not keep:
                    client.use_index(start)
                return jar_id
        client.use_index(start)
        return None

    def jar_locations(self, jar_sha256):
        """The urls (of ``client.urls``) whose JobManager answered and has the jar; the client's endpoint is kept."""
        client = self.client
        start = client.current_index
        found = []
        for index in range(len(client.urls)):
            client.use_index(index)
            try:
                jar_id = self.find_jar(jar_sha256)
            except FlinkError:
                continue
            finally:
                answered = client.current_index
                client.use_index(start)
            if jar_id is not None and answered == index:
                found.append(client.urls[index])
        return found

    def upload_jar(self, path, jar_sha256):
        """Upload ``path`` under a name that carries its content hash; returns the jar id.

        The body is streamed from disk. A lost answer is never followed by a blind
        second upload: the jar list is checked for the copy that may have arrived.
        """
        base = os.path.basename(path)
        if not base.endswith('.jar'):
            base += '.jar'
        upload_name = jar_marker(jar_sha256) + base
        what = 'upload jar %s' % path
        for _attempt in range(3):
            try:
                data = self.client.upload(path, upload_name=upload_name, what=what, retry_lost=False,
                                          timeout=self.LONG_CALL_TIMEOUT)
            except FlinkLostAnswer:
                found = self.find_jar(jar_sha256)
                if found is not None:
                    return found
                continue
            filename = data.get('filename') or ''
            jar_id = filename.replace('\\', '/').rsplit('/', 1)[-1]
            if not jar_id:
                raise FlinkApiError('Could not upload jar %s: Flink answered without a file name (%r)' % (path, data))
            return jar_id
        raise FlinkApiError('Could not upload jar %s: the answer was lost three times and the jar did not arrive'
                            % path)

    def delete_jar(self, jar_id):
        self.client.request('DELETE', '/jars/%s' % jar_id, 'delete jar %s' % jar_id, allow_404=True)

    # -- submission ----------------------------------------------------------------
    def program_body(self, version, jid=None, record=None):
        """The part of the request that ``/plan`` and ``/run`` share: the same program, validated and run."""
        spec = version.spec
        body = {'programArgsList': spec.program_args()}
        if jid:
            body['jobId'] = jid
        if spec.entry_class:
            body['entryClass'] = spec.entry_class
        if spec.parallelism:
            body['parallelism'] = int(spec.parallelism)
        conf = spec.flink_config()
        if (spec.sql is not None or spec.entry_class == _python.DRIVER_CLASS) and 'pipeline.name' not in conf:
            # Flink names a SQL job (and a PyFlink job that runs SQL) after its INSERT's table: name it as declared,
            # unless config names it (a program that names its job, execute("..."), still wins).
            conf['pipeline.name'] = version.name
        body['flinkConfiguration'] = ident.with_record(conf, record) if record is not None else conf
        return body

    def checkpoint_dir(self, version, record):
        """A checkpoint directory of this instance's own: ``<base>/flinkops-<record salt>``, or None.

        Flink writes checkpoints to ``<dir>/<job id>/chk-N``. An HA cluster accepts an
        ended job id again after a failover, and a fresh instance under an old id
        then collides with that id's retained ``chk-N`` and deletes it. With a
        directory per instance no instance ever writes next to another's.
        """
        keys = self.capabilities().checkpoint_dir_keys
        base = None
        for source in (version.spec.config, self.cluster_config()):
            for key in keys:
                if source.get(key):
                    base = source[key]
                    break
            if base:
                break
        if not base:
            return None
        return '%s/flinkops-%s' % (str(base).rstrip('/'), record.salt)

    def run_body(self, version, jid, restore_path, record):
        body = self.program_body(version, jid, record)
        own_dir = self.checkpoint_dir(version, record) if record is not None else None
        if own_dir:
            for key in self.capabilities().checkpoint_dir_keys:
                body['flinkConfiguration'][key] = own_dir
        if restore_path:
            body['savepointPath'] = restore_path
            body['allowNonRestoredState'] = bool(version.allow_non_restored_state)
        return body

    def _with_jar_path(self, jar_id, body):
        """A PyFlink job's body with the uploaded program's path on the JobManager (see _python), read from the
        JobManager's configuration at this moment: a JobManager start changes it."""
        args = body.get('programArgsList') or []
        if _python.JAR_PATH not in args:
            return body
        try:
            return dict(body, programArgsList=_python.resolve(args, jar_id, self.cluster_config(fresh=True)))
        except _python.PythonProgramError as exc:
            raise FlinkApiError('Cannot submit the PyFlink program: %s' % exc)

    def python_failure(self, jar_id):
        """Why a PyFlink program failed, from the JobManager's log (PythonDriver logs the program's output there
        and answers the request only "Python process exits with code: 1"); None when the log tells nothing."""
        try:
            log = self.client.request('GET', '/jobmanager/log', 'read the JobManager log', allow_404=True, text=True)
        except FlinkError:
            return None
        return _python.last_traceback(log or '', jar_id)

    def _program_call(self, jar_id, body, call):
        # A PyFlink program alone, other programs side by side, per cluster on this host (_program_gate: Flink builds a PyFlink
        # job through its Python gateway, on threads that read the JVM-wide execution context of the last program
        # call; see the README, PyFlink jobs).
        python = body.get('entryClass') == _python.DRIVER_CLASS
        deadline = self.client.deadline
        try:
            with program_gate(python, deadline.remaining, lock_path(self.client.urls), sleep=self._sleep):
                return self._python_call(jar_id, body, call) if python else call(body)
        except GateTimeout:
            raise FlinkApiError('Could not %s within %s: another run on this host kept submitting %s the whole time '
                                '(a PyFlink program is submitted alone; see the README, PyFlink jobs)'
                                % ('run the PyFlink program' if python else 'run the program', deadline.describe(),
                                   'programs' if python else 'a PyFlink program'))

    def _python_call(self, jar_id, body, call):
        try:
            return call(self._with_jar_path(jar_id, body))
        except FlinkApiError as exc:
            reason = exc.cause or exc.msg
            if 'Python process exits' not in reason:
                raise
            python = self.python_failure(jar_id)
            if not python:
                raise
            raise FlinkApiError('%s; the Python program: %s' % (exc.msg, python), status=exc.status,
                                cause='%s; the Python program: %s' % (reason, python), url=exc.url)

    def plan_jar(self, jar_id, body, what):
        return self._program_call(jar_id, body, lambda b: self.client.request(
            'POST', '/jars/%s/plan' % jar_id, what, json_body=b, timeout=self.LONG_CALL_TIMEOUT))

    def run_jar(self, jar_id, body, what):
        return self._program_call(jar_id, body, lambda b: self.client.request(
            'POST', '/jars/%s/run' % jar_id, what, json_body=b, retry_lost=False, timeout=self.LONG_CALL_TIMEOUT))

    # -- savepoints ----------------------------------------------------------------
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
                raise SavepointTimeout('%s: the savepoint did not complete within %s'
                                       % (what, deadline.describe()), trigger_id=trigger_id)
            self._sleep(min(POLL_INTERVAL, deadline.remaining()))

    def dispose_savepoint(self, path):
        """Trigger a disposal; a lost answer raises FlinkLostAnswer (the caller knows it may have gone through)."""
        return self.client.request('POST', '/savepoint-disposal', 'dispose savepoint %s' % path,
                                   json_body={'savepoint-path': path}, retry_lost=False)

    def disposal_status(self, trigger_id):
        return self.client.get('/savepoint-disposal/%s' % trigger_id, 'read the savepoint disposal status',
                               allow_404=True)
