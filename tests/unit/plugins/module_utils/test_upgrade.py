"""state=upgraded as a transaction (``_upgrade``): time model, rollback, followed stops, clean-up, input rules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import re
import zipfile

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
from ansible_collections.flinkops.flink.plugins.module_utils import _job as jobmod
from ansible_collections.flinkops.flink.plugins.module_utils import _model as model
from ansible_collections.flinkops.flink.plugins.module_utils import _upgrade as upgrade
from ansible_collections.flinkops.flink.plugins.module_utils._health import NotHealthy
from ansible_collections.flinkops.flink.plugins.module_utils._waiter import POLL_INTERVAL

from .fake_flink import FakeFlink, crash_loop, tasks
from .fakes import FakeClock, FakeSession, flink_error, refused
from .test_job import assert_plan_is_the_run, desired, gen_id, reconcile, record_of

NPE = 'java.lang.NullPointerException: cannot read the restored state'


def make_jar(path, content):
    with zipfile.ZipFile(str(path), 'w') as z:
        z.writestr('META-INF/MANIFEST.MF', 'Manifest-Version: 1.0\nMain-Class: org.example.Job\n')
        z.writestr('version.txt', content)
    return str(path)


@pytest.fixture
def jar(tmp_path):
    return make_jar(tmp_path / 'job.jar', 'v1')


@pytest.fixture
def jar2(tmp_path):
    return make_jar(tmp_path / 'job-v2.jar', 'v2')


class Cluster(object):
    """A fake Flink with job v1 running (healthy), fake time shared by every run, and a watcher of live instances."""

    def __init__(self, jar):
        self.flink = FakeFlink()
        self.flink.job_name_of = lambda body: 'orders'
        self.clock = FakeClock()
        self.jar = jar
        self.live_counts = []
        self.warnings = []
        self.v1 = self.run(desired(jar, args=['--v', '1']))
        assert self.v1['verification']['healthy']
        self.flink.watchers.append(lambda method, path: self.live_counts.append(len(self.flink.live('orders'))))

    def run(self, d, timeout=300):
        """One module run on the shared clock; its warnings go to ``self.warnings`` (also when it fails)."""
        del self.warnings[:]
        self.flink.now = self.clock
        client = api.FlinkClient(['http://jm:8081'], api.Deadline(timeout, clock=self.clock),
                                 session=FakeSession(self.flink), sleep=self.clock.sleep)
        return jobmod.JobReconciler(client, d, diff=True, warn=self.warnings.append, sleep=self.clock.sleep).run()

    def upgrade(self, jar=None, args=('--v2',), timeout=300, **kw):
        kw.setdefault('wait_timeout', timeout)
        return self.run(desired(jar or self.jar, state='upgraded', args=list(args), **kw), timeout=timeout)

    def failed_upgrade(self, jar=None, args=('--v2',), timeout=300, **kw):
        started = self.clock.now
        with pytest.raises(upgrade.UpgradeError) as err:
            self.upgrade(jar, args, timeout, **kw)
        return err.value, self.clock.now - started

    def v2_runs(self, phases):
        self.flink.on_run.append((lambda body: '--v2' in body['programArgsList'], phases))

    def runs_of(self, arg):
        return [jid for jid, body in self.flink.bodies.items() if arg in body['programArgsList']]

    def live(self):
        return self.flink.live('orders')


# the time model ---------------------------------------------------------------------

def test_time_model_reserves_rollback_timeout_out_of_wait_timeout():
    clock = FakeClock()
    clock.now = 100.0
    times = upgrade.TimeModel(api.Deadline(300, clock=clock), rollback_timeout=60)
    forward = times.forward()
    assert forward.end == 340.0 and forward.remaining() == 240.0
    assert forward.describe() == 'wait_timeout - rollback_timeout=240 s'
    # Early on, compensation ends with wait_timeout ...
    clock.now = 150.0
    comp = times.compensation()
    assert comp.end == 400.0 and comp.remaining() == 250.0 and comp.describe() == 'rollback_timeout=60 s'
    # ... once the forward budget ran out it still gets all of rollback_timeout ...
    clock.now = 340.0
    assert times.forward().expired() and times.compensation().remaining() == 60.0
    # ... and after a stop that outlived wait_timeout too (followed to its end), rollback_timeout from now.
    clock.now = 500.0
    assert times.compensation().end == 560.0
    # The clean-up after a success: at most COMMIT_BUDGET_S, at least 1 s even past the end.
    clock.now = 200.0
    assert times.commit().remaining() == upgrade.COMMIT_BUDGET_S
    clock.now = 395.0
    assert times.commit().remaining() == 5.0
    clock.now = 500.0
    assert times.commit().remaining() == 1.0


def test_time_model_forward_budget_is_never_negative():
    clock = FakeClock()
    times = upgrade.TimeModel(api.Deadline(50, clock=clock), rollback_timeout=60)
    assert times.forward().expired() and times.forward().timeout == 0.0
    assert times.compensation().remaining() == 60.0


# input rules --------------------------------------------------------------------------

def test_upgraded_needs_wait(jar):
    with pytest.raises(model.InputError, match='state=upgraded needs wait=true'):
        desired(jar, state='upgraded', wait=False)
    assert not desired(jar, state='present', wait=False).wait


@pytest.mark.parametrize('kw, message', [
    ({'rollback_timeout': 10, 'healthy_for': 10}, r'rollback_timeout \(10 s\) must be more than healthy_for \(10 s\)'),
    ({'rollback_timeout': 5}, r'rollback_timeout \(5 s\) must be more than healthy_for \(10 s\)'),
    ({'wait_timeout': 70}, r'wait_timeout \(70 s\) leaves no time for an upgrade: rollback_timeout \(60 s\)'),
    ({'wait_timeout': 120, 'rollback_timeout': 100, 'healthy_for': 20}, r'wait_timeout \(120 s\) leaves no time'),
    ({'healthy_for': -1}, 'healthy_for must be 0 or more seconds'),
    ({'rollback_timeout': -1}, 'rollback_timeout must be 0 or more seconds'),
])
def test_upgrade_time_inputs_are_checked_before_anything_is_sent(jar, kw, message):
    with pytest.raises(model.InputError, match=message):
        desired(jar, state='upgraded', **kw)


def test_time_inputs_at_their_limits_are_accepted(jar):
    d = desired(jar, state='upgraded', wait_timeout=71, rollback_timeout=60, healthy_for=10)
    assert d.rollback_timeout == 60.0 and d.health.healthy_for == 10.0
    # state=present has no rollback: rollback_timeout is not tied to healthy_for there.
    assert desired(jar, state='present', rollback_timeout=1).rollback_timeout == 1.0


# a healthy upgrade ----------------------------------------------------------------------

def test_a_healthy_upgrade_is_verified_and_reports_state_and_ids(jar, jar2):
    c = Cluster(jar)
    result = c.upgrade(jar2)
    assert result['action'] == 'upgraded' and result['changed']
    assert result['job_id'] == result['new_job_id'] == gen_id('orders', 1)
    assert result['previous_job_id'] == c.v1['job_id'] and result['savepoint'].startswith('file:/sp/flinkops-')
    assert result['verification']['healthy'] and result['verification']['job_id'] == result['job_id']
    assert c.flink.restored[result['job_id']] == result['savepoint']
    assert [j['jid'] for j in c.live()] == [result['job_id']] and max(c.live_counts) == 1


def test_preflight_plans_the_very_body_the_submission_runs(jar, jar2):
    c = Cluster(jar)
    c.flink.cluster_config['state.checkpoints.dir'] = 'file:/cp'
    c.flink.plans.clear()
    c.flink.requests.clear()
    result = c.upgrade(jar2, args=['--v2'], config={'x.enabled': True}, parallelism=3)
    assert len(c.flink.plans) == 1
    plan_body, run = c.flink.plans[0], c.flink.bodies[result['job_id']]
    assert_plan_is_the_run(plan_body, run)
    salt = record_of(c.flink, result['job_id']).salt
    for body in (plan_body, run):
        assert body['flinkConfiguration']['execution.checkpointing.dir'] == 'file:/cp/flinkops-%s' % salt
        assert body['programArgsList'] == ['--v2'] and body['parallelism'] == 3
    # Planned while the old version still ran untouched.
    methods = [(m, p.rsplit('/', 1)[-1]) for m, p in c.flink.requests if m == 'POST']
    assert methods.index(('POST', 'plan')) < methods.index(('POST', 'stop'))


# rollback ---------------------------------------------------------------------------------

def test_a_crash_looping_new_version_is_rolled_back_from_the_same_savepoint(jar):
    c = Cluster(jar)
    c.v2_runs(crash_loop(first_failure_at=3, cause=NPE))
    err, took = c.failed_upgrade()
    r = err.result
    new_id, back_id = gen_id('orders', 1), gen_id('orders', 2)
    assert r['action'] == 'rolled_back' and r['changed']
    assert r['previous_job_id'] == c.v1['job_id'] and r['new_job_id'] == new_id
    assert r['failed_job_ids'] == [new_id] and r['job_id'] == back_id
    assert r['savepoint'].startswith('file:/sp/flinkops-')
    assert not r['verification']['healthy'] and NPE in r['verification']['reason']
    assert r['verification']['job_id'] == new_id
    assert r['rollback_verification']['healthy'] and r['rollback_verification']['job_id'] == back_id
    assert 'is not healthy: it is restarting' in err.msg and 'previous version was restored from savepoint %s' \
        % r['savepoint'] in err.msg and 'verified healthy' in err.msg
    # The previous spec runs again, from the savepoint the new version was given; the new one was cancelled.
    assert c.flink.restored[new_id] == c.flink.restored[back_id] == r['savepoint']
    assert record_of(c.flink, back_id).spec.args == ['--v', '1']
    assert c.flink.jobs[new_id]['state'] == 'CANCELED'
    assert [j['jid'] for j in c.live()] == [back_id]
    assert max(c.live_counts) == 1 and c.live_counts[-1] == 1
    assert took <= 300


def test_a_new_version_without_slots_is_rolled_back_within_wait_timeout(jar):
    c = Cluster(jar)
    c.v2_runs([{'at': 0, 'tasks': tasks(scheduled=2)}])
    err, took = c.failed_upgrade(timeout=100)
    r = err.result
    assert r['action'] == 'rolled_back' and r['rollback_verification']['healthy']
    reason = r['verification']['reason']
    assert reason.startswith('its tasks were not all RUNNING within wait_timeout - rollback_timeout=40 s')
    assert "'scheduled': 2" in reason
    # The forward steps used their 40 s, the rollback (10 s healthy window) fit in what was reserved.
    assert 40 <= took <= 100
    assert [j['jid'] for j in c.live()] == [r['job_id']] and max(c.live_counts) == 1
    assert c.flink.restored[r['job_id']] == r['savepoint']


def test_a_new_version_that_never_reaches_running_is_rolled_back_within_wait_timeout(jar):
    c = Cluster(jar)
    c.v2_runs([{'at': 0, 'state': 'INITIALIZING', 'tasks': tasks(created=2)}])
    err, took = c.failed_upgrade(timeout=100)
    r = err.result
    assert r['action'] == 'rolled_back' and r['new_job_id'] == gen_id('orders', 1)
    assert 'the new version could not start' in err.msg and 'wait_timeout - rollback_timeout=40 s' in err.msg
    assert 40 <= took <= 100 and r['rollback_verification']['healthy']
    assert c.flink.jobs[r['new_job_id']]['state'] == 'CANCELED'
    assert [j['jid'] for j in c.live()] == [r['job_id']] and max(c.live_counts) == 1


def test_a_rollback_that_is_not_healthy_either_says_so(jar):
    c = Cluster(jar)
    c.flink.on_run.append((lambda body: True, crash_loop(first_failure_at=2)))   # the savepoint breaks both
    err, took = c.failed_upgrade()
    r = err.result
    assert 'was started again from savepoint' in err.msg and 'not healthy either' in err.msg
    assert not r['rollback_verification']['healthy'] and r['job_id'] == gen_id('orders', 2)
    assert len(c.live()) == 1 and max(c.live_counts) == 1


def test_a_stateless_upgrade_rolls_back_to_an_empty_start(jar):
    c = Cluster(jar)
    c.v2_runs(crash_loop())
    err, _took = c.failed_upgrade(upgrade_mode='stateless')
    assert err.result['action'] == 'rolled_back' and err.result['savepoint'] is None
    assert 'an empty state (upgrade_mode=stateless)' in err.msg
    assert 'savepointPath' not in c.flink.bodies[err.result['job_id']]
    assert len(c.live()) == 1


# a stop slower than the forward budget --------------------------------------------------

def test_a_savepoint_that_outlives_the_forward_budget_is_followed_and_the_previous_version_restarted(jar):
    c = Cluster(jar)
    c.flink.checkpoint_timeout_ms = 120000
    stop_polls = 120                              # 60 s of fake time at POLL_INTERVAL; forward budget is 40 s
    c.flink.slow_stops = [(stop_polls, None)]
    completed = []
    c.flink.watchers.append(lambda m, p: completed.append(c.clock.now)
                            if '/savepoints/' in p and not c.flink.pending_stops and not completed else None)
    started = c.clock.now
    err, took = c.failed_upgrade(timeout=100)
    r = err.result
    old = c.v1['job_id']
    assert c.flink.jobs[old]['state'] == 'FINISHED'
    assert r['action'] == 'rolled_back' and r['savepoint'].startswith('file:/sp/flinkops-')
    assert r['new_job_id'] is None and c.runs_of('--v2') == [], 'the new version was not started after the budget'
    m = re.search(r'stopping job %s with a savepoint took (\d+) s, longer than the forward budget '
                  r'\(wait_timeout - rollback_timeout=40 s\)' % old, err.msg)
    assert m and abs(int(m.group(1)) - (completed[0] - started)) <= 1
    assert 'previous version was restored from savepoint %s' % r['savepoint'] in err.msg
    # Never left down: the previous version runs again from that savepoint, verified.
    assert [j['jid'] for j in c.live()] == [r['job_id']] and c.flink.restored[r['job_id']] == r['savepoint']
    assert r['rollback_verification']['healthy'] and c.live_counts[-1] == 1
    # Within the documented bound: the stop (inside its checkpoint timeout), then rollback_timeout.
    assert took <= 120 + jobmod.FOLLOW_GRACE_S + 60
    assert any('takes longer than wait_timeout - rollback_timeout=40 s' in w and 'checkpoint timeout of 120 s' in w
               for w in c.warnings), c.warnings
    # A re-run converges on the new version, from a savepoint.
    again = c.upgrade(timeout=100)
    assert again['action'] == 'upgraded' and c.flink.restored[again['job_id']] == again['savepoint']
    assert [j['jid'] for j in c.live()] == [again['job_id']] and max(c.live_counts) == 1


def test_a_followed_stop_that_flink_aborts_leaves_the_job_running_and_says_so(jar):
    c = Cluster(jar)
    c.flink.checkpoint_timeout_ms = 60000
    c.flink.slow_stops = [(110, 'Checkpoint expired before completing.')]
    err, took = c.failed_upgrade(timeout=100)
    r = err.result
    old = c.v1['job_id']
    assert 'Checkpoint expired before completing' in err.msg
    assert 'The job keeps running (Flink reports it RUNNING now).' in err.msg
    assert r['action'] == 'failed' and not r['changed'] and r['job_id'] == old and r['savepoint'] is None
    assert [j['jid'] for j in c.live()] == [old] and c.runs_of('--v2') == []
    stops = [p for m, p in c.flink.requests if m == 'POST' and p.endswith('/stop')]
    assert len(stops) == 1, 'no second stop after the budget'


def test_a_followed_stop_that_fails_transiently_is_never_triggered_again(jar):
    # A task failure while a long savepoint is in flight: Flink fails the savepoint ("Checkpoint Coordinator is
    # suspending") and the job restarts. The forward budget is gone: no new stop, the job keeps running.
    c = Cluster(jar)
    c.flink.checkpoint_timeout_ms = 120000
    c.flink.slow_stops = [(100, 'Checkpoint Coordinator is suspending.')]
    err, _took = c.failed_upgrade(timeout=100)
    stops = [p for m, p in c.flink.requests if m == 'POST' and p.endswith('/stop')]
    assert len(stops) == 1 and c.runs_of('--v2') == []
    assert 'The job keeps running (Flink reports it RUNNING now).' in err.msg


def test_the_followed_stop_message_says_how_long_the_stop_itself_took(jar):
    c = Cluster(jar)
    c.flink.checkpoint_timeout_ms = 120000
    c.flink.slow_stops = [(120, None)]          # 60 s

    def slow_main(method, path, body):
        if path.endswith('/plan'):
            c.clock.now += 30                   # the new version's main() takes 30 s inside /plan
    c.flink.hooks.append(slow_main)
    err, _took = c.failed_upgrade(timeout=100)
    m = re.search(r'with a savepoint took (\d+) s', err.msg)
    assert m and abs(int(m.group(1)) - 60) <= 1, err.msg


# a stop that fails ------------------------------------------------------------------------

@pytest.mark.parametrize('after, sentence, running', [
    (None, 'The job keeps running (Flink reports it RUNNING now).', True),
    ('FAILED', 'The job is FAILED.', False),
    ('CANCELLING', 'The job is CANCELLING.', False),
])
def test_a_failed_stop_reports_the_state_flink_reports(jar, after, sentence, running):
    c = Cluster(jar)
    old = c.v1['job_id']
    c.flink.declined_stops = ['Failed to trigger savepoint: the file system refused it']

    def job_changes(method, path, body):
        if after and '/savepoints/' in path:
            if after == 'FAILED':
                c.flink.end(old, 'FAILED')
            else:
                c.flink.jobs[old]['state'] = after
    c.flink.hooks.append(job_changes)
    err, _took = c.failed_upgrade()
    r = err.result
    assert 'stopping %s with a savepoint failed (' % old in err.msg and 'the file system refused it' in err.msg
    assert err.msg.endswith(sentence)
    assert ('keeps running' in err.msg) == running
    assert r['action'] == 'failed' and r['changed'] == (not running)
    assert r['job_id'] == (old if running else None) and r['previous_job_id'] == old
    assert c.runs_of('--v2') == []


@pytest.mark.parametrize('after', ['RESTARTING', 'FAILING'])
def test_a_failed_stop_of_a_job_that_is_not_running_never_says_it_keeps_running(jar, after):
    c = Cluster(jar)
    old = c.v1['job_id']
    c.flink.declined_stops = ['Failed to trigger savepoint: the file system refused it']

    def job_changes(method, path, body):
        if '/savepoints/' in path:
            c.flink.jobs[old]['state'] = after
    c.flink.hooks.append(job_changes)
    err, _took = c.failed_upgrade()
    assert after in err.msg and 'keeps running' not in err.msg


# clean-up after success -----------------------------------------------------------------

def fail_after_the_new_version_runs(c, answer, what):
    """From the first GET /jars after the new version's /run on (the clean-up), ``what`` requests get ``answer``."""
    state = {'run': False, 'cleanup': False}

    def hook(method, path, body):
        if method == 'POST' and path.endswith('/run') and '--v2' in body['programArgsList']:
            state['run'] = True
        elif state['run'] and method == 'GET' and path == '/jars':
            state['cleanup'] = True
        if state['cleanup'] and what(method, path):
            c.faults.append((c.clock.now, method, path))
            return answer()
        return None
    c.faults = []
    c.flink.hooks.append(hook)

    def rearm(method, path):
        if hook not in c.flink.hooks:
            c.flink.hooks.insert(0, hook)
    c.flink.watchers.append(rearm)


@pytest.mark.parametrize('fault', ['delete-500', 'config-500', 'unreachable'])
def test_a_cleanup_fault_is_a_warning_and_the_result_is_kept(jar, jar2, fault):
    c = Cluster(jar)
    old_jars = set(c.flink.jars)
    if fault == 'delete-500':
        fail_after_the_new_version_runs(c, lambda: flink_error(500, 'java.io.IOException: disk full'),
                                        lambda m, p: m == 'DELETE')
    elif fault == 'config-500':
        fail_after_the_new_version_runs(c, lambda: flink_error(500, 'java.lang.IllegalStateException: boom'),
                                        lambda m, p: m == 'GET' and p.endswith('/config') and p.startswith('/jobs/'))
    else:
        fail_after_the_new_version_runs(c, refused, lambda m, p: True)
    clock_before = []
    c.flink.hooks.insert(0, lambda m, p, b: clock_before.append(c.clock.now) if p == '/jars' and m == 'GET' else None)
    result = c.upgrade(jar2)
    warnings = c.warnings
    assert c.faults, 'the fault was injected'
    assert result['action'] == 'upgraded' and result['changed']
    assert result['job_id'] == result['new_job_id'] == gen_id('orders', 1)
    assert result['previous_job_id'] == c.v1['job_id'] and result['savepoint'].startswith('file:/sp/flinkops-')
    assert result['verification']['healthy']
    assert any("removing the previous version's jar failed" in w for w in warnings), warnings
    assert old_jars <= set(c.flink.jars), 'the jar stays when its clean-up failed'
    # The clean-up never takes longer than its own budget.
    assert c.clock.now - clock_before[-1] <= upgrade.COMMIT_BUDGET_S + 0.5
    assert [j['jid'] for j in c.live()] == [result['job_id']]


# first submission -------------------------------------------------------------------------

def test_a_first_submission_that_crash_loops_fails_with_the_evidence(jar):
    flink = FakeFlink()
    flink.job_name_of = lambda body: 'orders'
    flink.on_run.append((lambda body: True, crash_loop(first_failure_at=4, cause=NPE)))
    clock = FakeClock()
    with pytest.raises(NotHealthy) as err:
        reconcile(flink, desired(jar), clock=clock)
    r = err.value.result
    jid = gen_id('orders', 0)
    assert r['job_id'] == jid and r['action'] == 'submitted' and r['changed']
    assert not r['verification']['healthy'] and NPE in r['verification']['reason']
    assert "Job 'orders' was submitted as %s, but it is not healthy: it is restarting" % jid in err.value.msg
    assert 4 <= clock.now <= 4 + POLL_INTERVAL
    # Left as Flink runs it: there is nothing to go back to.
    assert [j['jid'] for j in flink.live()] == [jid]


def test_a_first_submission_with_wait_false_is_not_verified(jar):
    flink = FakeFlink()
    flink.on_run.append((lambda body: True, crash_loop(first_failure_at=1)))
    clock = FakeClock()
    result = reconcile(flink, desired(jar, wait=False), clock=clock)
    assert result['action'] == 'submitted' and 'verification' not in result
    assert clock.now == 0 and not [p for m, p in flink.requests if p.endswith('/exceptions')]
