"""flink_job through an authenticating reverse proxy: a real nginx (the distribution's
package, unpacked without root) with HTTP basic auth in front of the session cluster."""

import base64
import os
import shutil
import uuid

import pytest
import requests

from tests.harness.nginx import Nginx
from tests.integration.conftest import EXAMPLE_CLASS, live_jobs

USER = 'deployer'


def job_args(jar, name, **extra):
    args = {'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name], 'parallelism': 1}
    args.update(extra)
    return args


def jar_ids(url):
    return sorted(j['id'] for j in requests.get(url + '/jars', timeout=10).json().get('files', []))


@pytest.fixture(scope='module')
def password():
    return 'pw-%s' % uuid.uuid4().hex


@pytest.fixture(scope='module')
def proxy(cluster, workroot, password):
    workdir = os.path.join(workroot, 'nginx-auth-%s' % uuid.uuid4().hex[:8])
    os.makedirs(workdir)
    with Nginx(workdir, cluster.url, users={USER: password}) as n:
        yield n
    shutil.rmtree(workdir, ignore_errors=True)


def test_the_proxy_requires_credentials(proxy, password):
    assert requests.get(proxy.url + '/overview', timeout=10).status_code == 401
    assert requests.get(proxy.url + '/overview', auth=(USER, 'nope'), timeout=10).status_code == 401
    r = requests.get(proxy.url + '/overview', auth=(USER, password), timeout=10)
    assert r.status_code == 200 and r.json()['taskmanagers'] >= 1


def test_present_with_basic_auth_then_no_change(cluster, proxy, ansible, jar, job_name, password):
    args = job_args(jar, job_name, url=proxy.url, url_username=USER, url_password=password)
    first = ansible.run('flink_job', args)
    assert not first.failed, first.output
    assert first['changed'] and first['action'] == 'submitted' and first['job']['state'] == 'RUNNING'
    second = ansible.run('flink_job', args)
    assert not second.failed, second.output
    assert not second['changed'] and second['action'] == 'none' and second['job_id'] == first['job_id']
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [first['job_id']]
    # The requests went through nginx, authenticated (the jar may already be on the cluster from an
    # earlier test, so look for the submission rather than the upload).
    log = proxy.access_log()
    assert '%s [' % USER in log
    assert any('- %s [' % USER in line and '"POST /jars/' in line and '/run ' in line for line in log.splitlines()), log


@pytest.mark.parametrize('credentials', ['none', 'wrong-password'])
def test_refused_without_the_right_credentials(cluster, proxy, ansible, jar, job_name, credentials):
    jars_before = jar_ids(cluster.url)
    args = job_args(jar, job_name, url=proxy.url)
    if credentials == 'wrong-password':
        args.update(url_username=USER, url_password='wrong-%s' % uuid.uuid4().hex)
    r = ansible.run('flink_job', args)
    assert r.failed, r.output
    assert 'refused the request' in r['msg'] and 'HTTP 401' in r['msg'], r['msg']
    assert 'url_username/url_password' in r['msg'], r['msg']
    assert r.get('status') == 401
    assert 'Traceback' not in r.output and 'MODULE FAILURE' not in r.output, r.output
    # Nothing reached Flink: no job, no uploaded jar.
    assert live_jobs(cluster.url, job_name) == []
    assert [j for j in requests.get(cluster.url + '/jobs/overview', timeout=10).json()['jobs']
            if j['name'] == job_name] == []
    assert jar_ids(cluster.url) == jars_before


def test_authorization_header_in_headers(cluster, proxy, ansible, jar, job_name, password):
    token = base64.b64encode(('%s:%s' % (USER, password)).encode()).decode()
    args = job_args(jar, job_name, url=proxy.url, headers={'Authorization': 'Basic %s' % token})
    r = ansible.run('flink_job', args)
    assert not r.failed, r.output
    assert r['changed'] and r['action'] == 'submitted'
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [r['job_id']]
    info = ansible.run('flink_job_info', {'url': proxy.url, 'headers': {'Authorization': 'Basic %s' % token},
                                          'name': job_name})
    assert not info.failed, info.output
    assert [(j['id'], j['state']) for j in info['jobs']] == [(r['job_id'], 'RUNNING')]
