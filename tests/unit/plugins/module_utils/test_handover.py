"""flink_job_handover's logic (module_utils/_handover.py) against the in-memory Flink.

The real restart path (the flink_cluster role restarting a JobManager that runs
jobs) is tested on real Flink in tests/integration/test_cluster_restarts.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import json
import os
import shutil

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
from ansible_collections.flinkops.flink.plugins.module_utils import _handover as handover
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident

from .fake_flink import FakeFlink, tasks
from .fakes import FakeClock, FakeSession
from .test_job import desired, reconcile, record_of


def make(flink, tmp_path, check_mode=False, diff=True, timeout=300, clock=None, **kw):
    clock = clock or FakeClock()
    flink.now = clock
    client = api.FlinkClient(['http://jm:8081'], api.Deadline(timeout, clock=clock), session=FakeSession(flink),
                             sleep=clock.sleep)
    kw.setdefault('path', str(tmp_path / 'instance' / 'handover.json'))
    kw.setdefault('jar_dirs', [str(tmp_path / 'jars')])
    kw.setdefault('healthy_for', 0)
    return handover.Handover(client, check_mode=check_mode, diff=diff, sleep=clock.sleep, **kw)


def keep_uploads(flink, tmp_path, jar):
    """Put a copy of every uploaded jar where the JobManager keeps uploads (named by its jar id)."""
    os.makedirs(str(tmp_path / 'jars'), exist_ok=True)
    for jar_id in flink.jars:
        shutil.copyfile(jar, str(tmp_path / 'jars' / jar_id))


def deployed(flink, tmp_path, jar, name='orders', **kw):
    result = reconcile(flink, desired(jar, name=name, healthy_for=0, **kw))
    keep_uploads(flink, tmp_path, jar)
    return result['job_id']


def restart_without_ha(flink):
    """A JobManager without HA came back: no jobs, no jars."""
    flink.jobs.clear()
    flink.jars.clear()
    flink.forgotten.clear()


def test_suspend_takes_every_recorded_job_out_with_a_savepoint_and_writes_the_handover(jar, tmp_path):
    flink = FakeFlink()
    a = deployed(flink, tmp_path, jar, name='orders', args=['--x', '1'], config={'k': 'v'})
    b = deployed(flink, tmp_path, jar, name='payments', parallelism=2)
    h = make(flink, tmp_path)
    result = h.suspend()
    assert result['changed'] and sorted(j['name'] for j in result['jobs']) == ['orders', 'payments']
    assert not flink.live()
    data = json.load(open(h.path))
    entries = dict((e['name'], e) for e in data['jobs'])
    assert entries['orders']['job_id'] == a and entries['payments']['job_id'] == b
    assert entries['orders']['savepoint'].startswith('file:/sp/')
    assert entries['orders']['spec']['args'] == ['--x', '1'] and entries['orders']['spec']['config'] == {'k': 'v'}
    assert ident.sha256_file(entries['orders']['jar']) == ident.sha256_file(jar)
    assert oct(os.stat(h.path).st_mode & 0o777) == '0o600'


def test_resume_starts_each_job_from_its_savepoint_with_the_same_record_then_nothing_to_do(jar, tmp_path):
    flink = FakeFlink()
    old = deployed(flink, tmp_path, jar, name='orders', args=['--x', '1'], config={'k': 'v'}, parallelism=2)
    before = record_of(flink, old)
    h = make(flink, tmp_path)
    savepoint = h.suspend()['jobs'][0]['savepoint']
    restart_without_ha(flink)
    result = make(flink, tmp_path).resume()
    assert result['changed'] and result['jobs'][0]['action'] == 'resumed'
    [job] = flink.live('job-from-jar')
    assert flink.restored[job['jid']] == savepoint
    after = record_of(flink, job['jid'])
    assert after.spec.core() == before.spec.core() and after.name == 'orders'
    assert after.restored_from == savepoint
    assert not os.path.exists(h.path) and not os.path.exists(handover.jar_store(h.path))
    # flink_job finds it as declared; a second resume has nothing to do.
    again = reconcile(flink, desired(jar, name='orders', args=['--x', '1'], config={'k': 'v'}, parallelism=2,
                                     healthy_for=0))
    assert again['changed'] is False and again['job_id'] == job['jid']
    assert make(flink, tmp_path).resume()['changed'] is False


def test_a_job_without_a_record_fails_the_suspension_before_anything_is_touched(jar, tmp_path):
    flink = FakeFlink()
    deployed(flink, tmp_path, jar, name='orders')
    flink.add_job('f' * 32, 'started-by-hand')
    h = make(flink, tmp_path)
    with pytest.raises(handover.HandoverError, match=r'started-by-hand .*no flinkops record.*Nothing was stopped'):
        h.suspend()
    assert len(flink.live()) == 2
    assert not [r for r in flink.mutating() if r[1].endswith('/stop')]
    assert not os.path.exists(h.path)


def test_unrecorded_cancel_cancels_such_jobs_and_carries_the_others(jar, tmp_path):
    flink = FakeFlink()
    deployed(flink, tmp_path, jar, name='orders')
    flink.add_job('f' * 32, 'started-by-hand')
    result = make(flink, tmp_path, unrecorded='cancel').suspend()
    actions = dict((j['name'], j['action']) for j in result['jobs'])
    assert actions == {'orders': 'stopped', 'started-by-hand': 'cancelled'}
    assert flink.jobs['f' * 32]['state'] == 'CANCELED' and not flink.live()


def test_a_job_with_secret_values_cannot_be_carried(jar, tmp_path):
    flink = FakeFlink()
    deployed(flink, tmp_path, jar, name='orders', secret_args=['--token', 's3cr3t'])
    with pytest.raises(handover.HandoverError, match='secret values'):
        make(flink, tmp_path).suspend()
    assert len(flink.live()) == 1


def test_a_job_whose_jar_is_not_on_the_host_fails_before_anything_is_touched(jar, tmp_path):
    flink = FakeFlink()
    deployed(flink, tmp_path, jar, name='orders')
    shutil.rmtree(str(tmp_path / 'jars'))
    with pytest.raises(handover.HandoverError, match='jar .* is not among the uploaded jars'):
        make(flink, tmp_path).suspend()
    assert len(flink.live()) == 1


def test_check_mode_lists_the_jobs_and_touches_nothing(jar, tmp_path):
    flink = FakeFlink()
    deployed(flink, tmp_path, jar, name='orders')
    flink.requests[:] = []
    h = make(flink, tmp_path, check_mode=True)
    result = h.suspend()
    assert result['changed'] and result['jobs'][0]['name'] == 'orders'
    assert result['diff']['after']['taken_out_with_savepoint'] == ['orders']
    assert flink.mutating() == [] and not os.path.exists(h.path)


def test_nothing_to_take_out_is_no_change(tmp_path):
    flink = FakeFlink()
    result = make(flink, tmp_path).suspend()
    assert result['changed'] is False and result['jobs'] == []


def test_a_run_that_died_after_the_stop_resumes_from_the_savepoint_flink_still_knows(jar, tmp_path):
    """The entry was written before the stop; the run died before it could add the savepoint."""
    flink = FakeFlink()
    jid = deployed(flink, tmp_path, jar, name='orders')
    h = make(flink, tmp_path)
    # The stop happens, but the run dies before it records the savepoint.
    real = h._run_job

    def stop_then_die(d):
        real(d)
        raise KeyboardInterrupt()
    h._run_job = stop_then_die
    with pytest.raises(KeyboardInterrupt):
        h.suspend()
    data = json.load(open(h.path))
    assert data['jobs'][0]['job_id'] == jid and data['jobs'][0]['savepoint'] is None
    result = make(flink, tmp_path).resume()
    [job] = flink.live('job-from-jar')
    assert flink.restored[job['jid']].startswith('file:/sp/')
    assert result['jobs'][0]['savepoint'] == flink.restored[job['jid']]


def test_an_entry_whose_savepoint_nobody_knows_fails_and_starts_nothing(jar, tmp_path):
    flink = FakeFlink()
    deployed(flink, tmp_path, jar, name='orders')
    h = make(flink, tmp_path)

    def die(d):
        raise KeyboardInterrupt()
    h._run_job = die
    with pytest.raises(KeyboardInterrupt):
        h.suspend()
    restart_without_ha(flink)
    with pytest.raises(handover.HandoverError, match='savepoint is not known.*Nothing was started'):
        make(flink, tmp_path).resume()
    assert not flink.live() and os.path.exists(h.path)


def test_a_damaged_handover_file_is_an_error_never_no_jobs(tmp_path):
    path = tmp_path / 'handover.json'
    path.write_text('{"version": 1, "jobs": [')
    with pytest.raises(handover.HandoverError, match='cannot be read'):
        make(FakeFlink(), tmp_path, path=str(path)).resume()


def test_settle_waits_for_taskmanagers_slots_and_healthy_jobs(jar, tmp_path):
    flink = FakeFlink()
    jid = deployed(flink, tmp_path, jar, name='orders')
    flink.taskmanagers, flink.slots = 1, 2
    clock = FakeClock()
    h = make(flink, tmp_path, clock=clock, timeout=30)
    flink.jobs[jid]['tasks'] = tasks(running=1, scheduled=1)

    def recover(method, path):
        if clock.now > 5:
            flink.taskmanagers, flink.slots = 2, 4
            flink.jobs[jid]['tasks'] = tasks(running=2)
    flink.watchers.append(recover)
    result = h.settle(job_ids=[jid], taskmanagers=2, slots=4)
    assert result['taskmanagers'] == 2 and result['jobs'][0]['health'] == 'healthy'
    assert clock.now > 5


def test_settle_fails_at_once_when_an_awaited_job_ended(jar, tmp_path):
    flink = FakeFlink()
    jid = deployed(flink, tmp_path, jar, name='orders')
    flink.end(jid, 'FAILED')
    with pytest.raises(handover.HandoverError, match='ended while the cluster restarted'):
        make(flink, tmp_path).settle(job_ids=[jid])


def test_settle_times_out_with_what_it_waited_for(tmp_path):
    flink = FakeFlink()
    with pytest.raises(handover.HandoverError, match='2 TaskManager'):
        make(flink, tmp_path, timeout=5).settle(taskmanagers=2, slots=4)


def test_settle_tells_which_jobs_take_periodic_checkpoints(jar, tmp_path):
    """A job without periodic checkpoints cannot survive a restart with its state: the role takes it out first."""
    flink = FakeFlink()
    deployed(flink, tmp_path, jar, name='orders')
    jobs = make(flink, tmp_path).settle()['jobs']
    assert [j['checkpointing'] for j in jobs] == [True]
    flink.checkpoint_interval_ms = 0x7fffffffffffffff
    jobs = make(flink, tmp_path).settle()['jobs']
    assert [j['checkpointing'] for j in jobs] == [False]
