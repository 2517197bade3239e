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

import os
import time
import uuid

from ansible_collections.flinkops.flink.plugins.module_utils._api import (
    Deadline,
    FlinkApiError,
    FlinkError,
    FlinkLostAnswer,
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
    SavepointResultLost,
    find_local_savepoint,
    is_jar_missing,
    is_transient_savepoint_failure,
    jar_marker,
    restore_point,
    restored_source,
    savepoint_target,
)
from ansible_collections.flinkops.flink.plugins.module_utils._waiter import POLL_INTERVAL, WaitTimeout, wait_for

# How often one run may observe and plan again after another run acted in between.
MAX_REPLANS = 8
# Flink's REST answers about a job (checkpoint statistics included) come from a cache refreshed every 3 s: right
# after a job ended, ``latest.completed`` may still name a checkpoint Flink has already replaced and deleted.
STATS_REFRESH_S = 3.5


class UpgradeError(FlinkError):
    """An upgrade failed; ``result`` tells what was left running and where the state is."""

    def __init__(self, msg, result):
        super(UpgradeError, self).__init__(msg)
        self.result = result


class Submitted(object):
    """The outcome of one submission attempt series."""

    def __init__(self, outcome, job_id, generation=None, refused=0):
        self.outcome = outcome      # accepted | taken (another run's instance holds the id) | replan
        self.job_id = job_id
        self.generation = generation
        self.refused = refused      # ids Flink refused as already used, although it no longer lists them


class JobReconciler(object):
    """Brings one named job to its desired state. ``run()`` returns the module result."""

    def __init__(self, client, desired, check_mode=False, diff=False, warn=None, sleep=time.sleep):
        self.client = client
        self.api = FlinkJobs(client, sleep=sleep)
        self.desired = desired
        self.check_mode = check_mode
        self.diff = diff
        self._warn = warn or (lambda msg: None)
        self._warned = set()
        self._sleep = sleep
        self.jar_id = None
        self._jar_ids = {}
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
    def observe(self):
        d = self.desired
        api = self.api
        obs = planner.Observation(d.name, api.overview())
        self._floor = max(self._floor, planner.next_generation(obs.own))
        records = {}
        if d.state != 'absent':
            for j in obs.own:
                if is_live(j) and not is_ending(j):
                    records[j['id']] = api.record(j['id'])
        for j in obs.named:
            if is_live(j):
                records[j['id']] = api.record(j['id'])
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
            obs.version = api.version()
        elif d.state == 'upgraded':
            running = [j for j in live if not is_ending(j)]
            if len(running) == 1:
                job = running[0]
                record = records.get(job['id'])
                if record is None or not ident.same_spec(d.spec, record):
                    obs.version = api.version()
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
            restored = restored_source(cps)
            if point is None and restored is None:
                record = obs.records[job['id']] if job['id'] in obs.records else self.api.record(job['id'])
                obs.records[job['id']] = record
                if record is not None and record.restored_from:
                    restored = record.restored_from
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
        return out

    def _declared_state(self, job_id, generation, restore=None):
        d = self.desired
        out = {'state': 'running', 'job_id': job_id, 'generation': generation}
        out.update(self._spec_view(d.spec, os.path.basename(d.jar) if d.jar else None))
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
    def run(self):
        if self.desired.state == 'absent':
            obs = self.observe()
            the_plan = planner.plan(self.desired, obs)
            for w in the_plan.warnings:
                self.warn(w)
            return self._absent(the_plan)
        done = []
        for _round in range(MAX_REPLANS):
            obs = self.observe()
            the_plan = planner.plan(self.desired, obs)
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
        d = self.desired
        old = the_plan.live
        previous = the_plan.previous
        new = d.version()
        before = self._state_of(old, obs.records.get(old['id']))
        extra = {'previous_job_id': old['id'], 'upgrade_mode': d.upgrade_mode, 'adopted': the_plan.adopted}

        # 1. Everything that can fail is checked while the old version keeps running.
        jar_id = self._jar_for(new)
        self._validate(new, jar_id)
        if previous is not None and previous.jar_sha256 != new.jar_sha256:
            # Jars live with the JobManager whose REST endpoint took the upload: look at every url.
            if self.api.find_jar_on_any(previous.jar_sha256, keep=False) is None and not d.allow_no_rollback:
                raise PlanError('Upgrade of job %r would have no way back: the jar of the running version (sha256 %s, '
                                '%s) is on none of the JobManagers in url. The running job was not touched. Set '
                                'allow_no_rollback: true to upgrade anyway.'
                                % (d.name, previous.jar_sha256[:16], previous.jar_name))
        # 2. Take the state out of the running job.
        restore_path = None
        if d.upgrade_mode == 'savepoint':
            try:
                restore_path = self._stop_with_savepoint(old['id'], the_plan.savepoint_dir)
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
        # 3. Observe again: a run that declares another version may have started the job in between.
        generation = planner.next_generation([j for j in self.api.overview()
                                              if ident.belongs_to(j['id'], d.name)])
        try:
            sub = self._submit(new, generation, restore_path, known_state=True, explicit_empty=restore_path is None)
            if sub.outcome != 'accepted':
                self.warn('Job %r: another run started the job while this run upgraded it (after the savepoint %s); '
                          'planning again.' % (d.name, restore_path))
                done.append('upgraded')
                return None
            job, survivor = self._settle(sub.job_id)
        except FlinkError as exc:
            self._roll_back(old, new, previous, restore_path, exc, extra)
            raise  # _roll_back always raises
        if survivor is not None:
            done.append('upgraded')
            return None
        extra['generation'] = sub.generation
        self._clean_jars(previous, new)
        after = self._declared_state(job['id'], sub.generation)
        after['upgrade_mode'] = d.upgrade_mode
        return self._result(True, 'upgraded', job=job, before=before, after=after, **extra)

    def _validate(self, version, jar_id):
        body = self.api.program_body(version)
        try:
            self.api.plan_jar(jar_id, body, 'build the job graph of the new version of %r' % self.desired.name)
        except FlinkApiError as exc:
            raise FlinkApiError('The new version of job %r cannot start: %s. The running job was not touched.'
                                % (self.desired.name, exc.cause or exc.msg), status=exc.status, cause=exc.cause)

    def _last_state(self, old):
        d = self.desired
        # A job that just started may not have completed a checkpoint yet: wait for one, within wait_timeout.
        try:
            wait_for(lambda: restore_point(self.api.checkpoints(old['id'])), lambda p: p is not None, self.deadline,
                     'a completed checkpoint of job %s' % old['id'], sleep=self._sleep)
        except WaitTimeout:
            raise FlinkApiError('Could not upgrade job %r with upgrade_mode=last-state: job %s reported no completed '
                                'checkpoint within wait_timeout=%.0f s. The running job was not touched.'
                                % (d.name, old['id'], self.deadline.timeout))
        self.api.cancel(old['id'])
        self._wait_terminal(old['id'])
        self._await_fresh_stats()
        point = restore_point(self.api.checkpoints(old['id']))
        if point is None:
            raise FlinkApiError('Job %r (%s) was cancelled for a last-state upgrade, but Flink reports no retained '
                                'checkpoint for it any more; nothing was started. Start it with restore_from.'
                                % (d.name, old['id']))
        return point[0]

    def _roll_back(self, old, new, previous, restore_path, exc, extra):
        d = self.desired
        reason = exc.cause or exc.msg
        # The rollback gets its own time budget: the deadline may be what made the upgrade fail.
        self.client.deadline = Deadline(max(self.deadline.timeout, 60))
        # Never leave the failed new version behind.
        failed_ids = []
        for view in self.api.overview():
            if ident.belongs_to(view['id'], d.name) and is_live(view) and view['id'] != old['id']:
                failed_ids.append(view['id'])
                self.api.cancel(view['id'])
        for jid in failed_ids:
            self._wait_terminal(jid)
        where = ('savepoint %s' % restore_path) if restore_path else 'an empty state (upgrade_mode=stateless)'
        result = dict(extra, changed=True, action='rolled_back', job_id=None, failed_job_ids=failed_ids)
        if previous is None:
            result['action'] = 'failed'
            raise UpgradeError(
                'Upgrade of job %r failed: %s. The previous version could not be restarted: its spec is not known '
                '(allow_no_rollback). Its state is in %s; start it again with restore_from.'
                % (d.name, reason, restore_path or 'no savepoint'), result)
        try:
            generation = planner.next_generation([v for v in self.api.overview()
                                                  if ident.belongs_to(v['id'], d.name)])
            sub = self._submit(previous, generation, restore_path, known_state=True,
                               explicit_empty=restore_path is None)
            if sub.outcome != 'accepted':
                raise FlinkApiError('another run started job %r meanwhile (%s)' % (d.name, sub.job_id))
            job, survivor = self._settle(sub.job_id)
            job = survivor or job
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
        """Remove the previous version's jar, unless another live job records that it uses it. Never fails."""
        if previous is None or previous.jar_sha256 == new.jar_sha256:
            return
        try:
            for view in self.api.overview():
                if is_live(view):
                    rec = self.api.record(view['id'])
                    if rec is not None and rec.spec.jar_sha256 == previous.jar_sha256:
                        return
            marker = jar_marker(previous.jar_sha256)
            for f in self.api.jars():
                if str(f.get('name', '')).startswith(marker):
                    self.api.delete_jar(f['id'])
        except FlinkError as exc:
            self.warn('Job %r was upgraded, but removing the previous version\'s jar failed: %s'
                      % (self.desired.name, exc.msg))

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
                savepoints.append(self._stop_with_savepoint(job['id'], the_plan.savepoint_dir))
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
        if sha not in self._jar_ids or self._jar_ids[sha] is None:
            jar_id = self.api.find_jar(sha)
            if jar_id is None and version.jar_path:
                jar_id = self.api.upload_jar(version.jar_path, sha)
            elif jar_id is None:
                jar_id = self.api.find_jar_on_any(sha, keep=True)
            self._jar_ids[sha] = jar_id
        if version.jar_path:
            self.jar_id = self._jar_ids[sha]
        return self._jar_ids[sha]

    def _submit(self, version, generation, restore_path, known_state, explicit_empty=False):
        """Submit ``version`` under the first free generation from ``generation`` on.

        An id Flink refuses as already submitted although it no longer lists it
        belongs to an instance Flink forgot: proof that the job ran before. Without
        a known restore point that is a PlanError (no silent empty start);
        otherwise the next ids tried are generation+1, +3, +7, ... so a forgotten
        history of n instances costs about log2(n) refused submissions.
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
            record = version.record(marker)
            maybe_sent = False
            while True:
                body = self.api.run_body(version, jid, restore_path, record)
                try:
                    self.api.run_jar(self._jar_ids[version.jar_sha256], body, what)
                except FlinkLostAnswer:
                    # It may have arrived: repeat it under the same id (and record); Flink says "duplicate" if so.
                    maybe_sent = True
                    self._pause('retry %s after a lost answer' % what)
                    continue
                except FlinkApiError as exc:
                    if is_duplicate_submission(exc.msg):
                        break
                    if not reuploaded and version.jar_path and is_jar_missing(exc):
                        # The jar vanished (JobManager restarted with a new web.tmpdir): upload again.
                        reuploaded = True
                        self._jar_ids[version.jar_sha256] = self.api.upload_jar(version.jar_path, version.jar_sha256)
                        self.jar_id = self._jar_ids[version.jar_sha256]
                        continue
                    raise FlinkApiError('Could not start job %r: %s' % (name, exc.cause or exc.msg),
                                        status=exc.status, cause=exc.cause or exc.msg)
                self._floor = max(self._floor, generation + 1)
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

    def _is_ours(self, jid, record):
        theirs = self.api.record(jid)
        return theirs is not None and theirs.salt == record.salt

    def _pause(self, why):
        if self.deadline.expired():
            raise FlinkApiError('Could not %s within wait_timeout=%.0f s' % (why, self.deadline.timeout))
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
                'Job %r (id %s) was submitted but is not RUNNING within wait_timeout=%.0f s (state %s)%s.'
                % (d.name, jid, self.deadline.timeout, last['state'] if last else 'unknown',
                   '; latest exception: %s' % cause if cause else ''),
                cause='not RUNNING within wait_timeout=%.0f s' % self.deadline.timeout)

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
            raise FlinkApiError('Job %r (id %s) did not end within wait_timeout=%.0f s (state %s)'
                                % (self.desired.name, jid, self.deadline.timeout,
                                   exc.last['state'] if exc.last else 'unknown'))

    # -- stop with savepoint -----------------------------------------------------------------
    def _stop_with_savepoint(self, jid, base):
        """Stop ``jid`` with a savepoint into its own directory under ``base`` and return its path.

        A job that is recovering (after a JobManager failover, or a restart)
        declines savepoints until all its tasks run again; that refusal is
        waited out, with a fresh trigger, within ``wait_timeout``. Any other
        failure is final, and the job keeps running.
        """
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
