"""The life-cycle suite: short enough to run on every supported Flink line and ansible-core release.

One job through its whole life, each step first in check mode (which must touch
nothing), then for real, then again (which must change nothing):
present -> no-op -> upgraded through a savepoint -> absent with a savepoint ->
present again, resuming from it. Then flink_savepoint takes and disposes a
savepoint, the info modules read the cluster, and on an HA cluster the leader is
killed while flink_job runs.

The referees are Flink's own answers: a Watcher polls the job list for the whole
life and counts live instances of the name, the restores are read from the new
instances' checkpoint statistics, savepoints are looked for on disk. `make test`
runs this file on every Flink line (the whole suite on 2.3 and 1.20), `make
matrix` also under every ansible-core release.
"""

import os

import requests

from tests.integration.conftest import EXAMPLE_CLASS, Watcher, live_jobs, local
from tests.integration.test_ha_failover import current_leader, restore_killed
from tests.integration.test_upgrade import restored_path, wait_for_checkpoint


def spec(url, jar, name, **options):
    args = {'url': url, 'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name],
            'parallelism': 1, 'wait_timeout': 180}
    args.update(options)
    return args


def ok(result, **expected):
    assert not result.failed, result.output
    for key, value in expected.items():
        assert result.get(key) == value, (key, result.get(key), result.output)
    return result


def test_one_job_through_its_whole_life(cluster, ansible, jar, jar_v2, job_name):
    url = cluster.url

    def live_ids():
        return [j['jid'] for j in live_jobs(url, job_name)]
    with Watcher(url, job_name) as watch:
        # present: check mode submits nothing, the run submits once, the next run changes nothing.
        check = ok(ansible.run('flink_job', spec(url, jar, job_name), check=True), changed=True, action='submitted')
        assert live_ids() == [] and 'diff' in check
        first = ok(ansible.run('flink_job', spec(url, jar, job_name)), changed=True, action='submitted')
        assert live_ids() == [first['job_id']]
        ok(ansible.run('flink_job', spec(url, jar, job_name)), changed=False, action='none', job_id=first['job_id'])
        ok(ansible.run('flink_job', spec(url, jar, job_name), check=True), changed=False, action='none')
        wait_for_checkpoint(cluster.url, first['job_id'])

        # upgraded: check mode leaves v1 running alone, the upgrade goes through a savepoint.
        v2 = spec(url, jar_v2, job_name, state='upgraded')
        check = ok(ansible.run('flink_job', v2, check=True), changed=True, action='upgraded')
        assert check['diff']['before'] != check['diff']['after']
        assert live_ids() == [first['job_id']]
        up = ok(ansible.run('flink_job', v2), changed=True, action='upgraded', previous_job_id=first['job_id'])
        assert up['savepoint'] and os.path.isdir(local(up['savepoint'])), up.output
        assert live_ids() == [up['job_id']] and up['job_id'] != first['job_id']
        path, is_savepoint = restored_path(cluster.url, up['job_id'])
        assert path == up['savepoint'] and is_savepoint, (path, is_savepoint, up['savepoint'])
        ok(ansible.run('flink_job', v2), changed=False, action='none', job_id=up['job_id'])
        ok(ansible.run('flink_job', v2, check=True), changed=False)
        wait_for_checkpoint(cluster.url, up['job_id'])

        # absent with a savepoint: check mode stops nothing; the stop leaves a savepoint on disk.
        absent = {'url': url, 'name': job_name, 'state': 'absent', 'savepoint': True, 'wait_timeout': 180}
        ok(ansible.run('flink_job', absent, check=True), changed=True)
        assert live_ids() == [up['job_id']]
        gone = ok(ansible.run('flink_job', absent), changed=True, action='stopped')
        assert gone['savepoint'] and os.path.isdir(local(gone['savepoint'])), gone.output
        assert live_ids() == []
        ok(ansible.run('flink_job', absent), changed=False)
        ok(ansible.run('flink_job', absent, check=True), changed=False)

        # present again resumes from that savepoint (check mode says so and starts nothing).
        check = ok(ansible.run('flink_job', spec(url, jar_v2, job_name), check=True), changed=True)
        assert check['restored_from']['path'] == gone['savepoint'] and live_ids() == []
        back = ok(ansible.run('flink_job', spec(url, jar_v2, job_name)), changed=True, action='submitted')
        assert back['restored_from'] == {'path': gone['savepoint'], 'kind': 'savepoint', 'job_id': up['job_id']}
        path, is_savepoint = restored_path(cluster.url, back['job_id'])
        assert path == gone['savepoint'] and is_savepoint
        assert live_ids() == [back['job_id']]
        ok(ansible.run('flink_job', spec(url, jar_v2, job_name)), changed=False, action='none',
           job_id=back['job_id'])
        assert watch.wait_samples()
    assert watch.max_live == 1, 'the watcher saw %d live instances of %s at once' % (watch.max_live, job_name)


def test_savepoint_take_and_dispose_and_the_info_modules(cluster, ansible, jar, job_name, tmp_path, flink_version):
    url = cluster.url
    job = ok(ansible.run('flink_job', spec(url, jar, job_name)), changed=True)
    wait_for_checkpoint(cluster.url, job['job_id'])

    ok(ansible.run('flink_savepoint', {'url': url, 'name': job_name, 'savepoint_dir': 'file://%s' % tmp_path},
                   check=True), changed=True, savepoint=None, job_id=job['job_id'])
    assert os.listdir(str(tmp_path)) == [], 'check mode took a savepoint'
    before = set()
    taken = ok(ansible.run('flink_savepoint', {'url': url, 'name': job_name, 'savepoint_dir': 'file://%s' % tmp_path}),
               changed=True, job_id=job['job_id'])
    assert os.path.isfile(os.path.join(local(taken['savepoint']), '_metadata')), taken.output
    assert set(os.listdir(str(tmp_path))) - before, 'no savepoint directory appeared'
    assert [j['jid'] for j in live_jobs(url, job_name)] == [job['job_id']], 'taking a savepoint stopped the job'

    dispose = {'url': url, 'state': 'absent', 'path': taken['savepoint']}
    ok(ansible.run('flink_savepoint', dispose, check=True), changed=True)
    assert os.path.isdir(local(taken['savepoint'])), 'check mode disposed of the savepoint'
    ok(ansible.run('flink_savepoint', dispose), changed=True)
    assert not os.path.exists(local(taken['savepoint'])), 'the savepoint is still on disk'

    info = ok(ansible.run('flink_job_info', {'url': url, 'name': job_name}), changed=False)
    assert [j['id'] for j in info['jobs']] == [job['job_id']] and info['jobs'][0]['state'] == 'RUNNING'
    overview = requests.get(url + '/overview', timeout=10).json()
    cinfo = ok(ansible.run('flink_cluster_info', {'url': url}), changed=False)
    assert cinfo['reachable'] and cinfo['flink_version'] == overview['flink-version'] == flink_version, cinfo.output
    assert cinfo['taskmanagers'] == overview['taskmanagers']


def test_leader_killed_while_flink_job_runs(ha_cluster, ansible, jar, job_name):
    """The failover case of the life cycle: SIGKILL the leader, run flink_job for the job at once, dead one first."""
    ha = ha_cluster
    first = ok(ansible.run('flink_job', spec(ha.urls, jar, job_name, wait_timeout=240)), changed=True)
    leader = current_leader(ha)
    standby = 1 - leader
    with Watcher(ha.urls[standby], job_name) as watch:
        ha.kill_jobmanager(leader)
        again = ansible.run('flink_job', spec([ha.urls[leader], ha.urls[standby]], jar, job_name, wait_timeout=240))
        assert watch.wait_samples(), 'the standby never answered (%d errors)' % watch.errors
    ok(again, changed=False, job_id=first['job_id'])
    assert watch.max_live == 1
    assert [j['jid'] for j in live_jobs(ha.urls[standby], job_name)] == [first['job_id']]
    restore_killed(ha, leader)
    ha.cancel_all()
