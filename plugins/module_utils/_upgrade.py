# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""``state=upgraded`` as a transaction.

preflight -> take state -> start new -> verify healthy -> commit, or compensate.

* **preflight**, while the old version runs untouched: the new jar is on the
  cluster and its ``main()`` builds a job graph from the very request body the
  submission will send (``/jars/<id>/plan``); the planner already checked the
  Flink version, the savepoint directory, ``last-state`` retention and that
  the previous version can be started again.
* **take state**: stop-with-savepoint (``savepoint``), cancel after a retained
  checkpoint (``last-state``) or cancel (``stateless``).
* **start new** from that state, then **verify** it with the health gate
  (``_health``).
* **commit**: best-effort clean-up (the previous version's jar); a failure there
  is a warning, never a failed upgrade.
* **compensate**: cancel what was started and start the previous version from
  the same savepoint, verified by the same gate.

The time model (``TimeModel``): ``wait_timeout`` bounds the run.
``rollback_timeout`` of it is reserved for compensation up front: the forward
steps must be done by ``wait_timeout - rollback_timeout``, and compensation can
always use what is left, at least ``rollback_timeout``. One step cannot be
called back: a stop-with-savepoint that Flink has begun. If it is still in
flight when the forward budget runs out, the run follows it to its end (Flink
ends it within the job's checkpoint timeout) and then starts the previous
version from that savepoint, within ``rollback_timeout``; the job is never left
stopped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.flinkops.flink.plugins.module_utils._api import Deadline, FlinkApiError, FlinkError
from ansible_collections.flinkops.flink.plugins.module_utils import _config as cfg
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils import _plan as planner
from ansible_collections.flinkops.flink.plugins.module_utils._health import HealthGate
from ansible_collections.flinkops.flink.plugins.module_utils._model import is_live

# Clean-up after a successful upgrade never takes longer than this, and never fails the upgrade.
COMMIT_BUDGET_S = 15.0


def job_graph(plan):
    """A job graph as ``--diff`` shows it: one ``<vertex> (parallelism N)`` line per vertex, or None."""
    if not isinstance(plan, dict) or not isinstance(plan.get('nodes'), list):
        return None
    lines = []
    for node in plan['nodes']:
        if not isinstance(node, dict):
            continue
        text = str(node.get('description') or node.get('operator') or node.get('id') or '?')
        text = re.sub(r'<[^>]+>', ' ', text.replace('<br/>', ' / '))
        text = ' '.join(text.split())
        if len(text) > 120:
            text = text[:117] + '...'
        lines.append('%s (parallelism %s)' % (text, node.get('parallelism')))
    return lines


class UpgradeError(FlinkError):
    """An upgrade failed; ``result`` tells what was left running and where the state is."""

    def __init__(self, msg, result):
        super(UpgradeError, self).__init__(msg)
        self.result = result


class TimeModel(object):
    """Splits ``wait_timeout`` into the forward budget and the budget reserved for compensation."""

    def __init__(self, deadline, rollback_timeout):
        self.total = deadline
        self.reserve = float(rollback_timeout)
        self.clock = deadline.now

    def forward(self):
        return Deadline.ending_at(self.total.end - self.reserve, clock=self.clock,
                                  label='wait_timeout - rollback_timeout',
                                  timeout=max(0.0, self.total.timeout - self.reserve))

    def compensation(self):
        end = max(self.total.end, self.clock() + self.reserve)
        return Deadline.ending_at(end, clock=self.clock, label='rollback_timeout', timeout=self.reserve)

    def commit(self):
        return Deadline(min(COMMIT_BUDGET_S, max(self.total.remaining(), 1.0)), clock=self.clock,
                        label='the clean-up budget')


class UpgradeTransaction(object):
    """One upgrade of a live job to the declared version, through the reconciler's primitives."""

    def __init__(self, rec, the_plan, obs):
        self.rec = rec
        self.api = rec.api
        self.client = rec.client
        self.d = rec.desired
        self.plan = the_plan
        self.old = the_plan.live
        self.previous = the_plan.previous
        self.new = self.d.version()
        self.gate = HealthGate(self.api, self.d.health, sleep=rec._sleep)
        self.times = TimeModel(self.client.deadline, self.d.rollback_timeout)
        self.before = rec._state_of(self.old, obs.records.get(self.old['id']))
        self.salt = None
        self.graphs = None   # (running, new) job graphs for --diff: vertex names and parallelism
        self.extra = {'previous_job_id': self.old['id'], 'upgrade_mode': self.d.upgrade_mode,
                      'adopted': the_plan.adopted, 'savepoint': None, 'new_job_id': None}

    # -- the transaction -----------------------------------------------------------------
    def run(self, done):
        """The module result of a done upgrade, None to plan again, or UpgradeError."""
        total = self.client.deadline
        self.client.deadline = self.times.forward()
        try:
            self.preflight()
            restore_path, overran = self.take_state()
            self.extra['savepoint'] = restore_path
            if overran is not None:
                return self.compensate(
                    'stopping job %s with a savepoint took %.0f s, longer than the forward budget (%s), so the new '
                    'version was not started' % (self.old['id'], overran, self.times.forward().describe()),
                    restore_path)
            started = self.start_new(restore_path, done)
            if started is None:
                return None
            job, generation = started
            self.extra['new_job_id'] = job['id']
            self.extra['generation'] = generation
            verdict = self.gate.verify(job['id'], self.client.deadline)
            self.extra['verification'] = verdict.evidence
            if not verdict.ok:
                return self.compensate('the new version (job %s) is not healthy: %s' % (job['id'], verdict.reason),
                                       restore_path)
            return self.commit(verdict.view or job, generation)
        finally:
            if self.client.deadline is not total and self.client.deadline.end < total.end:
                self.client.deadline = total

    def preflight(self):
        """Everything that can fail is checked while the old version keeps running."""
        d = self.d
        rec = self.rec
        jar_id = rec._jar_for(self.new)
        self.salt = cfg.new_salt()
        record = self.new.record(None, salt=self.salt)
        # The submission's own body, but for what only /run takes (savepointPath, allowNonRestoredState).
        body = self.api.run_body(self.new, self.plan.job_id, None, record)
        try:
            answer = self.api.plan_jar(jar_id, body, 'build the job graph of the new version of %r' % d.name)
            if self.rec.diff:
                self.graphs = (self._graph_of_job(self.old['id']), job_graph((answer or {}).get('plan')))
        except FlinkApiError as exc:
            raise FlinkApiError('The new version of job %r cannot start: %s. The running job was not touched.'
                                % (d.name, exc.cause or exc.msg), status=exc.status, cause=exc.cause)
        previous = self.previous
        if previous is not None and previous.jar_sha256 != self.new.jar_sha256:
            # Jars live with the JobManager whose REST endpoint took the upload: look at every url.
            urls = self.client.urls
            where = self.api.jar_locations(previous.jar_sha256) if len(set(urls)) > 1 else None
            if where is None:
                where = [self.client.url] if self.api.find_jar_on_any(previous.jar_sha256, keep=False) else []
            if not where and not d.allow_no_rollback:
                raise planner.PlanError(
                    'Upgrade of job %r would have no way back: the jar of the running version (sha256 %s, %s) is on '
                    'none of the JobManagers in url. The running job was not touched. Set allow_no_rollback: true '
                    'to upgrade anyway.' % (d.name, previous.jar_sha256[:16], previous.jar_name))
            if len(where) == 1 and len(set(urls)) > 1:
                rec.warn('Job %r: the jar of the running version is only on %s. If that JobManager fails during this '
                         'upgrade, a rollback cannot start the previous version (the task then names the savepoint '
                         'to start it from by hand). A web.upload.dir shared by the JobManagers avoids this.'
                         % (d.name, where[0]))

    def take_state(self):
        """(restore path or None, seconds the stop overran the forward budget or None)."""
        d = self.d
        old = self.old
        if d.upgrade_mode == 'savepoint':
            try:
                path, overran = self.rec._stop_with_savepoint(old['id'], self.plan.savepoint_dir)
            except FlinkApiError as exc:
                self.client.deadline = self.times.compensation()
                sentence, running = self.rec._state_after_failed_stop(old['id'])
                result = self._failure('failed')
                result['changed'] = not running
                result['job_id'] = old['id'] if running else None
                raise UpgradeError('Could not upgrade job %r: stopping %s with a savepoint failed (%s). %s'
                                   % (d.name, old['id'], exc.cause or exc.msg, sentence), result)
            return path, overran
        if d.upgrade_mode == 'last-state':
            return self.rec._last_state(old), None
        self.api.cancel(old['id'])
        self.rec._wait_terminal(old['id'])
        return None, None

    def start_new(self, restore_path, done):
        """(job view, generation) of the new version, or None when another run started the job meanwhile."""
        d = self.d
        rec = self.rec
        generation = planner.next_generation([j for j in self.api.overview() if ident.belongs_to(j['id'], d.name)])
        try:
            sub = rec._submit(self.new, generation, restore_path, known_state=True,
                              explicit_empty=restore_path is None, salt=self.salt)
            if sub.outcome != 'accepted':
                rec.warn('Job %r: another run started the job while this run upgraded it (after the savepoint %s); '
                         'planning again.' % (d.name, restore_path))
                done.append('upgraded')
                return None
            self.extra['new_job_id'] = sub.job_id
            job, survivor = rec._settle(sub.job_id)
        except FlinkError as exc:
            return self.compensate('the new version could not start: %s' % (exc.cause or exc.msg), restore_path)
        if survivor is not None:
            done.append('upgraded')
            return None
        return job, sub.generation

    def commit(self, job, generation):
        d = self.d
        self.client.deadline = self.times.commit()
        self.rec._clean_jars(self.previous, self.new)   # never raises; a failure is a warning
        after = self.rec._declared_state(job['id'], generation)
        after['upgrade_mode'] = d.upgrade_mode
        before = dict(self.before)
        if self.graphs is not None:
            before['job_graph'], after['job_graph'] = self.graphs
        extra = dict(self.extra)
        return self.rec._result(True, 'upgraded', job=job, before=before, after=after, **extra)

    def _graph_of_job(self, jid):
        try:
            data = self.client.get('/jobs/%s/plan' % jid, 'read the job graph of job %s' % jid, allow_404=True)
        except FlinkError:
            return None
        return job_graph((data or {}).get('plan'))

    # -- compensation --------------------------------------------------------------------
    def compensate(self, reason, restore_path):
        """Stop what was started, start the previous version from ``restore_path``; always raises UpgradeError."""
        d = self.d
        rec = self.rec
        self.client.deadline = self.times.compensation()
        where = ('savepoint %s' % restore_path) if restore_path else 'an empty state (upgrade_mode=stateless)'
        state_hint = restore_path or 'no savepoint'
        failed_ids = []
        try:
            for view in self.api.overview():
                if ident.belongs_to(view['id'], d.name) and is_live(view) and view['id'] != self.old['id']:
                    failed_ids.append(view['id'])
                    self.api.cancel(view['id'])
            for jid in failed_ids:
                rec._wait_terminal(jid)
        except FlinkError as exc:
            result = self._failure('failed', failed_ids)
            raise UpgradeError(
                'Upgrade of job %r failed: %s. Cancelling the new version failed too (%s); instances of the job: %s. '
                'The state is in %s.' % (d.name, reason, exc.cause or exc.msg, self._instances(), state_hint), result)
        result = self._failure('rolled_back', failed_ids)
        if self.previous is None:
            result['action'] = 'failed'
            raise UpgradeError(
                'Upgrade of job %r failed: %s. The previous version could not be restarted: its spec is not known '
                '(allow_no_rollback). Nothing of the job runs; its state is in %s; start it again with restore_from.'
                % (d.name, reason, state_hint), result)
        try:
            generation = planner.next_generation([v for v in self.api.overview()
                                                  if ident.belongs_to(v['id'], d.name)])
            sub = rec._submit(self.previous, generation, restore_path, known_state=True,
                              explicit_empty=restore_path is None)
            if sub.outcome != 'accepted':
                raise FlinkApiError('another run started job %r meanwhile (%s)' % (d.name, sub.job_id))
            job, survivor = rec._settle(sub.job_id)
            job = survivor or job
            verdict = self.gate.verify(job['id'], self.client.deadline)
            result['rollback_verification'] = verdict.evidence
            job = verdict.view or job
        except FlinkError as again:
            result['action'] = 'failed'
            result['job_id'] = None
            raise UpgradeError(
                'Upgrade of job %r failed: %s. Restarting the previous version failed too: %s. Instances of the job '
                'now: %s. Its state is in %s: run the previous declaration with restore_from set to it.'
                % (d.name, reason, again.msg, self._instances(), state_hint), result)
        result.update(job_id=job['id'], job=job)
        if not verdict.ok:
            raise UpgradeError(
                'Upgrade of job %r failed: %s. The previous version was started again from %s as job %s, but it is '
                'not healthy either: %s.' % (d.name, reason, where, job['id'], verdict.reason), result)
        raise UpgradeError(
            'Upgrade of job %r failed: %s. The previous version was restored from %s and runs as job %s (verified '
            'healthy).' % (d.name, reason, where, job['id']), result)

    # -- results ---------------------------------------------------------------------------
    def _failure(self, action, failed_ids=None):
        return dict(self.extra, changed=True, action=action, job_id=None, failed_job_ids=list(failed_ids or []))

    def _instances(self):
        try:
            live = [v for v in self.api.overview() if ident.belongs_to(v['id'], self.d.name) and is_live(v)]
        except FlinkError as exc:
            return 'unknown (%s)' % exc.msg
        return ', '.join('%s %s' % (v['id'], v['state']) for v in live) or 'none live'
