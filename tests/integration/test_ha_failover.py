"""flink_job across a real JobManager failover (two JobManagers, bundled ZooKeeper).

The short form of the race this collection exists for: the leader is killed with
SIGKILL and, while the standby is being elected, flink_job runs for a job that was
running and for a new one. Neither may end up with two live instances.
"""

import os

import pytest

from tests.harness.cluster import FlinkCluster
from tests.integration.conftest import EXAMPLE_CLASS, Watcher, free_port_block, live_jobs


@pytest.fixture(scope='module')
def ha_cluster(flink_version, workroot):
    port = free_port_block(18500, 18990, 10)
    c = FlinkCluster(flink_version, os.path.join(workroot, 'ha-%d' % port), rest_port=port, ha=True, slots=4)
    c.start(timeout=180)
    try:
        yield c
    finally:
        c.stop()


def args_for(jar, name, urls):
    return {'url': urls, 'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name],
            'wait_timeout': 240}


def test_leader_killed_during_runs_gives_no_duplicate(ha_cluster, ansible, jar, job_name):
    urls = ha_cluster.urls
    first = ansible.run('flink_job', args_for(jar, job_name, urls))
    assert first['changed'] and first['job']['state'] == 'RUNNING', first.output

    leader = ha_cluster.leader_index()
    assert leader in (0, 1), 'no JobManager logged that it was granted leadership'
    standby = 1 - leader
    # The dead leader comes first in the list, as in an inventory written before the failover.
    ordered = [urls[leader], urls[standby]]
    with Watcher(urls[standby], job_name) as old_job, Watcher(urls[standby], job_name + '-new') as new_job:
        ha_cluster.kill_jobmanager(leader)
        handles = [ansible.start('flink_job', args_for(jar, job_name, ordered)),
                   ansible.start('flink_job', args_for(jar, job_name + '-new', ordered))]
        again, new = [ansible.finish(h) for h in handles]
        # The watchers must also see the cluster after the failover, not only errors during it.
        assert old_job.wait_samples() and new_job.wait_samples(), (old_job.errors, new_job.errors)

    assert not again.failed, again.output
    assert not again['changed'] and again['job_id'] == first['job_id']
    assert not new.failed, new.output
    assert new['changed'] and new['job']['state'] == 'RUNNING'
    assert old_job.max_live <= 1 and new_job.max_live <= 1
    assert old_job.samples > 0
    assert [j['jid'] for j in live_jobs(urls[standby], job_name)] == [first['job_id']]
    assert [j['jid'] for j in live_jobs(urls[standby], job_name + '-new')] == [new['job_id']]

    # Bring the killed JobManager back as the new standby: the cluster ends as it started.
    ha_cluster.start_jobmanager(leader)
    ha_cluster.wait_ready(timeout=120, urls=[urls[leader]])
    ha_cluster.cancel_all()
