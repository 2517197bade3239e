"""SQL jobs on real Flink, through ansible-playbook: the jar path's guarantees with statements instead of a jar.

The referees are Flink's answers: a Watcher counts live instances of the name, the restores are read from
the new instance's checkpoint statistics, the statements a job runs are read back from its record
(``GET /jobs/<id>/config``), savepoints are looked for on disk.
"""

import os

import requests

from tests.harness.faultproxy import FaultProxy
from tests.integration.conftest import Watcher, assert_one_instance_one_change, live_jobs, local
from tests.integration.test_ha_failover import current_leader, restore_killed
from tests.integration.test_identity import record
from tests.integration.test_lifecycle import ok
from tests.integration.test_upgrade import restored_path, wait_for_checkpoint

SOURCE = ("CREATE TABLE orders (k INT, v BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '%d', "
          "'fields.k.min' = '0', 'fields.k.max' = '9')")
SINK = "CREATE TABLE per_key (k INT, c BIGINT) WITH ('connector' = 'blackhole')"
COUNT = 'INSERT INTO per_key SELECT k, COUNT(*) FROM orders GROUP BY k'
# The same plan as COUNT (a source option changed): the state of COUNT restores into it.
# A distinct count keeps other state than COUNT(*): Flink cannot map the savepoint onto it.
DISTINCT = 'INSERT INTO per_key SELECT k, COUNT(DISTINCT v) FROM orders GROUP BY k'


def script(insert=COUNT, rate=20):
    return ';\n'.join([SOURCE % rate, SINK, insert]) + ';\n'


def spec(url, name, sql=None, **options):
    args = {'url': url, 'name': name, 'sql': sql or script(), 'parallelism': 1, 'wait_timeout': 180,
            'healthy_for': 2}
    args.update(options)
    return args


def statements(url, jid):
    return record(url, jid)['spec']['sql']


def test_a_sql_job_through_its_whole_life(cluster, ansible, job_name, watcher):
    url = cluster.url

    def live_ids():
        return [j['jid'] for j in live_jobs(url, job_name)]
    with watcher(job_name) as watch:
        check = ok(ansible.run('flink_job', spec(url, job_name), check=True, diff=True), changed=True,
                   action='submitted')
        assert live_ids() == [] and check['diff']['after']['sql'][-1] == COUNT
        first = ok(ansible.run('flink_job', spec(url, job_name)), changed=True, action='submitted')
        assert live_ids() == [first['job_id']], 'the job does not run under the declared name'
        assert statements(url, first['job_id']) == [SOURCE % 20, SINK, COUNT]
        ok(ansible.run('flink_job', spec(url, job_name)), changed=False, action='none', job_id=first['job_id'])
        # A comment is not part of the job: adding one changes nothing.
        ok(ansible.run('flink_job', spec(url, job_name, '-- counted per key\n' + script())), changed=False)
        wait_for_checkpoint(cluster.url, first['job_id'])

        # --check --diff shows the SQL change and touches nothing; the upgrade restores from its savepoint.
        v2 = spec(url, job_name, script(rate=40), state='upgraded')
        check = ok(ansible.run('flink_job', v2, check=True, diff=True), changed=True, action='upgraded')
        assert check['diff']['before']['sql'][0] == SOURCE % 20 and check['diff']['after']['sql'][0] == SOURCE % 40
        assert live_ids() == [first['job_id']]
        up = ok(ansible.run('flink_job', v2), changed=True, action='upgraded', previous_job_id=first['job_id'])
        assert live_ids() == [up['job_id']] and statements(url, up['job_id'])[0] == SOURCE % 40
        path, is_savepoint = restored_path(cluster.url, up['job_id'])
        assert path == up['savepoint'] and is_savepoint, (path, up.output)
        ok(ansible.run('flink_job', v2), changed=False, action='none', job_id=up['job_id'])
        wait_for_checkpoint(cluster.url, up['job_id'])

        # absent with a savepoint returns its path; present again resumes from it.
        absent = {'url': url, 'name': job_name, 'state': 'absent', 'savepoint': True, 'wait_timeout': 180}
        gone = ok(ansible.run('flink_job', absent), changed=True, action='stopped')
        assert gone['savepoint'] and os.path.isdir(local(gone['savepoint'])) and live_ids() == []
        back = ok(ansible.run('flink_job', spec(url, job_name, script(rate=40))), changed=True, action='submitted')
        assert back['restored_from']['path'] == gone['savepoint']
        assert restored_path(cluster.url, back['job_id']) == (gone['savepoint'], True)
        assert watch.wait_samples()
    assert watch.max_live == 1, 'the watcher saw %d live instances of %s' % (watch.max_live, job_name)


def test_a_sql_change_whose_state_cannot_be_restored_rolls_back(cluster, ansible, job_name, watcher):
    url = cluster.url
    first = ok(ansible.run('flink_job', spec(url, job_name)), changed=True)
    wait_for_checkpoint(cluster.url, first['job_id'])
    with watcher(job_name) as watch:
        bad = ansible.run('flink_job', spec(url, job_name, script(DISTINCT), state='upgraded', rollback_timeout=120))
        assert watch.wait_samples()
    assert bad.failed and bad['action'] == 'rolled_back', bad.output
    assert 'Cannot map checkpoint/savepoint state' in bad['msg'] and 'previous version was restored' in bad['msg']
    live = live_jobs(url, job_name)
    assert len(live) == 1 and statements(url, live[0]['jid'])[-1] == COUNT, 'the previous version is not back'
    path, is_savepoint = restored_path(cluster.url, live[0]['jid'])
    assert path and is_savepoint and path == bad['savepoint'], (path, bad.output)
    assert watch.max_live == 1


def test_concurrent_runs_declaring_different_sql_start_one_instance(cluster, ansible, job_name, watcher):
    calls = [('flink_job', spec(cluster.url, job_name, script(rate=r))) for r in (10, 20, 10, 20)]
    with watcher(job_name) as w:
        results = ansible.run_many(calls)
        w.wait_samples()
    assert_one_instance_one_change(results, w, cluster.url, job_name)


def test_a_run_for_other_sql_inside_the_window_gives_one_instance(cluster, ansible, job_name, watcher):
    """Run B (other SQL) completes between run A's observation and its submission."""
    other = {}

    def run_b():
        other['r'] = ansible.run('flink_job', spec(cluster.url, job_name, script(rate=40)))

    with FaultProxy(cluster.url) as proxy, watcher(job_name) as w:
        rule = proxy.add('POST', r'/jars/[^/]+/run$', 'hook', before=run_b)
        a = ansible.run('flink_job', spec(proxy.url, job_name, script(rate=20)))
        w.wait_samples()
    assert rule.fired == 1
    b = other['r']
    assert not a.failed and not b.failed, a.output + b.output
    assert b['changed'] and not a['changed'] and a['job_id'] == b['job_id'] and a['drift'], a.output
    assert w.max_live == 1
    assert [statements(cluster.url, j['jid'])[0] for j in live_jobs(cluster.url, job_name)] == [SOURCE % 40]


def test_leader_killed_while_a_sql_job_runs(ha_cluster, ansible, job_name):
    """SIGKILL the leader and run flink_job for the SQL job at once, dead JobManager first: the job recovers
    under its own id from its checkpoint, and no run starts a second one."""
    ha = ha_cluster
    first = ok(ansible.run('flink_job', spec(ha.urls, job_name, wait_timeout=240)), changed=True)
    leader = current_leader(ha)
    standby = 1 - leader
    wait_for_checkpoint(ha.urls[leader], first['job_id'])
    with Watcher(ha.urls[standby], job_name) as watch:
        ha.kill_jobmanager(leader)
        again = ansible.run('flink_job', spec([ha.urls[leader], ha.urls[standby]], job_name, wait_timeout=240))
        assert watch.wait_samples(), 'the standby never answered (%d errors)' % watch.errors
    try:
        ok(again, changed=False, job_id=first['job_id'])
        assert watch.max_live == 1
        assert [j['jid'] for j in live_jobs(ha.urls[standby], job_name)] == [first['job_id']]
        path, is_savepoint = restored_path(ha.urls[standby], first['job_id'], timeout=60)
        assert path and not is_savepoint, 'the job did not resume from its checkpoint: %s' % path
    finally:
        restore_killed(ha, leader)
        ha.cancel_all()


def test_sql_that_flink_cannot_plan_fails_with_flinks_reason_and_runs_nothing(cluster, ansible, job_name):
    url = cluster.url
    typo = ok(ansible.run('flink_job', spec(url, job_name)), changed=True)
    # A running job is not touched by an upgrade to SQL that does not parse.
    broken = spec(url, job_name, script('INSERT INTO per_key SELEC k, 1 FROM orders'), state='upgraded')
    result = ansible.run('flink_job', broken)
    assert result.failed and 'SQL parse failed' in result['msg'] and 'not touched' in result['msg'], result.output
    assert [j['jid'] for j in live_jobs(url, job_name)] == [typo['job_id']]
    # A first submission of SQL naming a table that does not exist fails with Flink's reason; nothing runs.
    other = job_name + '-missing-table'
    missing = ansible.run('flink_job', spec(url, other, script('INSERT INTO nowhere SELECT k, v FROM orders')))
    assert missing.failed and 'nowhere' in missing['msg'], missing.output
    assert live_jobs(url, other) == []


def test_a_script_that_is_not_one_job_is_refused_before_any_request(cluster, ansible, job_name):
    before = requests.get(cluster.url + '/jars', timeout=10).json()['files']
    for sql, says in ((SOURCE % 1 + ';' + SINK, 'does not start a job'),
                      (script() + COUNT, 'only the last statement may'),
                      ("SET 'parallelism.default' = '2';" + script(), 'not with SET')):
        result = ansible.run('flink_job', spec(cluster.url, job_name, sql))
        assert result.failed and says in result['msg'], result.output
    from_file = dict(spec(cluster.url, job_name), sql_file='/nonexistent/job.sql')
    del from_file['sql']
    result = ansible.run('flink_job', from_file)
    assert result.failed and 'sql_file /nonexistent/job.sql cannot be read' in result['msg'], result.output
    assert live_jobs(cluster.url, job_name) == []
    assert requests.get(cluster.url + '/jars', timeout=10).json()['files'] == before
