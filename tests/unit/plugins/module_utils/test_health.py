"""The health gate (``_health.HealthGate``) against the fake Flink, on fake time."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
from ansible_collections.flinkops.flink.plugins.module_utils import _health as health
from ansible_collections.flinkops.flink.plugins.module_utils import _model as model
from ansible_collections.flinkops.flink.plugins.module_utils import _service as service
from ansible_collections.flinkops.flink.plugins.module_utils._waiter import POLL_INTERVAL

from .fake_flink import FakeFlink, crash_loop, tasks
from .fakes import FakeClock, FakeSession

JID = 'ab' * 16
NPE = 'java.lang.NullPointerException: cannot read the restored state'


class Gate(object):
    """A HealthGate over the fake, with the clock, the deadline and a log of (time, request)."""

    def __init__(self, flink, healthy_for=10, wait_for_checkpoint=False, timeout=60):
        self.clock = FakeClock()
        flink.now = self.clock
        self.flink = flink
        self.log = []
        flink.watchers.append(lambda method, path: self.log.append((self.clock.now, method, path)))
        client = api.FlinkClient(['http://jm:8081'], api.Deadline(timeout, clock=self.clock),
                                 session=FakeSession(flink), sleep=self.clock.sleep)
        self.deadline = client.deadline
        self.gate = health.HealthGate(service.FlinkJobs(client, sleep=self.clock.sleep),
                                      model.HealthPolicy(healthy_for, wait_for_checkpoint), sleep=self.clock.sleep)

    def verify(self, jid=JID):
        return self.gate.verify(jid, self.deadline)

    def times(self, suffix):
        return [t for t, method, path in self.log if method == 'GET' and path.endswith(suffix)]


def job(flink, state='RUNNING', task_counts=None, *phases):
    flink.add_job(JID, 'orders', state=state)
    flink.jobs[JID]['tasks'] = task_counts or tasks(running=2)
    flink.script(JID, *phases)


def test_a_healthy_job_passes_after_healthy_for_and_not_before():
    flink = FakeFlink()
    g = Gate(flink)
    job(flink)
    verdict = g.verify()
    assert verdict.ok and verdict.reason is None
    assert 10 <= g.clock.now <= 10 + POLL_INTERVAL
    ev = verdict.evidence
    assert ev['healthy'] and ev['healthy_s'] >= 10 and ev['failures'] == 0 and ev['state'] == 'RUNNING'
    assert ev['tasks']['running'] == ev['tasks']['total'] == 2
    assert 'reason' not in ev and ev['checkpoint_id'] is None
    # The exception history was read when the window opened, every EXCEPTIONS_EVERY_S, and at its end.
    reads = g.times('/exceptions')
    assert reads[0] == 0 and reads[-1] >= 10
    assert all(b - a <= health.EXCEPTIONS_EVERY_S + POLL_INTERVAL for a, b in zip(reads, reads[1:]))
    # Status comes from the uncached overview, never from checkpoints (not asked for).
    assert g.times('/jobs/overview') and not g.times('/checkpoints')


def test_the_window_starts_only_once_every_task_runs():
    flink = FakeFlink()
    g = Gate(flink)
    job(flink, 'RUNNING', tasks(deploying=1, running=1),
        {'at': 2, 'tasks': tasks(initializing=1, running=1)},
        {'at': 4, 'tasks': tasks(running=2)})
    verdict = g.verify()
    assert verdict.ok
    assert 14 <= g.clock.now <= 14 + POLL_INTERVAL
    assert g.times('/exceptions')[0] >= 4


def test_a_restarting_job_fails_at_once_with_flinks_cause():
    flink = FakeFlink()
    g = Gate(flink)
    job(flink, 'RESTARTING', tasks(canceling=2))
    flink.failures[JID] = [{'exceptionName': 'java.lang.NullPointerException', 'stacktrace': NPE}]
    verdict = g.verify()
    assert not verdict.ok and g.clock.now == 0 and g.clock.sleeps == []
    assert verdict.reason == 'it is restarting (Flink state RESTARTING): %s' % NPE
    assert verdict.evidence['failures'] == 1 and verdict.evidence['reason'] == verdict.reason
    assert verdict.evidence['state'] == 'RESTARTING' and not verdict.evidence['healthy']


def test_a_crash_loop_fails_the_gate_when_it_first_restarts():
    flink = FakeFlink()
    g = Gate(flink)
    job(flink, 'RUNNING', tasks(running=2), *crash_loop(first_failure_at=3))
    verdict = g.verify()
    assert not verdict.ok and 'restarting' in verdict.reason and NPE in verdict.reason
    assert 3 <= g.clock.now <= 3 + POLL_INTERVAL


def test_a_failure_seen_only_in_the_exception_history_fails_the_gate():
    # The job failed and recovered between two status polls: only the exception history tells.
    flink = FakeFlink()
    g = Gate(flink)
    job(flink, 'RUNNING', tasks(running=2), {'at': 4, 'failure': 'java.lang.IllegalStateException: bad record'})
    verdict = g.verify()
    assert not verdict.ok
    assert verdict.reason == 'it failed 1 time(s) since it started; latest: java.lang.IllegalStateException: bad record'
    assert verdict.evidence['failures'] == 1 and verdict.evidence['state'] == 'RUNNING'
    assert 4 <= g.clock.now <= 4 + health.EXCEPTIONS_EVERY_S
    assert g.clock.now < 10


def test_tasks_that_leave_running_fail_the_gate():
    flink = FakeFlink()
    g = Gate(flink)
    job(flink, 'RUNNING', tasks(running=2), {'at': 3, 'tasks': tasks(running=1, deploying=1)})
    verdict = g.verify()
    assert not verdict.ok and verdict.reason.startswith('its tasks left RUNNING after 3.0 s')
    assert "'deploying': 1" in verdict.reason
    assert verdict.evidence['tasks']['deploying'] == 1
    assert 3 <= g.clock.now <= 3 + POLL_INTERVAL


def test_a_failed_task_counts_as_a_restart():
    flink = FakeFlink()
    g = Gate(flink)
    job(flink, 'RUNNING', tasks(running=2), {'at': 2, 'tasks': tasks(running=1, failed=1)})
    verdict = g.verify()
    assert not verdict.ok and verdict.reason.startswith('it is restarting (Flink state RUNNING)')


def test_tasks_waiting_for_slots_fail_at_the_deadline_as_not_all_running():
    flink = FakeFlink()
    g = Gate(flink, timeout=30)
    job(flink, 'RUNNING', tasks(scheduled=2))
    verdict = g.verify()
    assert not verdict.ok
    assert verdict.reason.startswith('its tasks were not all RUNNING within wait_timeout=30 s (state RUNNING, tasks: ')
    assert "'scheduled': 2" in verdict.reason
    assert 30 <= g.clock.now <= 30 + POLL_INTERVAL
    assert verdict.evidence['healthy_s'] == 0.0 and not verdict.evidence['healthy']
    assert g.times('/exceptions') == [], 'a job that never ran all its tasks has no window to check'


def test_a_window_cut_short_by_the_deadline_says_how_long_it_was_healthy():
    flink = FakeFlink()
    g = Gate(flink, timeout=30)
    job(flink, 'RUNNING', tasks(scheduled=2), {'at': 25, 'tasks': tasks(running=2)})
    verdict = g.verify()
    assert not verdict.ok
    assert verdict.reason == ('it was healthy for 5.0 s only, not the 10 s of healthy_for, within wait_timeout=30 s')
    assert verdict.evidence['healthy_s'] == 5.0


@pytest.mark.parametrize('state', ['FAILED', 'CANCELED', 'FINISHED'])
def test_a_job_that_ended_fails_at_once(state):
    flink = FakeFlink()
    g = Gate(flink)
    job(flink)
    flink.end(JID, state)
    verdict = g.verify()
    assert not verdict.ok and verdict.reason.startswith('it ended as %s' % state) and g.clock.now == 0
    if state == 'FAILED':
        assert verdict.reason == 'it ended as FAILED: java.lang.RuntimeException: boom'


def test_wait_for_checkpoint_waits_for_the_first_completed_checkpoint():
    flink = FakeFlink()
    g = Gate(flink, wait_for_checkpoint=True)
    job(flink, 'RUNNING', tasks(running=2), {'at': 15, 'checkpoints': 1})
    verdict = g.verify()
    assert verdict.ok and verdict.evidence['checkpoint_id'] == 1 and verdict.evidence['healthy']
    assert 15 <= g.clock.now <= 15 + POLL_INTERVAL
    assert health.CHECKPOINT_SIGNAL in verdict.evidence['signals'] and verdict.evidence['wait_for_checkpoint']
    # Checkpoints are looked at only after the window, and checkpointing was checked to be on once.
    assert min(g.times('/checkpoints')) >= 10
    assert len(g.times('/checkpoints/config')) == 1


def test_wait_for_checkpoint_fails_at_once_when_checkpointing_is_disabled():
    flink = FakeFlink()
    flink.checkpoint_interval_ms = health.CHECKPOINTING_DISABLED
    g = Gate(flink, wait_for_checkpoint=True)
    job(flink)
    verdict = g.verify()
    assert not verdict.ok
    assert verdict.reason == 'wait_for_checkpoint is set, but checkpointing is disabled for the job'
    assert 10 <= g.clock.now <= 10 + POLL_INTERVAL
    assert g.times('/checkpoints') == []


def test_wait_for_checkpoint_fails_at_the_deadline_without_a_checkpoint():
    flink = FakeFlink()
    g = Gate(flink, wait_for_checkpoint=True, timeout=30)
    job(flink)
    verdict = g.verify()
    assert not verdict.ok and verdict.reason == 'it completed no checkpoint within wait_timeout=30 s'
    assert verdict.evidence['healthy_s'] >= 10 and verdict.evidence['checkpoint_id'] is None


def test_evidence_names_the_job_the_policy_and_flinks_signals():
    flink = FakeFlink()
    g = Gate(flink, healthy_for=3)
    job(flink)
    ev = g.verify().evidence
    assert set(ev) == {'job_id', 'healthy', 'healthy_for', 'wait_for_checkpoint', 'healthy_s', 'failures',
                       'checkpoint_id', 'state', 'tasks', 'signals'}
    assert ev['job_id'] == JID and ev['healthy_for'] == 3 and ev['wait_for_checkpoint'] is False
    assert ev['signals'] == list(health.SIGNALS)
    assert ev['healthy'] and 3 <= ev['healthy_s'] <= 3 + POLL_INTERVAL


def test_healthy_for_zero_still_needs_every_task_running_and_no_failure():
    flink = FakeFlink()
    g = Gate(flink, healthy_for=0)
    job(flink, 'RUNNING', tasks(deploying=2), {'at': 1, 'tasks': tasks(running=2)})
    verdict = g.verify()
    assert verdict.ok and 1 <= g.clock.now <= 1 + POLL_INTERVAL and g.times('/exceptions')
    flink2 = FakeFlink()
    g2 = Gate(flink2, healthy_for=0)
    job(flink2)
    flink2.failures[JID] = [{'exceptionName': 'java.lang.Exception', 'stacktrace': 'java.lang.Exception: earlier'}]
    assert not g2.verify().ok
