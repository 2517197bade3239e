# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""flink_job_set: a whole set of jobs in one run, each by flink_job's own reconciler.

1. ``GET /config`` and ``GET /jobs/overview``, once for the whole set.
2. Pruning (``prune``): the records of the live jobs that belong to no declared
   name are read; those that carry this set's ``scope`` join the set as
   ``state=absent`` for exactly those instances.
3. Every job is observed and planned (``JobReconciler.prepare``) from that one job
   list, up to ``max_parallel`` at a time. Nothing is changed yet: a job that
   cannot be planned safely fails the whole run before any job is touched.
4. Every job that must act does, up to ``max_parallel`` at a time, each with its
   own client and its own ``wait_timeout``; a failure is that job's alone. A
   no-op job sends no request in this step: the run reads the job list once and
   each live job's record once.
5. Jars that upgrades replaced are removed at the end, unless a live job still
   runs them (removing them earlier could take the way back from another job).

Check mode is steps 1 to 3 and each plan's predicted result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time
import traceback

from ansible_collections.flinkops.flink.plugins.module_utils._api import Deadline, FlinkError
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils._job import JarIds, JobReconciler
from ansible_collections.flinkops.flink.plugins.module_utils._model import Desired, InputError, is_ending, is_live
from ansible_collections.flinkops.flink.plugins.module_utils._service import FlinkJobs


class FleetFailed(FlinkError):
    """One or more jobs of the set failed; ``result`` holds every job's result."""

    def __init__(self, msg, result):
        super(FleetFailed, self).__init__(msg)
        self.result = result


class Member(object):
    """One job of the set: what is declared for it, its budget, and whether pruning added it."""

    def __init__(self, desired, wait_timeout, pruned=False, only=None):
        self.desired = desired
        self.wait_timeout = wait_timeout
        self.pruned = pruned
        self.only = only            # the instances pruning may touch (job ids), or None
        self.reconciler = None
        self.prepared = None        # (observation, plan)
        self.error = None           # (msg, extra result) of a failure
        self.result = None

    @property
    def name(self):
        return self.desired.name


def run_bounded(items, func, max_parallel):
    """``func(slot, item)`` for every item, on at most ``max_parallel`` threads at a time (``slot``: the thread).

    ``func`` must not raise; the results come back in the order of ``items``.
    """
    results = [None] * len(items)
    workers = max(1, min(int(max_parallel), len(items)))
    if workers == 1:
        return [func(0, item) for item in items]
    lock = threading.Lock()
    position = [0]

    def work(slot):
        while True:
            with lock:
                index = position[0]
                if index >= len(items):
                    return
                position[0] += 1
            results[index] = func(slot, items[index])
    threads = [threading.Thread(target=work, args=(slot,), name='flinkops-%d' % slot) for slot in range(workers)]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join()
    return results


def check_names(desireds):
    seen = set()
    for d in desireds:
        if d.name in seen:
            raise InputError('job %r is declared more than once in jobs: each job of a set has one declaration'
                             % d.name)
        seen.add(d.name)


class FleetReconciler(object):
    """Brings a set of jobs to their declared states in one module run. ``run()`` returns the module result.

    ``connect(timeout)`` returns a new FlinkClient with a budget of ``timeout``
    seconds; every job gets its own, so jobs never share a budget. (The module's
    clients share one ``_http.Session``, whose kept-alive connections are taken by
    one request at a time.)
    """

    def __init__(self, connect, members, scope=None, prune=False, prune_savepoint=True, prune_savepoint_dir=None,
                 prune_timeout=120, max_parallel=5, check_mode=False, diff=False, warn=None, sleep=time.sleep,
                 clock=time.monotonic):
        if prune and not scope:
            raise InputError('prune: true needs scope: pruning stops only the jobs that carry the record of this '
                             'set\'s scope')
        if prune and not members:
            raise InputError('prune: true with an empty jobs list would stop every job of scope %r. Nothing was '
                             'changed. To remove a whole set, list its jobs with state: absent (or run once more with '
                             'at least one job declared).' % scope)
        if int(max_parallel) < 1:
            raise InputError('max_parallel must be 1 or more, got %s' % max_parallel)
        check_names([m.desired for m in members])
        self.connect = connect
        self.members = list(members)
        self.scope = scope
        self.prune = bool(prune)
        self.prune_savepoint = bool(prune_savepoint)
        self.prune_savepoint_dir = prune_savepoint_dir
        self.prune_timeout = prune_timeout
        self.max_parallel = int(max_parallel)
        self.check_mode = check_mode
        self.diff = diff
        self._warn = warn or (lambda msg: None)
        self._sleep = sleep
        self._clock = clock
        self.jars = JarIds()
        self.capabilities = None

    # -- steps -------------------------------------------------------------------------------
    def run(self):
        client = self.connect(max([m.wait_timeout for m in self.members] + [self.prune_timeout]))
        api = FlinkJobs(client, sleep=self._sleep)
        self.capabilities = api.capabilities()   # first: an unsupported Flink is refused before anything else
        jobs = api.overview()
        known = {}
        members = list(self.members)
        if self.prune:
            members.extend(self._prune_members(jobs, known))
        run_bounded(members, lambda _slot, m: self._prepare(m, jobs, known), self.max_parallel)
        unplanned = [m for m in members if m.error is not None]
        if unplanned:
            raise FleetFailed(self._unplanned_message(unplanned, members), self._result(members, planned_only=True))
        # A job with nothing to do sends no request: its result is made here, without a thread of its own.
        acting = []
        for member in members:
            if self._nothing_to_send(member):
                self._act(member)
            else:
                acting.append(member)
        run_bounded(acting, lambda _slot, m: self._act(m), self.max_parallel)
        if not self.check_mode:
            self._clean_jars(members)
        result = self._result(members)
        failed = [m for m in members if m.error is not None]
        if failed:
            raise FleetFailed(self._failed_message(failed, members), result)
        return result

    def _client(self, timeout):
        client = self.connect(timeout)
        client.capabilities = self.capabilities
        return client

    def _prune_members(self, jobs, known):
        """The set's jobs that are no longer declared: live instances whose record carries this scope."""
        declared = set(m.name for m in self.members)
        hashes = set(ident.name_hash(n) for n in declared)
        others = [j for j in jobs if is_live(j) and not is_ending(j) and j['id'][:ident.NAME_HASH_LEN] not in hashes]
        clients = {}

        def read(slot, job):
            try:
                if slot not in clients:
                    clients[slot] = self._client(self.prune_timeout)
                return job['id'], FlinkJobs(clients[slot]).record(job['id']), None
            except FlinkError as exc:
                return job['id'], None, exc
        outcome = run_bounded(others, read, self.max_parallel)
        for jid, record, exc in outcome:
            if exc is not None:
                raise FlinkError('Could not read the record of job %s to decide whether it belongs to scope %r: %s. '
                                 'Nothing was changed.' % (jid, self.scope, exc.msg))
            known[jid] = record
        by_name = {}
        for job in others:
            record = known[job['id']]
            if record is not None and record.scope == self.scope and record.name and record.name not in declared:
                by_name.setdefault(record.name, set()).add(job['id'])
        members = []
        for name in sorted(by_name):
            desired = Desired(name=name, state='absent', savepoint=self.prune_savepoint,
                              savepoint_dir=self.prune_savepoint_dir, wait=True)
            members.append(Member(desired, self.prune_timeout, pruned=True, only=by_name[name]))
        return members

    def _prepare(self, member, jobs, known):
        try:
            rec = JobReconciler(self._client(member.wait_timeout), member.desired, check_mode=self.check_mode,
                                diff=self.diff, warn=self._warn, sleep=self._sleep, jars=self.jars,
                                clean_jars=False, only=member.only)
            member.reconciler = rec
            member.prepared = rec.prepare(jobs, known)
        except FlinkError as exc:
            msg = exc.msg
            if member.pruned:
                msg = '%s (pruning it: prune_savepoint_dir sets the directory, prune_savepoint: false cancels)' % msg
            member.error = (msg, dict(getattr(exc, 'result', None) or {}))
        except Exception as exc:  # pylint: disable=broad-except
            member.error = self._unexpected(exc)

    @staticmethod
    def _nothing_to_send(member):
        """True for a planned no-op that waits for nothing (its result comes from the observation alone)."""
        the_plan = member.prepared[1]
        return the_plan.action == 'none' and not the_plan.wait_for

    def _act(self, member):
        rec = member.reconciler
        rec.client.deadline = Deadline(member.wait_timeout, clock=self._clock)
        try:
            member.result = rec.run(member.prepared)
        except FlinkError as exc:
            extra = dict(getattr(exc, 'result', None) or {})
            if exc.status is not None:
                extra['status'] = exc.status
            member.error = (exc.msg, extra)
        except Exception as exc:  # pylint: disable=broad-except
            member.error = self._unexpected(exc)

    @staticmethod
    def _unexpected(exc):
        return ('Unexpected error in flinkops.flink (please report it): %s: %s' % (type(exc).__name__, exc),
                {'exception': traceback.format_exc()})

    def _clean_jars(self, members):
        """Remove the jars upgrades replaced, once every job of the set is done (never raises)."""
        done = set()
        for member in members:
            rec = member.reconciler
            for previous, new in (rec.replaced if rec is not None else []):
                if previous.jar_sha256 in done:
                    continue
                done.add(previous.jar_sha256)
                rec.clean_jars = True
                rec.client.deadline = Deadline(member.wait_timeout, clock=self._clock)
                rec._clean_jars(previous, new)   # pylint: disable=protected-access

    # -- result --------------------------------------------------------------------------------
    def _job_result(self, member, planned_only=False):
        out = {'name': member.name, 'pruned': member.pruned}
        if member.error is not None:
            msg, extra = member.error
            out.update(extra)
            out.update({'failed': True, 'msg': msg})
            out.setdefault('changed', False)
        elif planned_only:
            the_plan = member.prepared[1]
            out.update({'changed': False, 'action': 'none', 'planned_action': the_plan.action})
        else:
            out.update(member.result)
        return out

    def _result(self, members, planned_only=False):
        jobs = [self._job_result(m, planned_only) for m in members]
        diffs = []
        for job in jobs:
            diff = job.pop('diff', None)
            if diff is not None and job.get('changed'):
                diffs.append(dict(diff, before_header='job %s' % job['name'], after_header='job %s' % job['name']))
        result = {
            'changed': any(j.get('changed') for j in jobs),
            'jobs': jobs,
            'pruned': [j['name'] for j in jobs if j['pruned'] and j.get('changed')],
            'scope': self.scope,
        }
        if self.diff:
            result['diff'] = diffs
        return result

    @staticmethod
    def _unplanned_message(unplanned, members):
        return ('%d of %d jobs of the set could not be planned, so no job was touched: %s'
                % (len(unplanned), len(members), ' '.join('[%s] %s' % (m.name, m.error[0]) for m in unplanned)))

    @staticmethod
    def _failed_message(failed, members):
        done = len(members) - len(failed)
        return ('%d of %d jobs of the set failed (%s); the other %d reached their declared state. %s'
                % (len(failed), len(members), ', '.join(m.name for m in failed), done,
                   ' '.join('[%s] %s' % (m.name, m.error[0]) for m in failed)))
