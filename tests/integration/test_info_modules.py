"""flink_job_info and flink_cluster_info against a real cluster."""

import requests

from tests.integration.conftest import EXAMPLE_CLASS, live_jobs


def test_cluster_info_matches_rest(cluster, ansible, flink_version):
    r = ansible.run('flink_cluster_info', {'url': cluster.url}, check=True)
    assert not r.failed and not r['changed'], r.output
    overview = requests.get(cluster.url + '/overview', timeout=10).json()
    assert r['reachable'] is True
    assert r['flink_version'] == flink_version == overview['flink-version']
    assert r['taskmanagers'] == overview['taskmanagers'] >= 1
    assert r['slots_total'] == overview['slots-total'] > 0
    assert set(r['jobs']) == {'running', 'finished', 'cancelled', 'failed'}


def test_cluster_info_unreachable_is_not_an_error(ansible):
    r = ansible.run('flink_cluster_info', {'url': 'http://127.0.0.1:9', 'wait_timeout': 0})
    assert not r.failed, r.output
    assert r['reachable'] is False and 'refused' in r['msg']


def test_job_info_by_name_and_state(cluster, ansible, jar, job_name):
    started = ansible.run('flink_job', {'url': cluster.url, 'name': job_name, 'jar': jar,
                                        'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', job_name]})
    assert started['changed'], started.output
    r = ansible.run('flink_job_info', {'url': cluster.url, 'name': job_name}, check=True)
    assert not r.failed and not r['changed'], r.output
    assert [j['id'] for j in r['jobs']] == [started['job_id']]
    job = r['jobs'][0]
    assert job['state'] == 'RUNNING' and job['live'] and job['managed'] and job['name'] == job_name
    assert job['start_time'].endswith('Z') and job['start_time_ms'] > 0

    none = ansible.run('flink_job_info', {'url': cluster.url, 'name': job_name, 'states': ['canceled']})
    assert none['jobs'] == []
    everything = ansible.run('flink_job_info', {'url': cluster.url})
    assert started['job_id'] in [j['id'] for j in everything['jobs']]
    assert len([j for j in everything['jobs'] if j['live']]) == len(live_jobs(cluster.url))
