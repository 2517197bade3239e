"""flink_job present/absent against a real Flink cluster, through real ansible-playbook."""

import base64
import json
import os
import time

import requests

from tests.harness.faultproxy import FaultProxy
from tests.integration.conftest import (EXAMPLE_CLASS, assert_one_instance_one_change, cancel_all_and_wait,
                                        live_jobs)


def job_args(jar, name, **extra):
    args = {'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name]}
    args.update(extra)
    return args


def with_url(cluster, args):
    return dict(args, url=cluster.url)


def wait_state(url, jid, state, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if requests.get(url + '/jobs/%s' % jid, timeout=10).json().get('state') == state:
            return
        time.sleep(0.3)
    raise AssertionError('job %s did not reach %s' % (jid, state))


def mutating_requests(proxy):
    return [(e[0], e[1]) for e in proxy.log if e[0] != 'GET']


# --- the four-step pattern ------------------------------------------------------

def test_present_four_steps(cluster, ansible, jar, job_name):
    check, real, again, again_check = ansible.four_steps('flink_job', with_url(cluster, job_args(jar, job_name)))

    assert not check.failed, check.output
    assert check['changed'] and check['action'] == 'submitted'
    assert check['diff']['before'] == {'state': 'absent'}
    assert check['diff']['after']['state'] == 'running'

    assert not real.failed, real.output
    assert real['changed'] and real['action'] == 'submitted'
    assert real['job_id'] == check['job_id'], 'check mode predicted another job id'
    assert real['job']['state'] == 'RUNNING'
    assert real['jar_id']
    live = live_jobs(cluster.url, job_name)
    assert [j['jid'] for j in live] == [real['job_id']]

    for r in (again, again_check):
        assert not r.failed, r.output
        assert not r['changed'] and r['action'] == 'none'
        assert r['job_id'] == real['job_id']
        assert r['diff']['before'] == r['diff']['after']
    assert len(live_jobs(cluster.url, job_name)) == 1


def test_absent_four_steps(cluster, ansible, jar, job_name):
    started = ansible.run('flink_job', with_url(cluster, job_args(jar, job_name)))
    assert started['changed'], started.output
    absent = {'url': cluster.url, 'name': job_name, 'state': 'absent'}
    check, real, again, again_check = ansible.four_steps('flink_job', absent)
    assert check['changed'] and check['action'] == 'cancelled' and check['diff']['after'] == {'state': 'absent'}
    assert real['changed'] and real['action'] == 'cancelled', real.output
    assert real['job_ids'] == [started['job_id']]
    assert real['job']['state'] == 'CANCELED'
    for r in (again, again_check):
        assert not r['changed'] and r['action'] == 'none', r.output
    assert live_jobs(cluster.url, job_name) == []


def test_check_mode_sends_no_mutating_request(cluster, ansible, jar, job_name):
    with FaultProxy(cluster.url) as proxy:
        r = ansible.run('flink_job', dict(job_args(jar, job_name), url=proxy.url), check=True)
        assert r['changed'] and r['action'] == 'submitted', r.output
        assert mutating_requests(proxy) == []
        started = ansible.run('flink_job', dict(job_args(jar, job_name), url=cluster.url))
        assert started['changed']
        proxy.log.clear()
        r = ansible.run('flink_job', {'url': proxy.url, 'name': job_name, 'state': 'absent', 'savepoint': True},
                        check=True)
        assert r['changed'] and r['action'] == 'stopped', r.output
        assert mutating_requests(proxy) == []
    assert len(live_jobs(cluster.url, job_name)) == 1


def test_noop_run_makes_three_requests_and_uploads_nothing(cluster, ansible, jar, job_name):
    first = ansible.run('flink_job', with_url(cluster, job_args(jar, job_name)))
    assert first['changed'], first.output
    with FaultProxy(cluster.url) as proxy:
        r = ansible.run('flink_job', dict(job_args(jar, job_name), url=proxy.url))
        assert not r['changed'], r.output
        # The Flink version (an unsupported cluster is refused here), the job list, the live instance's record.
        expected = ['/config', '/jobs/overview', '/jobs/%s/config' % r['job_id']]
        assert [path.split('?')[0] for _method, path, _fault, _status in proxy.log] == expected, proxy.log


# --- identity and adoption ---------------------------------------------------

def test_args_are_passed_through_exactly(cluster, ansible, jar, job_name):
    # The program names the job after its --job-name argument: spaces and unicode must survive.
    flink_name = '%s mit Leerzeichen und Ümlauten ✓' % job_name
    args = job_args(jar, flink_name)
    r = ansible.run('flink_job', with_url(cluster, args))
    assert r['changed'], r.output
    assert r['job']['name'] == flink_name
    assert [j['name'] for j in live_jobs(cluster.url, flink_name)] == [flink_name]


def test_four_concurrent_runs_give_one_instance_and_one_change(cluster, ansible, jar, job_name, watcher):
    args = with_url(cluster, job_args(jar, job_name))
    with watcher(job_name) as w:
        results = ansible.run_many([('flink_job', args)] * 4)
    assert_one_instance_one_change(results, w, cluster.url, job_name)


def test_job_started_by_hand_is_adopted_not_doubled(cluster, ansible, jar, job_name):
    # Someone uploads the jar and starts the job with the Flink CLI's random id.
    with open(jar, 'rb') as f:
        up = requests.post(cluster.url + '/jars/upload', files={'jarfile': ('manual.jar', f)}, timeout=30).json()
    jar_id = up['filename'].rsplit('/', 1)[-1]
    run = requests.post(cluster.url + '/jars/%s/run' % jar_id, timeout=60,
                        json={'entryClass': EXAMPLE_CLASS, 'programArgsList': ['--job-name', job_name]}).json()
    manual_id = run['jobid']
    wait_state(cluster.url, manual_id, 'RUNNING')

    check, real, again, again_check = ansible.four_steps('flink_job', with_url(cluster, job_args(jar, job_name)))
    for r in (check, real, again, again_check):
        assert not r.failed, r.output
        assert not r['changed'] and r['adopted'] and r['job_id'] == manual_id
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [manual_id]

    gone = ansible.run('flink_job', {'url': cluster.url, 'name': job_name, 'state': 'absent'})
    assert gone['changed'] and gone['job_ids'] == [manual_id]
    assert live_jobs(cluster.url, job_name) == []


def test_job_cancelled_behind_the_modules_back_is_brought_back(cluster, ansible, jar, job_name):
    args = with_url(cluster, job_args(jar, job_name))
    first = ansible.run('flink_job', args)
    assert first['changed'], first.output
    requests.patch(cluster.url + '/jobs/%s?mode=cancel' % first['job_id'], timeout=10)
    cancel_all_and_wait(cluster.url)

    # The cancelled instance left no retained checkpoint: never a silent empty start.
    for check in (True, False):
        refused = ansible.run('flink_job', args, check=check)
        assert refused.failed and 'restore_from' in refused['msg'] and first['job_id'] in refused['msg'], \
            refused.output
    assert live_jobs(cluster.url, job_name) == []

    empty = dict(args, restore_from='none')
    check, real, again, again_check = ansible.four_steps('flink_job', empty)
    assert check['changed'] and check['job_id'] != first['job_id']
    assert real['changed'] and real['action'] == 'submitted', real.output
    assert real['job_id'] == check['job_id']
    assert real['generation'] == first['generation'] + 1
    assert real['job_id'][:16] == first['job_id'][:16], 'the name keeps the id prefix'
    assert not again['changed'] and not again_check['changed']
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [real['job_id']]


def test_same_jar_is_uploaded_once(cluster, ansible, jar, job_name):
    a = ansible.run('flink_job', with_url(cluster, job_args(jar, job_name + '-a')))
    b = ansible.run('flink_job', with_url(cluster, job_args(jar, job_name + '-b')))
    assert a['changed'] and b['changed']
    assert a['jar_id'] == b['jar_id']


def test_url_list_skips_a_dead_jobmanager(cluster, ansible, jar, job_name):
    dead = 'http://127.0.0.1:9'  # the discard port: nothing listens there
    r = ansible.run('flink_job', dict(job_args(jar, job_name), url=[dead, cluster.url], wait_timeout=60))
    assert r['changed'] and r['job']['state'] == 'RUNNING', r.output


def test_module_defaults_group_sets_the_connection(cluster, ansible, jar, job_name):
    r = ansible.run('flink_job', job_args(jar, job_name),
                    play_extra={'module_defaults': {'group/flinkops.flink.flink': {'url': cluster.url,
                                                                                   'wait_timeout': 90}}})
    assert r['changed'] and r['job']['state'] == 'RUNNING', r.output


def test_url_from_environment(cluster, ansible, jar, job_name):
    r = ansible.run('flink_job', job_args(jar, job_name), env={'FLINK_URL': cluster.url})
    assert r['changed'] and r['job']['state'] == 'RUNNING', r.output


def test_config_reaches_the_job(cluster, ansible, jar, job_name):
    r = ansible.run('flink_job', with_url(cluster, job_args(
        jar, job_name, parallelism=2, config={'pipeline.global-job-parameters': 'team:payments,tier:gold'})))
    assert r['changed'], r.output
    cfg = requests.get(cluster.url + '/jobs/%s/config' % r['job_id'], timeout=10).json()
    user = dict(cfg['execution-config']['user-config'])
    encoded = user.pop('flinkops.spec')
    recorded = json.loads(base64.urlsafe_b64decode(encoded + '=' * (-len(encoded) % 4)))
    # The user's own global job parameters arrive untouched; flink_job adds only its spec record.
    assert user == {'team': 'payments', 'tier': 'gold'}
    assert recorded['name'] == job_name and recorded['v'] == 2
    assert recorded['spec']['parallelism'] == 2 and recorded['spec']['args'] == ['--job-name', job_name], recorded
    assert recorded['spec']['config'] == {'pipeline.global-job-parameters': 'team:payments,tier:gold'}
    detail = requests.get(cluster.url + '/jobs/%s' % r['job_id'], timeout=10).json()
    assert max(v['parallelism'] for v in detail['vertices']) == 2


# --- faults ------------------------------------------------------------------

def test_dropped_submission_answer_is_looked_up_not_resent(cluster, ansible, jar, job_name, watcher):
    with FaultProxy(cluster.url) as proxy:
        rule = proxy.add('POST', r'/jars/[^/]+/run', 'drop', times=1)
        with watcher(job_name) as w:
            r = ansible.run('flink_job', dict(job_args(jar, job_name), url=proxy.url, request_timeout=5))
        assert rule.fired == 1, 'the fault did not fire'
        log = [(e[0], e[1]) for e in proxy.log]
        runs = [i for i, (m, p) in enumerate(log) if m == 'POST' and p.endswith('/run')]
        # The submission landed although its answer was lost: the module looks its job id up, and does not run
        # the program's main() a second time.
        assert len(runs) == 1, log
        assert ('GET', '/jobs/%s' % r['job_id']) in log[runs[0] + 1:], log
    assert not r.failed, r.output
    assert r['changed'] and r['job']['state'] == 'RUNNING'
    assert w.max_live == 1
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [r['job_id']]


def test_leader_election_503s_are_waited_out(cluster, ansible, jar, job_name):
    first = ansible.run('flink_job', with_url(cluster, job_args(jar, job_name)))
    assert first['changed']
    with FaultProxy(cluster.url) as proxy:
        rule = proxy.add('GET', r'^/jobs/overview', 'status', times=8)
        r = ansible.run('flink_job', dict(job_args(jar, job_name), url=proxy.url))
        assert rule.fired == 8
    assert not r.failed, r.output
    assert not r['changed'] and r['job_id'] == first['job_id']
    assert len(live_jobs(cluster.url, job_name)) == 1


def test_503_during_submission_is_waited_out(cluster, ansible, jar, job_name):
    with FaultProxy(cluster.url) as proxy:
        rule = proxy.add('*', r'.*', 'status', times=6)
        r = ansible.run('flink_job', dict(job_args(jar, job_name), url=proxy.url))
        assert rule.fired == 6
    assert r['changed'] and r['job']['state'] == 'RUNNING', r.output
    assert len(live_jobs(cluster.url, job_name)) == 1


# --- absent with savepoint ------------------------------------------------------

def test_absent_with_savepoint_returns_its_path(cluster, ansible, jar, job_name, tmp_path):
    started = ansible.run('flink_job', with_url(cluster, job_args(jar, job_name)))
    assert started['changed']
    target = 'file://%s' % tmp_path
    r = ansible.run('flink_job', {'url': cluster.url, 'name': job_name, 'state': 'absent', 'savepoint': True,
                                  'savepoint_dir': target})
    assert r['changed'] and r['action'] == 'stopped', r.output
    assert r['savepoint'].startswith('file:') and str(tmp_path) in r['savepoint']
    assert os.path.isdir(r['savepoint'].replace('file://', '').replace('file:', ''))
    assert r['job']['state'] == 'FINISHED'
    assert live_jobs(cluster.url, job_name) == []


# --- bad input ---------------------------------------------------------------

def _assert_clean_failure(r, cluster, before_jobs, *needles):
    assert r.failed, r.output
    assert 'Traceback' not in r.output and 'MODULE FAILURE' not in r.output
    for needle in needles:
        assert needle in r['msg'], r['msg']
    assert 'exception' not in r or 'Unexpected error' not in r['msg']
    after = requests.get(cluster.url + '/jobs/overview', timeout=10).json()['jobs']
    assert sorted(j['jid'] for j in after) == sorted(j['jid'] for j in before_jobs), 'a job was submitted'


def test_bad_input_fails_clearly_and_submits_nothing(cluster, ansible, jar, job_name, tmp_path):
    running = ansible.run('flink_job', with_url(cluster, job_args(jar, job_name)))
    assert running['changed']
    before = requests.get(cluster.url + '/jobs/overview', timeout=10).json()['jobs']
    not_a_jar = tmp_path / 'notes.jar'
    not_a_jar.write_text('this is not a jar')
    base = with_url(cluster, job_args(jar, job_name + '-bad'))
    cases = [
        (dict(base, jar=str(tmp_path / 'missing.jar')), ['missing.jar', 'does not exist']),
        (dict(base, jar=str(not_a_jar)), ['notes.jar', 'not a jar']),
        (dict(base, entry_class='org.flinkops.examples.DoesNotExist'), ['ClassNotFoundException',
                                                                        'org.flinkops.examples.DoesNotExist']),
        (dict(base, parallelism=0), ['parallelism must be 1 or more']),
        (dict(base, name=''), ['name must not be empty']),
        (dict(base, url='htp://localhost:8081'), ['Malformed Flink URL']),
        (dict(base, url='http://127.0.0.1:9', wait_timeout=3), ['not ready', 'wait_timeout=3', 'refused']),
        (dict(base, url=cluster.url.replace('http://', 'https://'), wait_timeout=10), ['TLS handshake']),
    ]
    for args, needles in cases:
        r = ansible.run('flink_job', args)
        _assert_clean_failure(r, cluster, before, *needles)
    # The running job was never touched.
    live = live_jobs(cluster.url, job_name)
    assert [j['jid'] for j in live] == [running['job_id']]
    assert live[0]['start-time'] == running['job']['start_time_ms']


def test_main_that_throws_fails_with_the_programs_reason(cluster, ansible, jar, job_name):
    before = requests.get(cluster.url + '/jobs/overview', timeout=10).json()['jobs']
    r = ansible.run('flink_job', with_url(cluster, job_args(jar, job_name, args=['--job-name', job_name,
                                                                                 '--fail-in-main'])))
    _assert_clean_failure(r, cluster, before, 'Could not start job')
