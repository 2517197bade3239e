"""flink_job across a real JobManager failover (two JobManagers, bundled ZooKeeper).

The short form of the race this collection exists for: the leader is killed with
SIGKILL and, while the standby is being elected, flink_job runs for a job that was
running and for a new one. Neither may end up with two live instances.
"""

import os
import threading
import time

import pytest
import requests

from tests.harness.cluster import _alive as alive
from tests.harness.faultproxy import FaultProxy
from tests.integration.conftest import EXAMPLE_CLASS, Watcher, live_jobs, local, soak_runs
from tests.integration.test_upgrade import restored_path


def args_for(jar, name, urls):
    return {'url': urls, 'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name],
            'wait_timeout': 240}


def restore_killed(ha_cluster, index):
    """Bring a killed JobManager back as the new standby: the cluster ends as it started."""
    ha_cluster.start_jobmanager(index)
    ha_cluster.wait_ready(timeout=120, urls=[ha_cluster.urls[index]])


def revive_dead_jobmanagers(ha_cluster):
    """After a failed case: both JobManagers run again, so the next case starts from the same cluster."""
    for i in range(ha_cluster.jobmanagers):
        if not alive(ha_cluster.proc('jobmanager', i)):
            restore_killed(ha_cluster, i)


class FailoverTally(object):
    """What a repeated failover case saw; on leaving, it is reported and the cluster is whole again."""

    def __init__(self, ha_cluster, fault_report, fault, operation, runs_per_case=1):
        self.ha_cluster, self.fault_report = ha_cluster, fault_report
        self.fault, self.operation, self.runs_per_case = fault, operation, runs_per_case
        self.duplicates = self.lost = 0
        self.times = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fault_report(self.fault, self.operation, runs=len(self.times), duplicates=self.duplicates,
                          lost=self.lost, converge_s=self.times, module_runs=self.runs_per_case * len(self.times))
        revive_dead_jobmanagers(self.ha_cluster)
        self.ha_cluster.cancel_all()


def current_leader(ha_cluster):
    leader = ha_cluster.leader_index()
    assert leader in (0, 1), 'no JobManager logged that it was granted leadership'
    return leader


def test_leader_killed_during_runs_gives_no_duplicate(ha_cluster, ansible, jar, job_name, fault_report):
    """SIGKILL the leader, then run flink_job for a running job and a new one, dead JobManager first in url."""
    urls = ha_cluster.urls
    first = ansible.run('flink_job', args_for(jar, job_name, urls))
    assert first['changed'] and first['job']['state'] == 'RUNNING', first.output
    with FailoverTally(ha_cluster, fault_report, 'leader SIGKILL (url list, dead JobManager first)',
                       'present: running job + new job', runs_per_case=2) as tally:
        for i in range(soak_runs()):
            new_name = '%s-new%d' % (job_name, i)
            leader = current_leader(ha_cluster)
            standby = 1 - leader
            # The dead leader comes first in the list, as in an inventory written before the failover.
            ordered = [urls[leader], urls[standby]]
            with Watcher(urls[standby], job_name) as old_job, Watcher(urls[standby], new_name) as new_job:
                ha_cluster.kill_jobmanager(leader)
                killed = time.monotonic()
                handles = [ansible.start('flink_job', args_for(jar, job_name, ordered)),
                           ansible.start('flink_job', args_for(jar, new_name, ordered))]
                again, new = [ansible.finish(h) for h in handles]
                tally.times.append(time.monotonic() - killed)
                # The watchers must also see the cluster after the failover, not only errors during it.
                assert old_job.wait_samples() and new_job.wait_samples(), (old_job.errors, new_job.errors)
            tally.duplicates += int(old_job.max_live > 1) + int(new_job.max_live > 1)
            old_live = [j['jid'] for j in live_jobs(urls[standby], job_name)]
            new_live = [j['jid'] for j in live_jobs(urls[standby], new_name)]
            tally.lost += int(old_live != [first['job_id']]) + int(len(new_live) != 1)

            assert not again.failed, again.output
            assert not again['changed'] and again['job_id'] == first['job_id']
            assert not new.failed, new.output
            assert new['changed'] and new['job']['state'] == 'RUNNING'
            assert old_job.max_live <= 1 and new_job.max_live <= 1
            assert old_live == [first['job_id']]
            assert new_live == [new['job_id']]
            restore_killed(ha_cluster, leader)


def kill_at(ha_cluster, leader, killed):
    def kill():
        if not killed:
            killed.append(time.monotonic())
            ha_cluster.kill_jobmanager(leader)
    return kill


def kill_when_completed(kill):
    def after(status, body):
        if b'COMPLETED' in body:
            kill()
            return 'drop'
        return None
    return after


HOOKS = {
    # the stop never reaches the leader: the standby recovers the job, the stop is sent again
    'before stop-with-savepoint': lambda kill: ('^/jobs/[^/]+/stop', dict(before=kill)),
    # the leader took the stop, then died: its result is lost, the recovered job is stopped again
    'after stop-with-savepoint': lambda kill: ('^/jobs/[^/]+/stop', dict(after=lambda status, body: kill())),
    # the savepoint is complete and the job finished; the leader dies before the module reads where it went
    'as the savepoint completes': lambda kill: ('^/jobs/[^/]+/savepoints/[^/]+$',
                                                dict(after=kill_when_completed(kill))),
}


@pytest.mark.parametrize('when', sorted(HOOKS))
def test_leader_killed_during_an_upgrade(ha_cluster, ansible, jar, jar_v2, job_name, fault_report, when):
    """The leader dies at three points of an upgrade's stop-with-savepoint.

    The upgrade must end with exactly one instance, new or rolled back, never none
    and never two, and report the savepoint it used.
    """
    urls = ha_cluster.urls
    with FailoverTally(ha_cluster, fault_report, 'leader SIGKILL %s' % when, 'upgraded') as tally:
        for i in range(soak_runs()):
            name = '%s-%d' % (job_name, i)
            v1 = ansible.run('flink_job', args_for(jar, name, urls))
            assert v1['changed'], v1.output
            time.sleep(4)   # a first checkpoint, so a recovered job has state to come back with
            leader = current_leader(ha_cluster)
            standby = 1 - leader
            killed = []
            path, hook = HOOKS[when](kill_at(ha_cluster, leader, killed))
            with FaultProxy(urls[leader]) as proxy, Watcher(urls[standby], name) as w:
                proxy.add('*', path, 'hook', times=None, **hook)
                r = ansible.run('flink_job', dict(args_for(jar_v2, name, [proxy.url, urls[standby]]),
                                                  state='upgraded'))
                w.wait_samples()
            tally.times.append(time.monotonic() - killed[0] if killed else 0.0)
            live = live_jobs(urls[standby], name)
            tally.duplicates += int(w.max_live > 1)
            tally.lost += int(len(live) != 1)
            assert killed, 'the leader was never killed: the upgrade did not reach the stop\n%s' % r.output
            assert not r.failed, r.output
            assert w.max_live <= 1, 'two live instances seen'
            assert [j['jid'] for j in live] == [r['job_id']]
            assert r['changed'] and r['action'] == 'upgraded' and r['savepoint'], r.output
            assert r['previous_job_id'] == v1['job_id']
            # No state lost: the version that runs started from the savepoint the upgrade reports.
            assert restored_path(urls[standby], r['job_id']) == (r['savepoint'], True)
            if when == 'as the savepoint completes':
                assert '/flinkops-' in r['savepoint']
                stats = requests.get('%s/jobs/%s/checkpoints' % (urls[standby], v1['job_id']), timeout=10)
                taken = ((stats.json().get('latest') or {}).get('savepoint') or {}) if stats.ok else {}
                if taken.get('external_path') == r['savepoint']:
                    # The leader died before it recorded the job as finished: the standby recovered the job and
                    # the stop was sent to it again; the savepoint used is the one that second stop took.
                    assert requests.get('%s/jobs/%s' % (urls[standby], v1['job_id']),
                                        timeout=10).json()['state'] == 'FINISHED'
                else:
                    # The job finished with the savepoint, and the new leader did not say where it went (it never
                    # heard of the stop, or reports it failed): flink_job took the savepoint from the directory it
                    # gave this stop, and said so.
                    assert any(r['savepoint'] in w and ('lost the result' in w or 'as failed' in w)
                               for w in r.get('warnings', [])), r.output
                    assert os.path.isfile(os.path.join(local(r['savepoint']), '_metadata'))
            restore_killed(ha_cluster, leader)
            ha_cluster.cancel_all()


def test_leader_killed_during_absent(ha_cluster, ansible, jar, job_name, fault_report):
    """The leader dies as the cancel reaches it: the job recovered by the standby is cancelled there."""
    urls = ha_cluster.urls
    with FailoverTally(ha_cluster, fault_report, 'leader SIGKILL as the cancel arrives', 'absent') as tally:
        for i in range(soak_runs()):
            name = '%s-%d' % (job_name, i)
            started = ansible.run('flink_job', args_for(jar, name, urls))
            assert started['changed'], started.output
            leader = current_leader(ha_cluster)
            standby = 1 - leader
            killed = []
            with FaultProxy(urls[leader]) as proxy:
                proxy.add('PATCH', r'^/jobs/', 'hook', times=1, before=kill_at(ha_cluster, leader, killed))
                r = ansible.run('flink_job', dict(args_for(jar, name, [proxy.url, urls[standby]]), state='absent'))
            tally.times.append(time.monotonic() - killed[0] if killed else 0.0)
            live = live_jobs(urls[standby], name)
            tally.lost += int(bool(live))
            assert killed, 'the cancel never reached the leader'
            assert not r.failed, r.output
            assert r['changed'] and live == [], (r.output, live)
            restore_killed(ha_cluster, leader)


def wait_answers(url, timeout=120):
    """Until a JobManager's REST answers the job list (the new leader was elected)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if requests.get(url + '/jobs/overview', timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError('%s did not answer within %d s' % (url, timeout))


def test_runs_that_saw_different_histories_agree_on_one_survivor(ha_cluster, ansible, jar, job_name, fault_report):
    """Run A lists the stopped instance before a leader SIGKILL; run B lists nothing after it (FACTS.md).

    A resumes generation 1 from the savepoint; B, which cannot know, starts generation 0
    empty, and the new leader accepts both ids. Both runs must end without error and
    report the same survivor (the instance started from state), one instance must be
    left, and the time two were live is measured for the fault table.
    """
    urls = ha_cluster.urls
    with FailoverTally(ha_cluster, fault_report, 'leader SIGKILL between two runs\' observations',
                       'present: different histories', runs_per_case=2) as tally:
        for i in range(soak_runs()):
            name = '%s-%d' % (job_name, i)
            first = ansible.run('flink_job', args_for(jar, name, urls))
            assert first['changed'], first.output
            time.sleep(4)
            stopped = ansible.run('flink_job', {'url': urls, 'name': name, 'state': 'absent', 'savepoint': True,
                                                'wait_timeout': 120})
            assert stopped['savepoint'], stopped.output
            leader = current_leader(ha_cluster)
            standby = 1 - leader
            killed, b_waiting, a_accepted, results = [], threading.Event(), threading.Event(), {}

            def a_before():
                # A has observed (generation 0 ended, with a savepoint) and is about to submit.
                killed.append(time.monotonic())
                ha_cluster.kill_jobmanager(leader)
                wait_answers(urls[standby])
                results['b'] = ansible.start('flink_job', dict(args_for(jar, name, [proxy_b.url]),
                                                               wait_timeout=240))
                assert b_waiting.wait(180), 'run B never reached its submission'

            def b_before():
                b_waiting.set()
                a_accepted.wait(180)

            with FaultProxy(urls[standby]) as proxy_a, FaultProxy(urls[standby]) as proxy_b, \
                    Watcher(urls[standby], name) as w:
                proxy_a.add('POST', r'/jars/[^/]+/run$', 'hook', before=a_before,
                            after=lambda status, body: a_accepted.set())
                proxy_b.add('POST', r'/jars/[^/]+/run$', 'hook', before=b_before)
                a = ansible.run('flink_job', dict(args_for(jar, name, [proxy_a.url]), wait_timeout=240))
                a_accepted.set()
                b = ansible.finish(results['b']) if 'b' in results else None
                w.wait_samples()
            tally.times.append(time.monotonic() - killed[0] if killed else 0.0)
            live = [j['jid'] for j in live_jobs(urls[standby], name)]
            tally.lost += int(len(live) != 1)
            tally.duplicates += int(len(live) > 1)
            fault_report('both ids accepted after a failover (time = how long two instances were live)',
                         'present: different histories', runs=1, duplicates=int(w.max_live > 1), lost=0,
                         converge_s=[w.overlap_s], measured=True)
            assert killed and b is not None, 'the case did not run as planned'
            assert not a.failed, a.output
            assert not b.failed, b.output
            assert a['job_id'] == b['job_id'] == live[0] and len(live) == 1, (a.output, b.output, live)
            assert a['restored_from']['path'] == stopped['savepoint'], a.output
            if b['action'] == 'superseded':
                assert b['cancelled_job_id'] != live[0]
            print('different histories: A=%s B=%s (%s), two instances live for %.2f s'
                  % (a['action'], b['action'], b.get('cancelled_job_id'), w.overlap_s))
            restore_killed(ha_cluster, leader)
            ha_cluster.cancel_all()
