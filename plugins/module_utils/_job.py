# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""The flink_job reconciler: observe -> plan -> act one step -> observe again.

* observe (``observe``): ``GET /jobs/overview`` and, only where a decision
  needs it, a job's record, its checkpoints, the Flink version and the default
  savepoint directory. A no-op run reads the job list and the live job's record.
* plan (``_plan.plan``): pure; check mode reports its answer and stops.
* act: one step (wait out a cancelling instance, remove a duplicate, submit,
  upgrade, cancel, stop), then observe again, because another run may have
  acted meanwhile. All of it is bounded by ``wait_timeout``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time
import uuid

from ansible_collections.flinkops.flink.plugins.module_utils._api import (
    Deadline,
    FlinkApiError,
    FlinkError,
    FlinkLostAnswer,
    FlinkNotReadyTimeout,
    is_duplicate_submission,
)
from ansible_collections.flinkops.flink.plugins.module_utils import _config as cfg
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils._model import (
    TERMINAL_STATES,
    PlanError,
    health,
    is_ending,
    is_live,
)
from ansible_collections.flinkops.flink.plugins.module_utils import _plan as planner
from ansible_collections.flinkops.flink.plugins.module_utils._service import (
    FlinkJobs,
    FlinkUnsupportedVersion,
    SavepointResultLost,
    SavepointTimeout,
    find_local_savepoint,
    is_jar_missing,
    is_transient_savepoint_failure,
    is_under,
    jar_marker,
    restore_point,
    restored_source,
    savepoint_target,
)
from ansible_collections.flinkops.flink.plugins.module_utils import _upgrade
from ansible_collections.flinkops.flink.plugins.module_utils._upgrade import UpgradeTransaction
from ansible_collections.flinkops.flink.plugins.module_utils._health import HealthGate, NotHealthy
from ansible_collections.flinkops.flink.plugins.module_utils._waiter import POLL_INTERVAL, WaitTimeout, wait_for
from ansible_collections.flinkops.flink.plugins.module_utils._python import DRIVER_CLASS as PYTHON_DRIVER

# How often one run may observe and plan again after another run acted in between.
MAX_REPLANS = 8
# Flink's default execution.checkpointing.timeout: a savepoint in flight ends within it.
DEFAULT_CHECKPOINT_TIMEOUT_S = 600.0
# Following a stop-with-savepoint past the budget: slack on top of the checkpoint timeout (a failover), and the
# budget for what comes after it when no rollback budget applies (the job ending, for state=absent).
FOLLOW_GRACE_S = 30.0
# After a lost /run answer: how long to look for the job id before sending the submission again.
LOST_ANSWER_GRACE_S = 10.0
AFTER_FOLLOW_S = 30.0
# Flink's REST answers about a job (checkpoint statistics included) come from a cache refreshed every 3 s: right
# after a job ended, ``latest.completed`` may still name a checkpoint Flink has already replaced and deleted.
STATS_REFRESH_S = 3.5


UpgradeError = _upgrade.UpgradeError   # raised by the transaction; callers may catch it from here


class Submitted(object):
    """The outcome of one submission attempt series."""

    def __init__(self, outcome, job_id, generation=None, refused=0):
        self.outcome = outcome      # accepted | taken (another run's instance holds the id) | replan
        self.job_id = job_id
        self.generation = generation
        self.refused = refused      # ids Flink refused as already used, although it no longer lists them


class JarIds(object):
    """Jar ids on the cluster by SHA-256, shared by the reconcilers of one module run.

    The jobs of a set (flink_job_set) that run one jar find or upload it once:
    a reconciler holds the jar's lock while it looks for it and uploads it.
    """

    def __init__(self):
        self._ids = {}
        self._locks = {}
        self._guard = threading.Lock()

    def lock(self, sha):
        with self._guard:
            return self._locks.setdefault(sha, threading.Lock())

    def get(self, sha):
        return self._ids.get(sha)

    def __getitem__(self, sha):
        return self._ids[sha]

    def __setitem__(self, sha, jar_id):
        self._ids[sha] = jar_id


class JobReconciler(object):
    """Brings one named job to its desired state. ``run()`` returns the module result.

    ``flink_job`` runs one; ``flink_job_set`` (``_fleet``) runs one per job of the set,
    sharing ``jars`` and deferring the removal of replaced jars to the end of the
    run (``clean_jars=False``: the replaced versions are kept in ``replaced``).
    ``only`` limits the job's instances to these ids (pruning touches only the
    instances that carry the set's record).
    """

    def __init__(self, client, desired, check_mode=False, diff=False, warn=None, sleep=time.sleep, jars=None,
                 clean_jars=True, only=None):
        self.client = client
        self.api = FlinkJobs(client, sleep=sleep)
        self.desired = desired
        self.check_mode = check_mode
        self.diff = diff
        self._warn = warn or (lambda msg: None)
        self._warned = set()
        self._sleep = sleep
        self.jar_id = None
        self._jar_ids = jars if jars is not None else JarIds()
        self.clean_jars = clean_jars
        self.replaced = []      # (previous Version, new Version) of upgrades whose jar removal was deferred
        self.only = only
        # Never go below a generation this run has seen: after a failover Flink may list none of the
        # ended instances and accept their ids again.
        self._floor = 0
        self._stats_fresh_at = None   # when checkpoint statistics reflect a job this run saw end

    @property
    def deadline(self):
        return self.client.deadline

    def warn(self, msg):
        if msg not in self._warned:
            self._warned.add(msg)
            self._warn(msg)

    # -- observe -----------------------------------------------------------------
    def observe(self, jobs=None, known=None):
        """What the next plan needs. ``jobs`` and ``known`` (job id -> record): read once for a whole set."""
        d = self.desired
        api = self.api
        caps = api.capabilities()  # first: an unsupported Flink is refused before anything else is read
        if d.state != 'absent' and d.program is not None:
            refusal = caps.pyflink_refusal(d.name, where=api.client.url)
            if refusal:
                raise FlinkUnsupportedVersion(refusal)
        if jobs is None:
            jobs = api.overview()
        if self.only is not None:
            jobs = [j for j in jobs if j['id'] in self.only]
        obs = planner.Observation(d.name, jobs, capabilities=caps)
        self._floor = max(self._floor, planner.next_generation(obs.own))
        records = {}

        def read(jid):
            if known is not None and jid in known:
                return known[jid]
            return api.record(jid)
        if d.state != 'absent':
            for j in obs.own:
                if is_live(j) and not is_ending(j):
                    records[j['id']] = read(j['id'])
        for j in obs.named:
            if is_live(j):
                records[j['id']] = read(j['id'])
        obs.records = records
        if d.state == 'absent':
            if d.savepoint and not d.savepoint_dir and any(is_live(j) for j in obs.candidates()):
                obs.savepoint_dir = api.default_savepoint_dir()
            return obs
        live = [j for j in obs.candidates() if is_live(j)]
        if not live:
            for j in obs.named:
                if j['id'] not in records:
                    records[j['id']] = api.record(j['id'])
            obs.records = records
            if not d.restore_decided:
                obs.history = self._history(obs)
        elif d.state == 'upgraded':
            running = [j for j in live if not is_ending(j)]
            if len(running) == 1:
                job = running[0]
                record = records.get(job['id'])
                if record is None or not (ident.same_spec(d.spec, record) and ident.same_scope(d.scope, record)):
                    if d.upgrade_mode == 'savepoint' and not d.savepoint_dir:
                        obs.savepoint_dir = api.default_savepoint_dir()
                    if d.upgrade_mode == 'last-state':
                        obs.checkpoint_config = api.checkpoint_config(job['id'])
        return obs

    def _history(self, obs):
        """Ended instances newest first, up to the first one that tells where the state is."""
        history = []
        for job in obs.ended_candidates():
            self._await_fresh_stats()
            self._await_stats_after(job)
            cps = self.api.checkpoints(job['id'])
            point = restore_point(cps)
            restored = None
            if point is None:
                # Where the instance was started from: its record says so. Flink's latest.restored is no substitute:
                # after a restart or a failover it names the instance's own checkpoint, deleted when it was cancelled.
                record = obs.records[job['id']] if job['id'] in obs.records else self.api.record(job['id'])
                obs.records[job['id']] = record
                restored = (record.restored_from if record is not None else None) or \
                    restored_source(cps, own_job_id=job['id'])
            history.append(planner.HistoryEntry(job, point, restored))
            if point is not None or restored is not None:
                break
        return history

    # -- results -------------------------------------------------------------------
    def _spec_view(self, spec, jar_name=None):
        if spec is None:
            return {'spec': 'unknown (no flinkops record with the job)'}
        view = spec.public()
        view['config'] = cfg.mask_config(view['config'])
        view['spec_hash'] = spec.digest()
        if jar_name:
            view['jar_name'] = jar_name
        return view

    def _state_of(self, job, record=None):
        if job is None:
            return {'state': 'absent'}
        out = {'state': 'running' if is_live(job) else 'absent', 'job_id': job['id'], 'flink_state': job['state'],
               'flink_name': job['name']}
        if ident.belongs_to(job['id'], self.desired.name):
            out['generation'] = job.get('generation')
        else:
            out['adopted'] = True
        if record is not None:
            out.update(self._spec_view(record.spec, record.jar_name))
            if record.scope is not None:
                out['scope'] = record.scope
        return out

    def _declared_state(self, job_id, generation, restore=None):
        d = self.desired
        out = {'state': 'running', 'job_id': job_id, 'generation': generation}
        out.update(self._spec_view(d.spec, d.version().jar_name))
        if d.scope is not None:
            out['scope'] = d.scope
        if restore and restore.get('path'):
            out['restored_from'] = restore['path']
        return out

    def _result(self, changed, action, job_id=None, job=None, before=None, after=None, **extra):
        result = {
            'changed': changed,
            'action': action,
            'job_id': job['id'] if job else job_id,
            'job': job,
            'adopted': bool(extra.pop('adopted', False)),
            'jar_id': self.jar_id,
            'spec_hash': self.desired.spec_hash,
        }
        if job is not None and is_live(job):
            result['health'] = health(job)
        result.update(extra)
        if self.diff:
            result['diff'] = {'before': before or {}, 'after': after or {}}
        return result

    def _report_health(self, job):
        state = health(job)
        if state not in (None, 'healthy'):
            self.warn('Job %r (%s) is live but not healthy: Flink reports it %s (tasks: %s).'
                      % (self.desired.name, job['id'], job['state'], job.get('tasks') or 'unknown'))

    # -- main ----------------------------------------------------------------------
    def prepare(self, jobs=None, known=None):
        """Observe and plan, sending nothing that changes the cluster: (observation, plan)."""
        obs = self.observe(jobs, known)
        return obs, planner.plan(self.desired, obs)

    def run(self, prepared=None):
        """Reconcile; ``prepared`` (from ``prepare``) is used as the first observation and plan."""
        if self.desired.state == 'absent':
            obs, the_plan = prepared or self.prepare()
            for w in the_plan.warnings:
                self.warn(w)
            return self._absent(the_plan)
        done = []
        for _round in range(MAX_REPLANS):
            obs, the_plan = prepared or self.prepare()
            prepared = None
            for w in the_plan.warnings:
                self.warn(w)
            if self.check_mode:
                return self._predicted(the_plan, obs)
            if the_plan.action == 'none':
                return self._noop(the_plan, obs, bool(done), done)
            if the_plan.action == 'wait':
                for jid in the_plan.wait_for:
                    self._wait_terminal(jid)
                continue
            if the_plan.action == 'dedupe':
                self._remove(the_plan.targets)
                done.append('deduplicated')
                continue
            if the_plan.action == 'submit':
                outcome = self._present(the_plan, obs)
            else:
                outcome = self._upgrade(the_plan, obs, done)
            if outcome is not None:
                return outcome
            # Another run acted between our observation and our step: look again.
        raise FlinkApiError('Job %r kept changing under this run (other runs acted %d times between its observation '
                            'and its action); nothing more was done. Run again.' % (self.desired.name, MAX_REPLANS))

    def _noop(self, the_plan, obs, changed, done):
        job = the_plan.live
        record = obs.records.get(job['id']) if job else None
        self._report_health(job)
        state = self._state_of(job, record)
        return self._result(changed, done[-1] if done else 'none', job=job, before=state, after=state,
                            drift=the_plan.drift, adopted=the_plan.adopted)

    def _predicted(self, the_plan, obs):
        """Check mode: the plan, as the result a real run would give."""
        a = the_plan.action
        if a == 'none':
            return self._noop(the_plan, obs, False, [])
        if a == 'dedupe':
            state = self._state_of(the_plan.live, obs.records.get(the_plan.live['id']))
            before = dict(state, duplicates=[j['id'] for j in the_plan.targets])
            return self._result(True, 'deduplicated', job=the_plan.live, before=before, after=state,
                                job_ids=[j['id'] for j in the_plan.targets])
        if a in ('submit', 'wait'):
            if a == 'wait':
                self.warn('Job %r: instance(s) %s are still cancelling; the job will be submitted once they ended, '
                          'from the state they leave.' % (self.desired.name, ', '.join(the_plan.wait_for)))
            extra = {'generation': the_plan.generation}
            if the_plan.restore:
                extra['restored_from'] = the_plan.restore
            return self._result(True, 'submitted', job_id=the_plan.job_id, before={'state': 'absent'},
                                after=self._declared_state(the_plan.job_id, the_plan.generation, the_plan.restore),
                                **extra)
        old = the_plan.live
        before = self._state_of(old, obs.records.get(old['id']))
        after = self._declared_state(the_plan.job_id, the_plan.generation)
        after['upgrade_mode'] = self.desired.upgrade_mode
        return self._result(True, 'upgraded', job_id=the_plan.job_id, before=before, after=after,
                            previous_job_id=old['id'], generation=the_plan.generation,
                            upgrade_mode=self.desired.upgrade_mode, adopted=the_plan.adopted)

    # -- present ---------------------------------------------------------------------
    def _present(self, the_plan, obs):
        d = self.desired
        restore = the_plan.restore
        version = d.version()
        sub = self._submit(version, the_plan.generation, restore['path'] if restore else None,
                           known_state=restore is not None)
        if sub.outcome != 'accepted':
            return None
        job, survivor = self._settle(sub.job_id)
        extra = {'generation': sub.generation}
        if sub.refused:
            extra['refused_submissions'] = sub.refused
        if restore:
            extra['restored_from'] = restore
        after = self._declared_state(sub.job_id, sub.generation, restore)
        if survivor is not None:
            return self._superseded(survivor, sub.job_id, after)
        if d.wait:
            verdict = HealthGate(self.api, d.health, sleep=self._sleep).verify(sub.job_id, self.deadline)
            extra['verification'] = verdict.evidence
            job = verdict.view or job
            if not verdict.ok:
                after['flink_state'] = job['state']
                result = self._result(True, 'submitted', job=job, before={'state': 'absent'}, after=after, **extra)
                raise NotHealthy('Job %r was submitted as %s, but it is not healthy: %s. It is left as Flink runs it '
                                 '(there is no previous version to go back to): fix the job and run again, or remove '
                                 'it with state=absent.' % (d.name, sub.job_id, verdict.reason), result)
        after['flink_state'] = job['state']
        return self._result(True, 'submitted', job=job, before={'state': 'absent'}, after=after, **extra)

    def _superseded(self, survivor, mine, after):
        self.warn('Job %r: another run started an instance (%s) at the same time as this run (%s). Both runs keep %s '
                  '(the instance started from state, else the earlier one); this run cancelled %s.'
                  % (self.desired.name, survivor['id'], mine, survivor['id'], mine))
        record = self.api.record(survivor['id'])
        if record is not None and not ident.same_spec(self.desired.spec, record):
            self.warn('Job %r: the surviving instance %s runs another version than this run declared.'
                      % (self.desired.name, survivor['id']))
        return self._result(True, 'superseded', job=survivor, before={'state': 'absent'},
                            after=self._state_of(survivor, record), cancelled_job_id=mine)

    def _settle(self, jid):
        """After an accepted submission: wait for it (wait=true), then make sure it is the only live instance.

        Two runs that saw different histories can both be accepted under different
        generations. Every run that sees two live instances picks the same
        survivor (``_plan.survivor_key``) and cancels the others. Returns
        (job view, survivor view if it is not ``jid``, else None).
        """
        view = None
        if self.desired.wait:
            try:
                view = self._wait_running(jid)
            except FlinkApiError:
                view = self.api.job(jid)
                if view is None or view['state'] != 'CANCELED' or not self._other_live(jid):
                    raise
        live = [j for j in self.api.overview()
                if ident.belongs_to(j['id'], self.desired.name) and is_live(j) and not is_ending(j)]
        if view is None:
            view = next((j for j in live if j['id'] == jid), None) or self.api.job(jid) or \
                {'id': jid, 'name': self.desired.name, 'state': 'SUBMITTED', 'generation': ident.generation_of(jid)}
        others = [j for j in live if j['id'] != jid]
        if not others:
            return view, None
        records = dict((j['id'], self.api.record(j['id'])) for j in live)
        candidates = live if any(j['id'] == jid for j in live) else live + [view]
        survivor, losers = planner.choose_survivor(candidates, records)
        self._remove([j for j in losers if is_live(j)])
        if survivor['id'] == jid:
            self.warn('Job %r: another run started an instance at the same time (%s); it was cancelled, %s runs.'
                      % (self.desired.name, ', '.join(j['id'] for j in others), jid))
            return view, None
        return view, survivor

    def _other_live(self, jid):
        return [j for j in self.api.overview() if ident.belongs_to(j['id'], self.desired.name)
                and is_live(j) and j['id'] != jid]

    def _remove(self, jobs):
        for job in jobs:
            self.api.cancel(job['id'])
        for job in jobs:
            self._wait_terminal(job['id'])

    # -- upgrade -----------------------------------------------------------------------
    def _upgrade(self, the_plan, obs, done):
        return UpgradeTransaction(self, the_plan, obs).run(done)

    def _last_state(self, old):
        d = self.desired
        # A job that just started may not have completed a checkpoint yet: wait for one, within wait_timeout.
        try:
            wait_for(lambda: restore_point(self.api.checkpoints(old['id'])), lambda p: p is not None, self.deadline,
                     'a completed checkpoint of job %s' % old['id'], sleep=self._sleep)
        except WaitTimeout:
            raise FlinkApiError('Could not upgrade job %r with upgrade_mode=last-state: job %s reported no completed '
                                'checkpoint within %s. The running job was not touched.'
                                % (d.name, old['id'], self.deadline.describe()))
        self.api.cancel(old['id'])
        self._wait_terminal(old['id'])
        self._await_fresh_stats()
        point = restore_point(self.api.checkpoints(old['id']))
        if point is None:
            raise FlinkApiError('Job %r (%s) was cancelled for a last-state upgrade, but Flink reports no retained '
                                'checkpoint for it any more; nothing was started. Start it with restore_from.'
                                % (d.name, old['id']))
        return point[0]

    def _clean_jars(self, previous, new):
        """Remove the previous version's jar, unless another live job records that it uses it. Never raises.

        Job records are read only when there is a jar to remove.
        """
        if previous is None or previous.jar_sha256 == new.jar_sha256:
            return
        if not self.clean_jars:
            self.replaced.append((previous, new))
            return
        try:
            marker = jar_marker(previous.jar_sha256)
            doomed = [f['id'] for f in self.api.jars() if str(f.get('name', '')).startswith(marker)]
            if not doomed:
                return
            for view in self.api.overview():
                if is_live(view):
                    rec = self.api.record(view['id'])
                    if rec is not None and rec.spec.jar_sha256 == previous.jar_sha256:
                        return
            for jar_id in doomed:
                self.api.delete_jar(jar_id)
        except Exception as exc:  # pylint: disable=broad-except
            # Clean-up never fails an upgrade that succeeded: its result (savepoint, job id) must reach the user.
            self.warn('Job %r was upgraded, but removing the previous version\'s jar failed: %s'
                      % (self.desired.name, getattr(exc, 'msg', None) or exc))

    # -- absent ----------------------------------------------------------------------------
    def _absent(self, the_plan):
        d = self.desired
        if the_plan.action == 'none':
            for jid in the_plan.wait_for:
                if not self.check_mode and d.wait:
                    self._wait_terminal(jid)
            return self._result(False, 'none', job_id=the_plan.job_id, before={'state': 'absent'},
                                after={'state': 'absent'})
        before = self._state_of(the_plan.targets[0])
        before['job_ids'] = [j['id'] for j in the_plan.targets]
        after = {'state': 'absent'}
        action = 'stopped' if the_plan.action == 'stop' else 'cancelled'
        job_ids = [j['id'] for j in the_plan.targets]
        if self.check_mode:
            return self._result(True, action, job=the_plan.targets[0], before=before, after=after, job_ids=job_ids,
                                adopted=the_plan.adopted)
        savepoints = []
        for job in the_plan.targets:
            if the_plan.action == 'stop':
                try:
                    path, _overran = self._stop_with_savepoint(job['id'], the_plan.savepoint_dir)
                except FlinkApiError as exc:
                    raise FlinkApiError('%s. %s' % (exc.msg, self._state_after_failed_stop(job['id'])[0]),
                                        status=exc.status, cause=exc.cause)
                savepoints.append(path)
            else:
                self.api.cancel(job['id'])
        final = None
        if d.wait:
            for jid in job_ids + the_plan.wait_for:
                view = self._wait_terminal(jid)
                if jid == job_ids[0]:
                    final = view
        else:
            final = self.api.job(job_ids[0])
        extra = {'job_ids': job_ids, 'adopted': the_plan.adopted}
        if savepoints:
            extra['savepoint'] = savepoints[0]
            extra['savepoints'] = savepoints
        return self._result(True, action, job=final or the_plan.targets[0], before=before, after=after, **extra)

    # -- submission --------------------------------------------------------------------------
    def _jar_for(self, version):
        """Jar id of a version's jar on the cluster, uploading it when the module has the file.

        A version whose file the module does not have (the previous one, on rollback)
        may sit on another JobManager than the current endpoint: the client then
        moves to the endpoint that has it.
        """
        sha = version.jar_sha256
        with self._jar_ids.lock(sha):
            if self._jar_ids.get(sha) is None:
                jar_id = self.api.find_jar(sha)
                if jar_id is None and version.jar_path:
                    jar_id = self.api.upload_jar(version.jar_path, sha)
                elif jar_id is None:
                    jar_id = self.api.find_jar_on_any(sha, keep=True)
                    if jar_id is None:
                        raise FlinkApiError(
                            'The jar of version %s of job %r (sha256 %s) is on none of the JobManagers in url (%s), '
                            'and this run has no file to upload it from. A jar lives with the JobManager that took '
                            'the upload: it is lost when that JobManager dies or restarts.'
                            % (version.jar_name or 'unknown', version.name, sha[:16], ', '.join(self.client.urls)),
                            cause='the previous version\'s jar is no longer on the cluster')
                self._jar_ids[sha] = jar_id
        if version.jar_path:
            self.jar_id = self._jar_ids[sha]
        return self._jar_ids[sha]

    def _submit(self, version, generation, restore_path, known_state, explicit_empty=False, salt=None):
        """Submit ``version`` under the first free generation from ``generation`` on.

        An id Flink refuses as already submitted although it no longer lists it
        belongs to an instance Flink forgot: proof that the job ran before. Without
        a known restore point that is a PlanError (no silent empty start);
        otherwise the next ids tried are generation+1, +3, +7, ... so a forgotten
        history of n instances costs about log2(n) refused submissions.

        ``/run`` runs the program's ``main()`` inside the request. When its
        answer is lost, the request is not sent again blindly: the job id is
        looked up first (for up to LOST_ANSWER_GRACE_S, since a slow ``main()``
        may still be running on the JobManager), and only a submission that did
        not land is repeated, under the same id and record.
        """
        d = self.desired
        name = version.name
        self._jar_for(version)
        what = 'start job %r' % name
        generation = max(generation, self._floor)
        marker = restore_path or (planner.EXPLICIT_EMPTY if (explicit_empty or d.restore_decided) else None)
        step = 1
        refused = 0
        reuploaded = False
        while True:
            jid = ident.job_id(name, generation)
            record = version.record(marker, salt=salt)
            maybe_sent = False
            while True:
                body = self.api.run_body(version, jid, restore_path, record)
                used = self._jar_ids[version.jar_sha256]
                try:
                    self.api.run_jar(used, body, what)
                except FlinkLostAnswer:
                    # It may have arrived, or still be running main(): look before sending it again.
                    maybe_sent = True
                    landed = self._landed(jid)
                    if landed is None:
                        self._pause('retry %s after a lost answer' % what)
                        continue
                    break
                except FlinkApiError as exc:
                    if is_duplicate_submission(exc.msg):
                        break
                    if not reuploaded and version.jar_path and is_jar_missing(exc):
                        # The jar vanished (JobManager restarted with a new web.tmpdir): upload again, unless
                        # another job of this run did already.
                        reuploaded = True
                        sha = version.jar_sha256
                        with self._jar_ids.lock(sha):
                            if self._jar_ids.get(sha) == used:
                                self._jar_ids[sha] = self.api.upload_jar(version.jar_path, sha)
                        self.jar_id = self._jar_ids[sha]
                        continue
                    taken = self.api.job(jid)
                    if taken is not None and (is_live(taken) or self._is_ours(jid, record)):
                        # The answer does not say why, but the id is taken: by another run's live instance (a
                        # PyFlink program answers "Python process exits with code: 1" to a duplicate id, whose
                        # Python traceback Flink keeps to itself), or by this submission (main() failed after the
                        # job was submitted). Which of the two, the job's record tells below. An instance that
                        # failed to start carries no record (Flink keeps no configuration of it): a failure.
                        maybe_sent = True
                        break
                    raise FlinkApiError('Could not start job %r: %s' % (name, exc.cause or exc.msg),
                                        status=exc.status, cause=exc.cause or exc.msg)
                self._floor = max(self._floor, generation + 1)
                if body.get('entryClass') == PYTHON_DRIVER:
                    self._check_python_record(jid, record)
                return Submitted('accepted', jid, generation, refused)
            # Refused as a duplicate: whose is it?
            self._floor = max(self._floor, generation + 1)
            view = self.api.job(jid)
            if view is not None:
                if maybe_sent and self._is_ours(jid, record):
                    if not is_live(view) and view['state'] != 'FINISHED':
                        cause = self.api.failure_cause(jid)
                        raise FlinkApiError('Job %r (id %s) ended as %s right after it was submitted: %s'
                                            % (name, jid, view['state'], cause or 'no exception reported'),
                                            cause=cause)
                    return Submitted('accepted', jid, generation, refused)
                # Another run's instance holds the id (live, or it ended meanwhile): plan again.
                return Submitted('taken' if is_live(view) else 'replan', jid, generation, refused)
            if not (known_state or d.restore_decided):
                raise PlanError(planner.missing_state_message(
                    name, 'Flink refused job id %s as already submitted although it no longer lists it' % jid))
            refused += 1
            generation += step
            step *= 2

    def _landed(self, jid):
        """The job ``jid`` once Flink lists it, within LOST_ANSWER_GRACE_S and the budget; None if it did not land."""
        end = min(self.deadline.now() + LOST_ANSWER_GRACE_S, self.deadline.end)
        while True:
            view = self.api.job(jid)
            if view is not None:
                return view
            if self.deadline.now() >= end:
                return None
            self._sleep(POLL_INTERVAL)

    def _is_ours(self, jid, record):
        """True when job ``jid`` carries ``record`` (this submission's salt). A job that has just been submitted
        shows no configuration until its JobMaster runs, so a live job without a readable record is looked at
        again (for up to LOST_ANSWER_GRACE_S and the budget) before it counts as another's."""
        end = min(self.deadline.now() + LOST_ANSWER_GRACE_S, self.deadline.end)
        while True:
            theirs = self.api.record(jid)
            if theirs is not None:
                return theirs.salt == record.salt
            view = self.api.job(jid)
            if view is None or not is_live(view) or self.deadline.now() >= end:
                return False
            self._sleep(POLL_INTERVAL)

    def _check_python_record(self, jid, record):
        """After Flink accepted this run's PyFlink program as job ``jid``: the job must carry this run's record.

        Flink builds a PyFlink job with the JVM-wide execution context of the JobManager's latest program call
        (_program_gate). A program call from another host at the same moment can so give this run's program that
        call's settings. Then the job's record, and so every later run's view of it, would describe another
        program: fail loudly instead.
        """
        end = min(self.deadline.now() + LOST_ANSWER_GRACE_S, self.deadline.end)
        while True:
            theirs = self.api.record(jid)
            if theirs is not None or self.deadline.now() >= end:
                break
            self._sleep(POLL_INTERVAL)
        if theirs is None or theirs.salt == record.salt:
            return
        raise FlinkApiError(
            'Flink started job %r (id %s) with the settings of another program call that reached the JobManager at '
            'the same moment (a PyFlink program reads the JobManager\'s JVM-wide execution context; see the README, '
            'PyFlink jobs): the job runs this run\'s program, but its record describes %s. One instance runs; '
            'nothing was stopped. Run again with state=upgraded to put the declared version in place under its own '
            'record, and submit PyFlink programs to this cluster from one host at a time.'
            % (self.desired.name, jid, 'spec %s' % theirs.spec.digest() if theirs.spec is not None else 'another job'))

    def _pause(self, why):
        if self.deadline.expired():
            raise FlinkApiError('Could not %s within %s' % (why, self.deadline.describe()))
        self._sleep(min(POLL_INTERVAL, self.deadline.remaining()))

    def _wait_running(self, jid):
        d = self.desired

        def until(view):
            if view is None:
                return False
            if view['state'] == 'RUNNING':
                return True
            if view['state'] == 'FINISHED':
                self.warn('Job %r (id %s) finished before it was seen RUNNING; flink_job is meant for long-running '
                          'jobs' % (d.name, jid))
                return True
            if view['state'] in TERMINAL_STATES:
                cause = self.api.failure_cause(jid)
                raise FlinkApiError('Job %r (id %s) was submitted but ended as %s: %s'
                                    % (d.name, jid, view['state'], cause or 'no exception reported'), cause=cause)
            return False
        try:
            return wait_for(lambda: self.api.job(jid), until, self.deadline, 'job %s RUNNING' % jid, sleep=self._sleep)
        except WaitTimeout as exc:
            last = exc.last
            cause = self.api.failure_cause(jid) if last else None
            raise FlinkApiError(
                'Job %r (id %s) was submitted but is not RUNNING within %s (state %s)%s.'
                % (d.name, jid, self.deadline.describe(), last['state'] if last else 'unknown',
                   '; latest exception: %s' % cause if cause else ''),
                cause='not RUNNING within %s' % self.deadline.describe())

    def _await_stats_after(self, job):
        """An instance that ended moments ago (another run stopped it): give Flink's stats cache time to catch up.

        Its age is judged by this host's clock against Flink's end time; an end
        time that looks recent, or lies in the future (clock skew), costs one
        pause of at most STATS_REFRESH_S.
        """
        end = job.get('end_time_ms')
        if not end:
            return
        age = time.time() - end / 1000.0
        if age < 60:
            self._sleep(max(0.0, min(STATS_REFRESH_S, STATS_REFRESH_S - age)) if age >= 0 else STATS_REFRESH_S)

    def _await_fresh_stats(self):
        if self._stats_fresh_at is not None:
            pause = self._stats_fresh_at - self.deadline.now()
            if pause > 0:
                self._sleep(pause)
            self._stats_fresh_at = None

    def _wait_terminal(self, jid):
        seen_live = []

        def ended(view):
            if view is not None and is_live(view):
                seen_live.append(True)
                return False
            return True
        try:
            view = wait_for(lambda: self.api.job(jid), ended, self.deadline, 'job %s ended' % jid, sleep=self._sleep)
            if seen_live:
                self._stats_fresh_at = self.deadline.now() + STATS_REFRESH_S
            return view
        except WaitTimeout as exc:
            raise FlinkApiError('Job %r (id %s) did not end within %s (state %s)'
                                % (self.desired.name, jid, self.deadline.describe(),
                                   exc.last['state'] if exc.last else 'unknown'))

    # -- stop with savepoint -----------------------------------------------------------------
    def _stop_with_savepoint(self, jid, base):
        """Stop ``jid`` with a savepoint into its own directory under ``base``: (path, overran seconds or None).

        A job that is recovering (after a JobManager failover, or a restart)
        declines savepoints until all its tasks run again; that refusal is
        waited out, with a fresh trigger, within the budget. Any other failure
        raises, and the caller reads what became of the job.

        A stop that Flink has begun cannot be called back: when the budget runs
        out while it is in flight, it is followed to its end (Flink ends it
        within the job's checkpoint timeout) and the second value says by how
        many seconds it overran the budget.
        """
        what = 'Could not stop job %r (id %s) with a savepoint' % (self.desired.name, jid)
        checkpoint_timeout = self.api.checkpoint_timeout_s(jid) or DEFAULT_CHECKPOINT_TIMEOUT_S
        budget = self.deadline
        while True:
            trigger_id = uuid.uuid4().hex
            target = savepoint_target(base, trigger_id)
            sent_at = self.deadline.now()

            def trigger():
                self.api.trigger_stop(jid, trigger_id, target)
            try:
                try:
                    trigger()
                    return self.api.wait_savepoint(jid, trigger_id, trigger, self.deadline, what), None
                except (SavepointTimeout, FlinkNotReadyTimeout):
                    return self._follow_stop(jid, trigger_id, target, sent_at, checkpoint_timeout, budget, what)
            except SavepointResultLost as exc:
                # The job finished with the savepoint, and the JobManager that knew where it went died.
                # The savepoint has a directory of its own: take it from there.
                found = self._savepoint_of_finished_stop(jid, target)
                if found:
                    self.warn('Flink lost the result of the stop-with-savepoint of job %s in a JobManager failover; '
                              'using the savepoint written for it: %s' % (jid, found))
                    return found, self._overran(budget, sent_at)
                raise SavepointResultLost('%s. The savepoint is in %s (savepoint-*/_metadata); start the job with '
                                          'restore_from set to it.' % (exc.msg, target or 'the savepoint directory'),
                                          cause=exc.cause)
            except FlinkApiError as exc:
                view = self._view_now(jid)
                if view is not None and view.get('state') == 'FINISHED':
                    # Seen on Flink 1.20.5: the leader died as the savepoint completed, and the new leader
                    # reports the stop as failed (NullPointerException) although the job finished with it.
                    found = self._savepoint_of_finished_stop(jid, target)
                    if found:
                        self.warn('Flink reported the stop-with-savepoint of job %s as failed (%s), but the job '
                                  'FINISHED and the savepoint written for this stop is complete: %s. Using it.'
                                  % (jid, exc.cause or exc.msg, found))
                        return found, self._overran(budget, sent_at)
                # Never send a new stop once the budget is gone (a followed stop that failed is final).
                if not (is_transient_savepoint_failure(exc) and view is not None and is_live(view)
                        and not budget.expired()):
                    raise
            self._pause('stop job %s with a savepoint (it was not ready for one yet)' % jid)

    def _savepoint_of_finished_stop(self, jid, target):
        """The complete savepoint in this stop's own directory ``target``, or None.

        The directory belongs to one trigger, and Flink writes ``_metadata`` last, so a
        savepoint found there (on this host's disk, or as the job's latest savepoint in
        its checkpoint statistics) is the one this stop took, whole.
        """
        if not target:
            return None
        found = find_local_savepoint(target)
        if found:
            return found
        try:
            data = self.api.checkpoints(jid)
        except FlinkError:
            return None
        entry = ((data or {}).get('latest') or {}).get('savepoint') or {}
        path = entry.get('external_path')
        if path and not entry.get('discarded') and is_under(path, target):
            return path
        return None

    def _follow_stop(self, jid, trigger_id, target, sent_at, checkpoint_timeout, budget, what):
        """Follow a stop-with-savepoint that outlived ``budget`` to its end; (path, overran seconds)."""
        end = sent_at + checkpoint_timeout + FOLLOW_GRACE_S
        self.client.deadline = Deadline.ending_at(
            end, clock=budget.now, label='the job\'s checkpoint timeout (%.0f s) after the stop' % checkpoint_timeout,
            timeout=checkpoint_timeout + FOLLOW_GRACE_S)
        self.warn('Stopping job %r (id %s) with a savepoint takes longer than %s. Flink cannot call a stop back, so '
                  'this run follows it to its end (Flink ends it within the job\'s checkpoint timeout of %.0f s).'
                  % (self.desired.name, jid, budget.describe(), checkpoint_timeout))

        def no_retrigger():
            # Never send a new stop after the budget: a lost trigger means the job was not stopped.
            raise FlinkApiError('%s: Flink no longer knows the stop (trigger %s); the job was not stopped by it'
                                % (what, trigger_id), cause='the stop-with-savepoint was lost')
        path = self.api.wait_savepoint(jid, trigger_id, no_retrigger, self.deadline, what)
        overran = self._overran(budget, sent_at)
        # Whatever follows (a rollback, or waiting for the job to end) gets a short budget of its own.
        self.client.deadline = Deadline(AFTER_FOLLOW_S, clock=budget.now, label='the budget after the stop')
        return path, overran

    @staticmethod
    def _overran(budget, sent_at):
        """How long a stop took that outlived ``budget`` (seconds since it was sent), else None."""
        if not budget.expired():
            return None
        return budget.now() - sent_at

    def _state_after_failed_stop(self, jid):
        """(sentence, still live) about a job whose stop failed, as Flink reports it now (never assumed)."""
        try:
            view = self._view_now(jid)
        except FlinkError as exc:
            return 'Its state could not be read (%s).' % exc.msg, False
        if view is None:
            return 'Flink no longer knows it.', False
        if view['state'] == 'RUNNING':
            return 'The job keeps running (Flink reports it RUNNING now).', True
        if is_live(view) and not is_ending(view):
            return 'The job is %s (live, but not verified running).' % view['state'], True
        return 'The job is %s.' % view['state'], False

    def _view_now(self, jid):
        """A job as ``GET /jobs/overview`` lists it now (not cached), else ``GET /jobs/<id>``."""
        for view in self.api.overview():
            if view['id'] == jid:
                return view
        return self.api.job(jid)
