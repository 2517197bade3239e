# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""flink_job's planner: a pure function of what was declared and what was observed.

``plan(desired, observation)`` returns one Plan: the next step, or ``none``.
It sends nothing and waits for nothing; check mode is exactly this function's
answer. Everything that can be known before a running job is touched is
decided here, and a decision that cannot be made safely is a PlanError that
names what the user must decide.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.flinkops.flink.plugins.module_utils import _config as cfg
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils._model import (
    PlanError,
    Version,
    describe,
    is_ending,
    is_live,
)

EXPLICIT_EMPTY = 'none'


class Observation(object):
    """Everything one planning step needs, read by the executor (``_job.observe``)."""

    def __init__(self, name, jobs, records=None, history=None, capabilities=None, savepoint_dir=None,
                 checkpoint_config=None):
        self.name = name
        self.jobs = jobs
        self.own = [j for j in jobs if ident.belongs_to(j['id'], name)]
        self.named = [j for j in jobs if j['name'] == name and not ident.belongs_to(j['id'], name)]
        self.records = dict(records or {})     # job id -> Record or None (read jobs only)
        self.history = list(history or [])     # ended candidates newest first, see HistoryEntry
        self.capabilities = capabilities       # _capabilities.Capabilities of the cluster's Flink line
        self.savepoint_dir = savepoint_dir     # the cluster's default savepoint directory
        self.checkpoint_config = checkpoint_config  # of the live job, for upgrade_mode=last-state

    def adoptable(self, job):
        """A job of another id scheme whose Flink name is ours: taken over only if no declaration owns it."""
        if job['id'] in self.records:
            record = self.records[job['id']]
            return record is None or record.name in (None, self.name)
        return False

    def candidates(self):
        """Instances of this job: ours by id, and same-named jobs that carry no record of another name."""
        return self.own + [j for j in self.named if self.adoptable(j)]

    def ended_candidates(self):
        ended = [j for j in self.candidates() if not is_live(j)]
        return sorted(ended, key=lambda j: (j['end_time_ms'] or 0, j['start_time_ms'] or 0), reverse=True)


class HistoryEntry(object):
    """An ended instance and the state it left: its own restore point, or what it was started from."""

    def __init__(self, job, point=None, restored=None):
        self.job = job
        self.point = point        # (path, kind) of its newest savepoint or retained checkpoint, or None
        self.restored = restored  # the path it was started from, EXPLICIT_EMPTY, or None


class Plan(object):
    def __init__(self, action, job_id=None, generation=None, live=None, targets=None, adopted=False, drift=False,
                 wait_for=None, restore=None, previous=None, savepoint_dir=None, evidence=None, survivor=None,
                 warnings=None):
        self.action = action          # none | wait | dedupe | submit | upgrade | cancel | stop
        self.job_id = job_id          # the job the result is about (the predicted id for submit/upgrade)
        self.generation = generation  # for submit/upgrade
        self.live = live              # the live job (present/upgraded)
        self.targets = targets or []  # jobs to cancel/stop (absent, dedupe)
        self.adopted = adopted
        self.drift = drift
        self.wait_for = wait_for or []
        self.restore = restore        # {'path', 'kind', 'job_id'} or None (empty start)
        self.previous = previous      # Version to roll back to (upgrade)
        self.savepoint_dir = savepoint_dir
        self.evidence = evidence or []
        self.survivor = survivor
        self.warnings = warnings or []

    @property
    def changes(self):
        return self.action not in ('none',)


def next_generation(own):
    gens = [j['generation'] for j in own if j.get('generation') is not None]
    return max(gens) + 1 if gens else 0


def survivor_key(job, record):
    """Two live instances of one name: the one started from state wins, then the earlier one.

    Every run that sees both computes the same survivor. The later one was
    accepted while the earlier was already listed, so its own run sees both
    and removes it; only a run that restored state beats an earlier empty one.
    """
    restored = record is not None and record.restored_from not in (None, EXPLICIT_EMPTY)
    return (0 if restored else 1, job['start_time_ms'] or 0, job['id'])


def choose_survivor(live, records):
    ordered = sorted(live, key=lambda j: survivor_key(j, records.get(j['id'])))
    return ordered[0], ordered[1:]


def previous_version(desired, job, record):
    """(Version to roll back to, None) or (None, why not)."""
    if record is None:
        return None, ('job %s carries no flinkops record (it was started by hand or by another tool, or the program '
                      'sets its own global job parameters), so its spec is unknown' % job['id'])
    secret_config = {}
    for key, digest in sorted((record.secrets.get('config') or {}).items()):
        value = desired.spec.secret_config.get(key) if desired.spec else None
        if value is None or cfg.secret_digest(value, record.salt) != digest:
            return None, ('job %s was started with a secret value for %s that the declaration does not carry (the '
                          'secret changed or was removed), so the previous version cannot be started again'
                          % (job['id'], key))
        secret_config[key] = value
    secret_args = []
    if record.secrets.get('args'):
        args = desired.spec.secret_args if desired.spec else []
        if not args or cfg.secret_digest('\x00'.join(args), record.salt) != record.secrets['args']:
            return None, ('job %s was started with secret_args that the declaration does not carry, so the previous '
                          'version cannot be started again' % job['id'])
        secret_args = list(args)
    spec = record.spec
    full = ident.Spec(spec.jar_sha256, spec.entry_class, spec.args, spec.parallelism, spec.config,
                      secret_config=secret_config, secret_args=secret_args, sql=spec.sql)
    return Version(desired.name, full, jar_name=record.jar_name, scope=record.scope), None


def choose_restore(desired, history):
    """Where a submission starts from: restore_from, or the newest state any ended instance left."""
    if desired.restore_decided:
        if desired.restore_path:
            return {'path': desired.restore_path, 'kind': 'explicit', 'job_id': None}
        return None
    for entry in history:
        if entry.point:
            return {'path': entry.point[0], 'kind': entry.point[1], 'job_id': entry.job['id']}
        if entry.restored == EXPLICIT_EMPTY:
            return {'path': None, 'kind': 'empty', 'job_id': entry.job['id']}
        if entry.restored:
            # It made no checkpoint of its own: its state is still the one it started from.
            return {'path': entry.restored, 'kind': 'restored_from', 'job_id': entry.job['id']}
    return None


def _savepoint_dir(desired, obs, why):
    where = desired.savepoint_dir or obs.savepoint_dir
    if not where:
        key = (obs.capabilities.savepoint_dir_key if obs.capabilities is not None
               else 'execution.checkpointing.savepoint-dir (state.savepoints.dir before Flink 1.20)')
        raise PlanError('%s needs a savepoint directory: set savepoint_dir, or %s in the cluster configuration. '
                        'Nothing was changed.' % (why, key))
    return where


def missing_state_message(name, evidence):
    return ('Job %r was deployed before (%s), but no savepoint or retained checkpoint of it is known: Flink reports '
            'none for its ended instances, or no longer lists them. flink_job will not silently start it from empty '
            'state. Set restore_from to the savepoint or checkpoint to resume from, or restore_from: none to start '
            'it empty. Nothing was submitted.' % (name, evidence))


def plan_present(desired, obs):
    upgrade = desired.state == 'upgraded'
    adoptable = [j for j in obs.named if obs.adoptable(j)]
    live_own = [j for j in obs.own if is_live(j) and not is_ending(j)]
    live_adopt = [j for j in adoptable if is_live(j) and not is_ending(j)]
    if live_adopt and (live_own or len(live_adopt) > 1):
        raise PlanError(
            'More than one live job claims the name %r: %s. flink_job adopts exactly one job per name and will not '
            'guess; cancel the extra instances (for example with state=absent, which stops all of them) and run '
            'again.' % (desired.name, describe(live_own + live_adopt)))
    if len(live_own) > 1:
        survivor, losers = choose_survivor(live_own, obs.records)
        return Plan('dedupe', job_id=survivor['id'], live=survivor, targets=losers, survivor=survivor['id'],
                    warnings=['Job %r had %d live instances (%s); keeping %s and cancelling the others.'
                              % (desired.name, len(live_own), describe(live_own), survivor['id'])])
    live = live_own + live_adopt
    if live:
        job = live[0]
        adopted = not ident.belongs_to(job['id'], desired.name)
        record = obs.records.get(job['id'])
        same = record is not None and ident.same_spec(desired.spec, record)
        if same and ident.same_scope(desired.scope, record):
            return Plan('none', job_id=job['id'], live=job, adopted=adopted)
        if not upgrade:
            warnings = []
            drift = record is not None or not adopted
            if same:
                warnings.append(
                    'Job %r runs the declared version, but its record puts it in %s, not in scope %r: pruning there '
                    'still counts it as that set\'s job. state=present leaves a running job alone; use '
                    'state=upgraded to restart it through a savepoint with the record of scope %r.'
                    % (desired.name, 'scope %r' % record.scope if record.scope else 'no scope', desired.scope,
                       desired.scope))
            elif drift:
                warnings.append(
                    'Job %r runs another version than the one declared (%s). state=present leaves a running job '
                    'alone; use state=upgraded to move it to the declared version.'
                    % (desired.name, 'job %s, spec %s' % (job['id'], record.spec.digest()[:12]) if record
                       else 'job %s carries no readable flinkops record' % job['id']))
            return Plan('none', job_id=job['id'], live=job, adopted=adopted, drift=drift, warnings=warnings)
        if record is None and not adopted:
            raise PlanError(
                'Cannot tell which version job %r (%s) runs: its flinkops record is not readable (does the program '
                'set its own global job parameters?). Nothing was changed.' % (desired.name, job['id']))
        previous, why_not = previous_version(desired, job, record)
        if previous is None and not desired.allow_no_rollback:
            raise PlanError(
                'Upgrade of job %r would have no way back: %s. The running job was not touched. Set '
                'allow_no_rollback: true to upgrade anyway (a failed upgrade then leaves the job stopped and reports '
                'the savepoint).' % (desired.name, why_not))
        savepoint_dir = None
        if desired.upgrade_mode == 'savepoint':
            savepoint_dir = _savepoint_dir(desired, obs, 'Upgrading job %r with upgrade_mode=savepoint' % desired.name)
        elif desired.upgrade_mode == 'last-state':
            ext = (obs.checkpoint_config or {}).get('externalization') or {}
            if not ext.get('enabled') or ext.get('delete_on_cancellation', True):
                raise PlanError(
                    'Could not upgrade job %r with upgrade_mode=last-state: its checkpoints are not retained on '
                    'cancellation (set execution.checkpointing.externalized-checkpoint-retention: '
                    'RETAIN_ON_CANCELLATION). The running job was not touched.' % desired.name)
        generation = next_generation(obs.own)
        return Plan('upgrade', job_id=desired.job_id(generation), generation=generation, live=job, adopted=adopted,
                    drift=True, previous=previous, savepoint_dir=savepoint_dir)
    ending = [j for j in obs.own + adoptable if is_live(j) and is_ending(j)]
    if ending:
        # Its restore point is known only once it ended: wait, then plan again.
        generation = next_generation(obs.own)
        return Plan('wait', job_id=desired.job_id(generation), generation=generation,
                    wait_for=[j['id'] for j in ending])
    generation = next_generation(obs.own)
    restore = choose_restore(desired, obs.history)
    evidence = [e.job for e in obs.history]
    warnings = []
    if restore is None and evidence and not desired.restore_decided:
        raise PlanError(missing_state_message(desired.name, 'ended instances: %s' % describe(evidence)))
    if restore is not None and restore['kind'] == 'empty':
        warnings.append('Job %r: its last instance %s was started empty on purpose (restore_from: none) and left no '
                        'state; starting empty again.' % (desired.name, restore['job_id']))
        restore = None
    return Plan('submit', job_id=desired.job_id(generation), generation=generation, restore=restore,
                evidence=evidence, warnings=warnings)


def plan_absent(desired, obs):
    live = [j for j in obs.candidates() if is_live(j)]
    to_end = [j for j in live if not is_ending(j)]
    if not live:
        return Plan('none')
    if not to_end:
        # Someone else is already cancelling them: wait, but we changed nothing.
        return Plan('none', job_id=live[0]['id'], wait_for=[j['id'] for j in live])
    savepoint_dir = None
    if desired.savepoint:
        savepoint_dir = _savepoint_dir(desired, obs, 'Stopping job %r with savepoint=true' % desired.name)
    return Plan('stop' if desired.savepoint else 'cancel', job_id=to_end[0]['id'], targets=to_end,
                wait_for=[j['id'] for j in live if is_ending(j)], savepoint_dir=savepoint_dir,
                adopted=not ident.belongs_to(to_end[0]['id'], desired.name))


def plan(desired, obs):
    if desired.state == 'absent':
        return plan_absent(desired, obs)
    return plan_present(desired, obs)
