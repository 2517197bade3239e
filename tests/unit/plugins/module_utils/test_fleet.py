# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""flink_job_set's reconciler (``_fleet``) against the in-memory Flink: the pure logic of sets and pruning.

Every case here also runs against real Flink in tests/integration/test_job_set.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import zipfile

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
from ansible_collections.flinkops.flink.plugins.module_utils import _fleet as fleet
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils import _model as model

from .fake_flink import FakeFlink, crash_loop
from .fakes import FakeClock, FakeSession
from .test_job import gen_id, record_of


class JobSet(object):
    """Runs of flink_job_set's reconciler against one FakeFlink, on one fake clock."""

    def __init__(self):
        self.flink = FakeFlink()
        self.clock = FakeClock()
        self.flink.now = self.clock
        self.warnings = []

    def connect(self, timeout):
        return api.FlinkClient(['http://jm:8081'], api.Deadline(timeout, clock=self.clock),
                               session=FakeSession(self.flink), sleep=self.clock.sleep)

    def reconciler(self, jobs, scope=None, timeout=300, **kw):
        members = [fleet.Member(model.Desired(scope=scope, wait_timeout=timeout, **job), timeout) for job in jobs]
        kw.setdefault('max_parallel', 5)
        return fleet.FleetReconciler(self.connect, members, scope=scope, diff=True, warn=self.warnings.append,
                                     sleep=self.clock.sleep, clock=self.clock, prune_timeout=timeout, **kw)

    def run(self, jobs, **kw):
        before = len(self.flink.requests)
        result = self.reconciler(jobs, **kw).run()
        result['_requests'] = self.flink.requests[before:]
        return result

    def failed(self, jobs, **kw):
        before = len(self.flink.requests)
        with pytest.raises(fleet.FleetFailed) as err:
            self.reconciler(jobs, **kw).run()
        return err.value, self.flink.requests[before:]

    def live_ids(self, name):
        prefix = ident.name_hash(name)
        return sorted(j['jid'] for j in self.flink.live() if j['jid'].startswith(prefix))


def jobs_of(jar, names, **kw):
    return [dict(name=n, state=kw.get('state', 'present'), jar=jar, args=['--job', n] + list(kw.get('args', [])))
            for n in names]


def by_name(result):
    return dict((j['name'], j) for j in result['jobs'])


def mutating(requests):
    return [r for r in requests if r[0] != 'GET']


def test_record_carries_the_scope_and_old_records_have_none():
    spec = ident.Spec('a' * 64, args=['x'])
    scoped = ident.decode_record(ident.new_record('orders', spec, scope='team').encode())
    assert scoped.scope == 'team' and scoped.name == 'orders'
    plain = ident.decode_record(ident.new_record('orders', spec).encode())
    assert plain.scope is None
    assert ident.same_scope(None, plain) and ident.same_scope('team', scoped) and not ident.same_scope('team', plain)


def test_a_noop_set_reads_the_job_list_once_and_each_live_record_once(jar):
    s = JobSet()
    first = s.run(jobs_of(jar, ['a', 'b', 'c']), scope='team')
    assert first['changed'] and [j['action'] for j in first['jobs']] == ['submitted'] * 3
    assert sum(1 for r in first['_requests'] if r == ('POST', '/jars/upload')) == 1   # one jar for the set
    again = s.run(jobs_of(jar, ['a', 'b', 'c']), scope='team')
    assert not again['changed'] and [j['action'] for j in again['jobs']] == ['none'] * 3
    live = [gen_id(n, 0) for n in 'abc']
    assert sorted(again['_requests']) == sorted([('GET', '/config'), ('GET', '/jobs/overview')]
                                                + [('GET', '/jobs/%s/config' % jid) for jid in live])
    assert again['diff'] == [] and again['pruned'] == []


def test_only_the_jobs_that_act_take_a_worker_and_a_noop_job_waits_for_none(jar, monkeypatch):
    s = JobSet()
    s.run(jobs_of(jar, ['a', 'b']), scope='team')
    handed = []
    real = fleet.run_bounded

    def recording(items, func, max_parallel):
        handed.append([m.name for m in items if isinstance(m, fleet.Member)])
        return real(items, func, max_parallel)
    monkeypatch.setattr(fleet, 'run_bounded', recording)
    again = s.run(jobs_of(jar, ['a', 'b', 'c']), scope='team')
    assert [j['action'] for j in again['jobs']] == ['none', 'none', 'submitted']
    # planning: every job; acting: only c (a and b are answered from the observation)
    assert handed == [['a', 'b', 'c'], ['c']]


def test_every_job_of_the_set_records_the_scope(jar):
    s = JobSet()
    s.run(jobs_of(jar, ['a']), scope='team')
    assert record_of(s.flink, gen_id('a', 0)).scope == 'team'


def test_prune_stops_exactly_the_undeclared_jobs_of_the_scope_and_check_mode_predicts_it(jar):
    s = JobSet()
    s.run(jobs_of(jar, ['a', 'b', 'c', 'd']), scope='team')
    s.run(jobs_of(jar, ['x']), scope='other')
    s.run(jobs_of(jar, ['y']))                      # no scope, as flink_job without scope starts a job
    s.flink.add_job('f' * 32, 'by-hand')          # started by hand: no record
    check = s.run(jobs_of(jar, ['a', 'b']), scope='team', prune=True, check_mode=True)
    assert mutating(check['_requests']) == []
    assert check['changed'] and check['pruned'] == ['c', 'd']
    predicted = by_name(check)
    assert predicted['c']['action'] == predicted['d']['action'] == 'stopped'
    assert predicted['c']['pruned'] and not predicted['a']['pruned'] and predicted['a']['action'] == 'none'
    assert [d['before_header'] for d in check['diff']] == ['job c', 'job d']

    real = s.run(jobs_of(jar, ['a', 'b']), scope='team', prune=True)
    assert real['pruned'] == ['c', 'd']
    done = by_name(real)
    for name in 'cd':
        assert done[name]['action'] == 'stopped' and done[name]['savepoint'].startswith('file:/sp/flinkops-')
        assert s.flink.jobs[gen_id(name, 0)]['state'] == 'FINISHED'
    assert sorted(j['jid'] for j in s.flink.live()) == sorted(
        [gen_id('a', 0), gen_id('b', 0), gen_id('x', 0), gen_id('y', 0), 'f' * 32])
    again = s.run(jobs_of(jar, ['a', 'b']), scope='team', prune=True)
    assert not again['changed'] and again['pruned'] == []


def test_prune_with_cancel(jar):
    s = JobSet()
    s.run(jobs_of(jar, ['a', 'b']), scope='team')
    r = s.run(jobs_of(jar, ['a']), scope='team', prune=True, prune_savepoint=False)
    assert by_name(r)['b']['action'] == 'cancelled' and s.flink.jobs[gen_id('b', 0)]['state'] == 'CANCELED'


def test_a_pruned_job_comes_back_from_its_savepoint_when_declared_again(jar):
    s = JobSet()
    s.run(jobs_of(jar, ['a', 'b']), scope='team')
    pruned = by_name(s.run(jobs_of(jar, ['a']), scope='team', prune=True))['b']
    back = by_name(s.run(jobs_of(jar, ['a', 'b']), scope='team', prune=True))['b']
    assert back['action'] == 'submitted' and back['restored_from']['path'] == pruned['savepoint']
    assert s.flink.restored[back['job_id']] == pruned['savepoint']


def test_prune_needs_a_scope_and_names_are_unique(jar):
    s = JobSet()
    with pytest.raises(model.InputError, match='prune: true needs scope'):
        s.reconciler(jobs_of(jar, ['a']), prune=True)
    with pytest.raises(model.InputError, match="'a' is declared more than once"):
        s.reconciler(jobs_of(jar, ['a', 'b', 'a']))
    with pytest.raises(model.InputError, match="an empty jobs list would stop every job of scope 'team'"):
        s.reconciler([], scope='team', prune=True)
    with pytest.raises(model.InputError, match='max_parallel must be 1 or more'):
        s.reconciler(jobs_of(jar, ['a']), max_parallel=0)
    assert s.flink.requests == []


def test_pruning_without_a_savepoint_directory_stops_the_set_before_any_job_is_touched(jar):
    s = JobSet()
    s.run(jobs_of(jar, ['a', 'b']), scope='team')
    s.flink.cluster_config = {}
    err, requests = s.failed(jobs_of(jar, ['a', 'c']), scope='team', prune=True)
    assert mutating(requests) == [] and s.live_ids('c') == [] and s.live_ids('b') == [gen_id('b', 0)]
    assert '[b]' in err.msg and 'prune_savepoint_dir sets the directory' in err.msg


def test_a_job_that_cannot_be_planned_stops_the_set_before_any_job_is_touched(jar):
    s = JobSet()
    s.run(jobs_of(jar, ['a']))
    s.flink.cluster_config = {}     # no default savepoint directory: an upgrade of a cannot be planned
    jobs = jobs_of(jar, ['a'], state='upgraded', args=['--v2']) + jobs_of(jar, ['b'])
    err, requests = s.failed(jobs)
    assert mutating(requests) == []
    assert '1 of 2 jobs of the set could not be planned, so no job was touched' in err.msg
    assert '[a]' in err.msg and 'needs a savepoint directory' in err.msg
    planned = by_name(err.result)
    assert planned['b']['planned_action'] == 'submit' and not planned['b']['changed']
    assert planned['a']['failed'] and s.live_ids('b') == []


def test_concurrent_upgrades_restore_their_own_savepoints_and_a_crash_loop_rolls_back_alone(jar):
    s = JobSet()
    names = ['j%d' % i for i in range(10)]
    s.run(jobs_of(jar, names, args=['--v1']), max_parallel=10)
    s.flink.on_run.append((lambda body: body['programArgsList'][:2] == ['--job', 'j3'] and
                           '--v2' in body['programArgsList'], crash_loop(first_failure_at=2)))
    err, _requests = s.failed(jobs_of(jar, names, state='upgraded', args=['--v2']), max_parallel=5)
    assert err.msg.startswith('1 of 10 jobs of the set failed (j3); the other 9 reached their declared state.')
    results = by_name(err.result)
    assert results['j3']['failed'] and results['j3']['action'] == 'rolled_back'
    for name in names:
        r = results[name]
        if name == 'j3':
            # Back on the previous version, from the savepoint the new one was given.
            assert s.flink.restored[r['job_id']] == r['savepoint'] == s.flink.restored[r['new_job_id']]
            assert record_of(s.flink, r['job_id']).spec.args == ['--job', 'j3', '--v1']
        else:
            assert r['action'] == 'upgraded' and not r.get('failed')
            assert s.flink.restored[r['job_id']] == r['savepoint']
            assert gen_id(name, 0)[-8:] in r['savepoint']    # its own job's savepoint, no other's
            assert record_of(s.flink, r['job_id']).spec.args == ['--job', name, '--v2']
        assert len(s.live_ids(name)) == 1
    assert len(set(results[n]['savepoint'] for n in names)) == 10


def test_scope_change_warns_under_present_and_restarts_under_upgraded(jar):
    s = JobSet()
    s.run(jobs_of(jar, ['a']))
    kept = s.run(jobs_of(jar, ['a']), scope='team')
    assert not kept['changed'] and any("not in scope 'team'" in w for w in s.warnings)
    moved = s.run(jobs_of(jar, ['a'], state='upgraded'), scope='team')
    r = by_name(moved)['a']
    assert r['action'] == 'upgraded' and record_of(s.flink, r['job_id']).scope == 'team'
    assert s.flink.restored[r['job_id']] == r['savepoint']
    again = s.run(jobs_of(jar, ['a'], state='upgraded'), scope='team')
    assert not again['changed']


def test_run_bounded_keeps_order_and_bound():
    import threading
    import time
    running = [0]
    peak = [0]
    lock = threading.Lock()

    def work(_slot, item):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return item * 2
    assert fleet.run_bounded(list(range(20)), work, 4) == [i * 2 for i in range(20)]
    assert 1 < peak[0] <= 4
    assert fleet.run_bounded([], work, 4) == []


def test_jobs_that_share_a_jar_read_it_once_and_a_changed_jar_again(jar, monkeypatch):
    read = []
    real = ident.sha256_file

    def counting(path, *args):
        read.append(path)
        return real(path, *args)

    monkeypatch.setattr(ident, 'sha256_file', counting)
    specs = [model.Desired(name='job-%d' % i, state='present', jar=jar, args=['--n', str(i)]).spec for i in range(20)]
    assert len(read) == 1 and len(set(s.jar_sha256 for s in specs)) == 1
    with zipfile.ZipFile(jar, 'a') as z:
        z.writestr('more.txt', 'a new version of the jar')
    changed = model.Desired(name='job-0', state='present', jar=jar).spec
    assert len(read) == 2 and changed.jar_sha256 == real(jar) != specs[0].jar_sha256


def test_sql_jobs_of_a_set_share_the_generated_runner_and_run_their_own_statements(jar):
    from ansible_collections.flinkops.flink.plugins.module_utils import _sql_runner
    s = JobSet()
    sql = ["CREATE TABLE t_%s (x INT) WITH ('connector' = 'blackhole')" % n for n in 'ab']
    jobs = [dict(name='sql-%s' % n, state='present', sql=ddl + '; INSERT INTO t_%s SELECT 1' % n)
            for n, ddl in zip('ab', sql)] + jobs_of(jar, ['c'])
    first = s.run(jobs, scope='team')
    assert [j['action'] for j in first['jobs']] == ['submitted'] * 3
    uploads = [r for r in first['_requests'] if r == ('POST', '/jars/upload')]
    assert len(uploads) == 2      # the runner once for both SQL jobs, the jar job's own jar
    assert sorted(name.split('-', 2)[2] for name in s.flink.jars.values()) == [_sql_runner.JAR_NAME, 'job.jar']
    for n in 'ab':
        body = s.flink.bodies[gen_id('sql-%s' % n, 0)]
        assert body['entryClass'] == _sql_runner.RUNNER_CLASS and body['programArgsList'][0] == 'run'
        assert body['flinkConfiguration']['pipeline.name'] == 'sql-%s' % n
        assert record_of(s.flink, gen_id('sql-%s' % n, 0)).spec.sql[-1] == 'INSERT INTO t_%s SELECT 1' % n
    again = s.run(jobs, scope='team')
    assert not again['changed'] and mutating(again['_requests']) == []
