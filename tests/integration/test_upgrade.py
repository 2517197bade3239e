"""state=upgraded, resume of ended jobs and flink_savepoint against a real Flink cluster."""

import base64
import json
import os
import time

import requests

from tests.integration.conftest import EXAMPLE_CLASS, live_jobs, local

RETAIN = {'execution.checkpointing.externalized-checkpoint-retention': 'RETAIN_ON_CANCELLATION'}


def spec(cluster, jar, name, *extra_args, **options):
    args = {'url': cluster.url, 'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS,
            'args': ['--job-name', name] + list(extra_args), 'wait_timeout': 180}
    args.update(options)
    return args


def upgraded(*a, **kw):
    return dict(spec(*a, **kw), state='upgraded')


def checkpoints(url, jid):
    """The checkpoint statistics of job ``jid`` from the JobManager at ``url``."""
    return requests.get(url + '/jobs/%s/checkpoints' % jid, timeout=10).json()


def restored_path(url, jid, timeout=30):
    """The savepoint/checkpoint a job says it was restored from (it reports it once the restore happened)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        restored = (checkpoints(url, jid).get('latest') or {}).get('restored')
        if restored:
            return restored['external_path'], restored['is_savepoint']
        time.sleep(0.5)
    return None, None


def wait_for_checkpoint(url, jid, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ((checkpoints(url, jid).get('latest') or {}).get('completed') or {}).get('external_path'):
            return
        time.sleep(0.5)
    raise AssertionError('job %s completed no checkpoint' % jid)


def recorded_args(cluster, jid):
    user = requests.get(cluster.url + '/jobs/%s/config' % jid, timeout=10).json()['execution-config']['user-config']
    text = user['flinkops.spec']
    return json.loads(base64.urlsafe_b64decode(text + '=' * (-len(text) % 4)))['spec']['args']


def jar_names(cluster):
    return [f['name'] for f in requests.get(cluster.url + '/jars', timeout=10).json()['files']]


def test_upgrade_through_a_savepoint(cluster, ansible, jar, jar_v2, job_name, watcher):
    v1 = ansible.run('flink_job', spec(cluster, jar, job_name))
    assert v1['changed'], v1.output
    wait_for_checkpoint(cluster.url, v1['job_id'])
    with watcher(job_name) as w:
        check, real, again, again_check = ansible.four_steps('flink_job', upgraded(cluster, jar_v2, job_name))
    assert check['changed'] and check['action'] == 'upgraded', check.output
    assert check['diff']['before']['jar_sha256'] != check['diff']['after']['jar_sha256']
    assert check['diff']['before']['job_id'] == v1['job_id']

    assert not real.failed, real.output
    assert real['changed'] and real['action'] == 'upgraded'
    assert real['previous_job_id'] == v1['job_id'] and real['job_id'] == check['job_id']
    assert real['savepoint'] and real['job']['state'] == 'RUNNING'
    path, is_savepoint = restored_path(cluster.url, real['job_id'])
    assert path == real['savepoint'] and is_savepoint
    for r in (again, again_check):
        assert not r['changed'] and r['job_id'] == real['job_id'], r.output
    assert w.max_live == 1
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [real['job_id']]
    # The previous version's jar is gone once the new one runs; the new one stays.
    v1_sha = check['diff']['before']['jar_sha256'][:16]
    v2_sha = check['diff']['after']['jar_sha256'][:16]
    names = jar_names(cluster)
    assert any(n.startswith('flinkops-%s-' % v2_sha) for n in names)
    assert not any(n.startswith('flinkops-%s-' % v1_sha) for n in names)


def test_new_version_whose_main_throws_leaves_the_job_running(cluster, ansible, jar, job_name):
    v1 = ansible.run('flink_job', spec(cluster, jar, job_name))
    assert v1['changed'], v1.output
    r = ansible.run('flink_job', upgraded(cluster, jar, job_name, '--fail-in-main'))
    assert r.failed and 'Traceback' not in r.output
    assert 'asked to fail in main()' in r['msg'] and 'not touched' in r['msg'], r['msg']
    live = live_jobs(cluster.url, job_name)
    assert [j['jid'] for j in live] == [v1['job_id']]
    assert live[0]['start-time'] == v1['job']['start_time_ms']


def test_unmappable_state_rolls_back_then_allow_non_restored_state_goes_through(cluster, ansible, jar, job_name,
                                                                                watcher):
    v1 = ansible.run('flink_job', spec(cluster, jar, job_name))
    assert v1['changed'], v1.output
    wait_for_checkpoint(cluster.url, v1['job_id'])
    with watcher(job_name) as w:
        r = ansible.run('flink_job', upgraded(cluster, jar, job_name, '--uid-suffix', '-renamed'))
    assert r.failed and 'Traceback' not in r.output, r.output
    assert 'previous version was restored' in r['msg'], r['msg']
    assert r['savepoint'] and r['savepoint'] in r['msg']
    assert r['action'] == 'rolled_back' and r['previous_job_id'] == v1['job_id']
    assert w.max_live <= 1
    live = live_jobs(cluster.url, job_name)
    assert [j['jid'] for j in live] == [r['job_id']]
    assert recorded_args(cluster, r['job_id']) == recorded_args(cluster, v1['job_id']), \
        'the rolled-back job does not run the previous spec'
    path, is_savepoint = restored_path(cluster.url, r['job_id'])
    assert path == r['savepoint'] and is_savepoint

    same = ansible.run('flink_job', upgraded(cluster, jar, job_name))
    assert not same.failed and not same['changed'], same.output

    through = ansible.run('flink_job', upgraded(cluster, jar, job_name, '--uid-suffix', '-renamed',
                                                allow_non_restored_state=True))
    assert not through.failed, through.output
    assert through['changed'] and through['action'] == 'upgraded'
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [through['job_id']]


def test_present_reports_drift_and_touches_nothing(cluster, ansible, jar, job_name):
    v1 = ansible.run('flink_job', spec(cluster, jar, job_name))
    assert v1['changed']
    for check in (True, False):
        r = ansible.run('flink_job', spec(cluster, jar, job_name, '--sleep-ms', '30'), check=check)
        assert not r['changed'] and r['drift'], r.output
        assert any('state=upgraded' in w for w in r.get('warnings', [])), r.get('warnings')
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [v1['job_id']]


def test_last_state_upgrade_resumes_from_the_retained_checkpoint(cluster, ansible, jar, jar_v2, job_name):
    plain = ansible.run('flink_job', spec(cluster, jar, job_name))
    assert plain['changed']
    refused = ansible.run('flink_job', upgraded(cluster, jar_v2, job_name, upgrade_mode='last-state'))
    assert refused.failed and 'RETAIN_ON_CANCELLATION' in refused['msg'], refused.output
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [plain['job_id']]

    retained = ansible.run('flink_job', upgraded(cluster, jar, job_name, config=RETAIN, upgrade_mode='stateless'))
    assert retained['changed'] and retained['action'] == 'upgraded', retained.output
    assert restored_path(cluster.url, retained['job_id'], timeout=3) == (None, None), 'stateless must start empty'
    wait_for_checkpoint(cluster.url, retained['job_id'])
    r = ansible.run('flink_job', upgraded(cluster, jar_v2, job_name, config=RETAIN, upgrade_mode='last-state'))
    assert not r.failed and r['action'] == 'upgraded', r.output
    # Flink counts any restore from an explicit path as a savepoint restore; the path says it was a checkpoint.
    path = restored_path(cluster.url, r['job_id'])[0]
    assert path == r['savepoint'] and '/chk-' in path


def test_ended_job_resumes_from_its_savepoint(cluster, ansible, jar, job_name):
    first = ansible.run('flink_job', spec(cluster, jar, job_name))
    assert first['changed']
    wait_for_checkpoint(cluster.url, first['job_id'])
    stopped = ansible.run('flink_job', {'url': cluster.url, 'name': job_name, 'state': 'absent', 'savepoint': True})
    assert stopped['savepoint'], stopped.output
    check = ansible.run('flink_job', spec(cluster, jar, job_name), check=True)
    assert check['changed'] and check['restored_from']['path'] == stopped['savepoint']
    r = ansible.run('flink_job', spec(cluster, jar, job_name))
    assert r['changed'] and r['restored_from'] == {'path': stopped['savepoint'], 'kind': 'savepoint',
                                                   'job_id': first['job_id']}, r.output
    path, is_savepoint = restored_path(cluster.url, r['job_id'])
    assert path == stopped['savepoint'] and is_savepoint

    # restore_from: none forces an empty start.
    ansible.run('flink_job', {'url': cluster.url, 'name': job_name, 'state': 'absent', 'savepoint': True})
    empty = ansible.run('flink_job', spec(cluster, jar, job_name, restore_from='none'))
    assert empty['changed'] and 'restored_from' not in empty, empty.output
    assert restored_path(cluster.url, empty['job_id'], timeout=3) == (None, None)


def test_savepoint_module_takes_and_disposes(cluster, ansible, jar, job_name, tmp_path):
    job = ansible.run('flink_job', spec(cluster, jar, job_name))
    assert job['changed']
    wait_for_checkpoint(cluster.url, job['job_id'])
    check = ansible.run('flink_savepoint', {'url': cluster.url, 'name': job_name}, check=True)
    assert check['changed'] and check['savepoint'] is None and check['job_id'] == job['job_id'], check.output
    taken = ansible.run('flink_savepoint', {'url': cluster.url, 'name': job_name,
                                            'savepoint_dir': 'file://%s' % tmp_path})
    assert taken['changed'] and str(tmp_path) in taken['savepoint'], taken.output
    on_disk = local(taken['savepoint'])
    assert os.path.isdir(on_disk)
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [job['job_id']], 'the job must keep running'

    gone = ansible.run('flink_savepoint', {'url': cluster.url, 'state': 'absent', 'path': taken['savepoint']})
    assert gone['changed'], gone.output
    assert not os.path.exists(on_disk)
    again = ansible.run('flink_savepoint', {'url': cluster.url, 'state': 'absent', 'path': taken['savepoint']})
    assert not again.failed and not again['changed'], again.output

    missing = ansible.run('flink_savepoint', {'url': cluster.url, 'name': job_name + '-nope'})
    assert missing.failed and 'No live job' in missing['msg']
