"""An in-memory stand-in for Flink's REST API, for the reconciler's pure logic.

It models what the reconciler depends on (FACTS.md): duplicate job ids are
refused also after the job ended, uploads always store a new copy, cancel is
asynchronous-looking but immediate here. Integration tests check the real thing.

What a job does after it started is scripted (``script``, ``on_run``): phases
that change its status, task counts, exception history and checkpoint counts
at a point of fake time (``at``: seconds after the job started, on the clock in
``FakeFlink.now``) or at its n-th status read (``read``: overview or
``GET /jobs/<id>``). A job that ended is never changed by its script again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import json
import re
import threading
import uuid

from .fakes import DUPLICATE_23, FakeResponse, flink_error


class FakeFlink(object):
    def __init__(self, version='2.3.0'):
        self.version = version
        self.jobs = {}      # id -> dict(jid, name, state, start-time)
        self.jars = {}      # id -> name
        self.savepoints = {}
        # Stops that Flink declines (the job keeps running): a list of failure causes, used up in order.
        self.declined_stops = []
        # Stops that finish the job with its savepoint but whose status says they failed, with this cause
        # (Flink 1.20.5 after the leader died as the savepoint completed: NullPointerException); used up in order.
        self.misreported_stops = []
        self.failed_triggers = {}
        self.requests = []
        self.clock = 1000
        self.hooks = []     # callables (method, path, body) -> response or None, consumed in order
        self.job_name_of = lambda body: 'job-from-jar'
        self.bodies = {}    # job id -> run body
        self.checkpoint_paths = {}  # job id -> latest retained checkpoint path
        self.retain_on_cancel = False
        self.reject_run = None      # callable(body) -> error response or None
        self.reject_plan = None     # callable(body) -> error response or None
        self.forgotten = set()      # ids Flink still refuses but no longer lists (jobstore expiration)
        self.restored = {}          # job id -> savepointPath it was started from
        self.cluster_config = {'state.savepoints.dir': 'file:/sp'}
        self.plans = []             # bodies of /plan requests
        self.failures = {}          # job id -> exception history entries (newest first)
        self.now = lambda: 0.0      # fake time for scripted jobs (tests put their FakeClock here)
        self.timelines = {}         # job id -> [phase dicts not applied yet], see script()
        self.started_at = {}        # job id -> fake time it was submitted
        self.reads = {}             # job id -> how often its status was read (overview or GET /jobs/<id>)
        self.on_run = []            # (predicate(run body), phases): the script of a job submitted later
        self.checkpoint_counts = {}     # job id -> completed checkpoints (counts.completed)
        self.checkpoint_interval_ms = 10000     # 0x7fffffffffffffff: checkpointing disabled
        self.checkpoint_timeout_ms = 600000
        # Stops that stay IN_PROGRESS: (polls of the status answered IN_PROGRESS, failure cause or None), used up
        # in order. The job keeps RUNNING meanwhile; then it FINISHES with the savepoint, or keeps running with
        # the failure (Flink aborted the savepoint).
        self.slow_stops = []
        self.pending_stops = {}     # trigger id -> {'jid', 'polls', 'location', 'failure'}
        self.watchers = []          # callables (method, path) called after every request was answered
        self.taskmanagers = 1       # GET /overview
        self.slots = 2
        self.lock = threading.RLock()   # one request at a time, as seen by the reconcilers of a job set's threads

    def add_job(self, jid, name, state='RUNNING'):
        self.clock += 1
        self.jobs[jid] = {'jid': jid, 'name': name, 'state': state, 'start-time': self.clock, 'end-time': -1,
                          'duration': 5, 'tasks': {'running': 2, 'total': 2}}
        self.started_at[jid] = self.now()

    def script(self, jid, *phases):
        """What becomes of job ``jid`` after it started: phase dicts, applied in order once due.

        A phase is due at ``at`` seconds of fake time after the job started, or at its ``read``-th status
        read; it sets ``state``, ``tasks`` (see ``tasks()``), adds an exception history entry for ``failure``
        (an exception text) and sets the completed checkpoint count to ``checkpoints``.
        """
        self.timelines[jid] = list(phases)

    def advance(self, jid):
        """Apply the due phases of ``jid``'s script."""
        job = self.jobs.get(jid)
        timeline = self.timelines.get(jid)
        while job and timeline and job['state'] not in ('FINISHED', 'CANCELED', 'FAILED'):
            phase = timeline[0]
            if 'at' in phase and self.now() - self.started_at.get(jid, 0.0) < phase['at']:
                return
            if 'read' in phase and self.reads.get(jid, 0) < phase['read']:
                return
            timeline.pop(0)
            if 'state' in phase:
                if phase['state'] in ('FINISHED', 'CANCELED', 'FAILED'):
                    self.end(jid, phase['state'])
                else:
                    job['state'] = phase['state']
            if 'tasks' in phase:
                job['tasks'] = dict(phase['tasks'])
            if phase.get('failure'):
                self.failures.setdefault(jid, []).insert(0, {
                    'exceptionName': phase['failure'].split(':', 1)[0], 'stacktrace': phase['failure'],
                    'timestamp': int(self.now() * 1000)})
            if 'checkpoints' in phase:
                self.checkpoint_counts[jid] = phase['checkpoints']

    def _read_status(self, jid):
        self.reads[jid] = self.reads.get(jid, 0) + 1
        self.advance(jid)

    def end(self, jid, state='CANCELED'):
        self.clock += 1
        self.jobs[jid]['state'] = state
        self.jobs[jid]['end-time'] = self.clock

    def forget(self, jid):
        """Flink stops listing an ended job but still refuses its id."""
        self.jobs.pop(jid)
        self.forgotten.add(jid)

    def live(self, name=None):
        return [j for j in self.jobs.values() if j['state'] not in ('FINISHED', 'CANCELED', 'FAILED')
                and (name is None or j['name'] == name)]

    def mutating(self):
        return [(m, p) for m, p in self.requests if m != 'GET']

    def __call__(self, method, url, kwargs):
        with self.lock:
            return self._answer(method, url, kwargs)

    def _answer(self, method, url, kwargs):
        path = re.sub(r'^https?://[^/]+', '', url)
        self.requests.append((method, path))
        body = kwargs.get('json')
        for hook in list(self.hooks):
            answer = hook(method, path, body)
            if answer is not None:
                self.hooks.remove(hook)
                self._watch(method, path)
                return answer
        answer = self.route(method, path, body, kwargs)
        self._watch(method, path)
        return answer

    def _watch(self, method, path):
        for watcher in self.watchers:
            watcher(method, path)

    def route(self, method, path, body, kwargs):
        m = re.match(r'^/jobs/([0-9a-f]{32})(/.*)?$', path)
        if m and not (method == 'GET' and m.group(2) is None):
            self.advance(m.group(1))
        if method == 'GET' and path == '/jobs/overview':
            for jid in list(self.jobs):
                self._read_status(jid)
            return FakeResponse(200, {'jobs': list(self.jobs.values())})
        if method == 'GET' and path == '/overview':
            return FakeResponse(200, {'taskmanagers': self.taskmanagers, 'slots-total': self.slots,
                                      'flink-version': self.version})
        if method == 'GET' and path == '/config':
            return FakeResponse(200, {'flink-version': self.version})
        if method == 'GET' and path == '/jars':
            return FakeResponse(200, {'files': [{'id': k, 'name': v} for k, v in self.jars.items()]})
        if method == 'GET' and path == '/jobmanager/config':
            return FakeResponse(200, [{'key': k, 'value': v} for k, v in self.cluster_config.items()])
        if method == 'POST' and path == '/jars/upload':
            name = kwargs['data'].filename
            jar_id = '%s_%s' % (uuid.uuid4(), name)
            self.jars[jar_id] = name
            return FakeResponse(200, {'filename': '/tmp/flink-web/upload/' + jar_id, 'status': 'success'})
        m = re.match(r'^/jars/([^/]+)/run$', path)
        if method == 'POST' and m:
            if m.group(1) not in self.jars:
                return flink_error(400, 'Jar file /tmp/x/%s does not exist' % m.group(1))
            jid = body['jobId']
            if jid in self.jobs or jid in self.forgotten:
                return DUPLICATE_23
            if self.reject_run:
                rejected = self.reject_run(body)
                if rejected is not None:
                    self.add_job(jid, self.job_name_of(body), state='FAILED')
                    return rejected
            self.add_job(jid, self.job_name_of(body))
            self.bodies[jid] = body
            for wanted, phases in self.on_run:
                if wanted(body):
                    self.script(jid, *phases)
                    break
            if body.get('savepointPath'):
                self.restored[jid] = body['savepointPath']
            return FakeResponse(200, {'jobid': jid})
        m = re.match(r'^/jars/([^/]+)/plan$', path)
        if method == 'POST' and m:
            self.plans.append(body)
            if self.reject_plan:
                rejected = self.reject_plan(body)
                if rejected is not None:
                    return rejected
            return FakeResponse(200, {'plan': {'jid': 'x'}})
        m = re.match(r'^/jars/([^/]+)$', path)
        if method == 'DELETE' and m:
            self.jars.pop(m.group(1), None)
            return FakeResponse(200, {})
        m = re.match(r'^/jobs/([0-9a-f]{32})/config$', path)
        if m and method == 'GET':
            params = ((self.bodies.get(m.group(1)) or {}).get('flinkConfiguration') or {}).get(
                'pipeline.global-job-parameters', '')
            user = dict(kv.split(':', 1) for kv in params.split(',') if kv)
            if m.group(1) not in self.jobs:
                return flink_error(404, 'Job could not be found.')
            return FakeResponse(200, {'jid': m.group(1), 'execution-config': {'user-config': user}})
        m = re.match(r'^/jobs/([0-9a-f]{32})/checkpoints/config$', path)
        if m and method == 'GET':
            return FakeResponse(200, {'mode': 'exactly_once', 'interval': self.checkpoint_interval_ms,
                                      'timeout': self.checkpoint_timeout_ms,
                                      'externalization': {'enabled': self.retain_on_cancel,
                                                          'delete_on_cancellation': not self.retain_on_cancel}})
        m = re.match(r'^/jobs/([0-9a-f]{32})/checkpoints$', path)
        if m and method == 'GET':
            latest = {'savepoint': None, 'completed': None}
            for trigger, loc in self.savepoints.items():
                if '-%s-' % m.group(1)[-8:] in loc:
                    latest['savepoint'] = {'external_path': loc, 'trigger_timestamp': 2, 'discarded': False}
            cp = self.checkpoint_paths.get(m.group(1))
            completed = self.checkpoint_counts.get(m.group(1), 0)
            if cp:
                latest['completed'] = {'external_path': cp, 'trigger_timestamp': 1, 'discarded': False}
            elif completed:
                latest['completed'] = {'external_path': 'file:/cp/%s/chk-%d' % (m.group(1), completed),
                                       'trigger_timestamp': 1, 'discarded': False}
            if latest['completed'] and completed:
                latest['completed']['id'] = completed
            if m.group(1) in self.restored:
                latest['restored'] = {'external_path': self.restored[m.group(1)], 'is_savepoint': True}
            if m.group(1) not in self.jobs:
                return flink_error(404, 'Job could not be found.')
            return FakeResponse(200, {'counts': {'completed': completed, 'failed': 0, 'in_progress': 0,
                                                 'restored': 1 if m.group(1) in self.restored else 0,
                                                 'total': completed},
                                      'latest': latest})
        m = re.match(r'^/jobs/([0-9a-f]{32})$', path)
        if m and method == 'GET':
            if m.group(1) in self.jobs:
                self._read_status(m.group(1))
            job = self.jobs.get(m.group(1))
            return FakeResponse(200, job) if job else flink_error(404, 'Job could not be found.')
        if m and method == 'PATCH':
            job = self.jobs.get(m.group(1))
            if not job:
                return flink_error(404, 'Job could not be found.')
            if job['state'] in ('FINISHED', 'FAILED'):
                return flink_error(409, 'Job is in terminal state')
            if job['state'] != 'CANCELED':
                self.end(m.group(1), 'CANCELED')
            return FakeResponse(202, {})
        m = re.match(r'^/jobs/([0-9a-f]{32})/stop$', path)
        if m and method == 'POST':
            job = self.jobs[m.group(1)]
            trigger = body['triggerId']
            if self.declined_stops:
                self.failed_triggers[trigger] = self.declined_stops.pop(0)
                return FakeResponse(202, {'request-id': trigger})
            location = '%s/savepoint-%s-%s' % (body.get('targetDirectory') or 'file:/sp', m.group(1)[-8:],
                                               trigger[:12])
            if self.slow_stops:
                polls, failure = self.slow_stops.pop(0)
                self.pending_stops[trigger] = {'jid': m.group(1), 'polls': polls, 'location': location,
                                               'failure': failure}
                return FakeResponse(202, {'request-id': trigger})
            self.end(m.group(1), 'FINISHED')
            self.savepoints[trigger] = location
            if self.misreported_stops:
                self.failed_triggers[trigger] = self.misreported_stops.pop(0)
            return FakeResponse(202, {'request-id': trigger})
        m = re.match(r'^/jobs/([0-9a-f]{32})/savepoints/([0-9a-f]+)$', path)
        if m and method == 'GET':
            pending = self.pending_stops.get(m.group(2))
            if pending is not None:
                if pending['polls'] > 0:
                    pending['polls'] -= 1
                    return FakeResponse(200, {'status': {'id': 'IN_PROGRESS'}})
                del self.pending_stops[m.group(2)]
                if pending['failure']:
                    self.failed_triggers[m.group(2)] = pending['failure']
                else:
                    self.end(pending['jid'], 'FINISHED')
                    self.savepoints[m.group(2)] = pending['location']
            loc = self.savepoints.get(m.group(2))
            if m.group(2) in self.failed_triggers:
                return FakeResponse(200, {'status': {'id': 'COMPLETED'}, 'operation': {'failure-cause': {
                    'class': 'org.apache.flink.runtime.checkpoint.CheckpointException',
                    'stack-trace': 'org.apache.flink.runtime.checkpoint.CheckpointException: '
                                   + self.failed_triggers[m.group(2)]}}})
            if loc is None:
                return flink_error(404, 'unknown trigger')
            return FakeResponse(200, {'status': {'id': 'COMPLETED'}, 'operation': {'location': loc}})
        m = re.match(r'^/jobs/([0-9a-f]{32})/exceptions$', path)
        if m and method == 'GET':
            entries = list(self.failures.get(m.group(1), []))
            job = self.jobs.get(m.group(1))
            if not entries and job and job['state'] == 'FAILED':
                entries = [{'exceptionName': 'java.lang.RuntimeException',
                            'stacktrace': 'java.lang.RuntimeException: boom'}]
            return FakeResponse(200, {'exceptionHistory': {'entries': entries}})
        return flink_error(404, 'Not found: %s %s' % (method, path))


def tasks(**counts):
    """Task counts as ``GET /jobs/overview`` reports them: every state, and the total."""
    out = dict((state, 0) for state in ('created', 'scheduled', 'deploying', 'initializing', 'running', 'finished',
                                        'canceling', 'canceled', 'failed', 'reconciling'))
    out.update(counts)
    out['total'] = sum(counts.values())
    return out


def crash_loop(first_failure_at=3.0, cause='java.lang.NullPointerException: cannot read the restored state',
               restart_delay=1.0, cycles=200):
    """Phases of a job that fails ``first_failure_at`` s after every (re)start and restarts after ``restart_delay``."""
    phases = []
    t = 0.0
    for _cycle in range(cycles):
        t += first_failure_at
        phases.append({'at': t, 'state': 'RESTARTING', 'tasks': tasks(canceling=2), 'failure': cause})
        t += restart_delay
        phases.append({'at': t, 'state': 'RUNNING', 'tasks': tasks(running=2)})
    return phases


def body_json(kwargs):
    return json.loads(kwargs) if isinstance(kwargs, str) else kwargs
