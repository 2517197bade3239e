"""Secrets never show: password, client key and token stay out of -vvvv output, --diff and results.

Each authenticated way in is a real nginx (tests/harness/nginx.py) in front of the
session cluster: basic auth, mutual TLS with a client key, and a bearer token passed
in ``headers``. Every run is ``ansible-playbook -vvvv --diff``; the run's whole
stdout/stderr and the registered result are searched for the secret. Each case also
checks that the verbose output really holds the module's arguments (masked), so a
leak would have been seen.
"""

import json
import os
import shutil
import uuid

import certifi
import pytest

from tests.harness.nginx import Nginx, make_pki
from tests.integration.conftest import EXAMPLE_CLASS, live_jobs

USER = 'deployer'
MASK = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
# A CA bundle in the environment must not override the module's ca_path (see test_tls.py).
TLS_ENV = {'REQUESTS_CA_BUNDLE': certifi.where(), 'CURL_CA_BUNDLE': certifi.where()}


def job_args(jar, name, **extra):
    args = {'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name], 'parallelism': 1}
    args.update(extra)
    return args


def assert_hidden(result, *secrets):
    text = result.output
    saved = json.dumps(result)
    assert 'module_args' in text and '"url":' in text, 'the output is not verbose enough to show a leak'
    if not result.failed:
        assert result['diff']['after'] and 'after' in text, 'no diff to look at'
    for secret in secrets:
        assert secret not in text, 'secret in the output of ansible-playbook -vvvv --diff'
        assert secret not in saved, 'secret in the registered result'


def middle_line(pem_path):
    with open(pem_path) as f:
        lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith('-----')]
    return lines[len(lines) // 2]


def workdir(workroot, name):
    path = os.path.join(workroot, '%s-%s' % (name, uuid.uuid4().hex[:8]))
    os.makedirs(path)
    return path


@pytest.fixture(scope='module')
def password():
    return 'pw-%s' % uuid.uuid4().hex


@pytest.fixture(scope='module')
def token():
    return 'tok-%s' % uuid.uuid4().hex


@pytest.fixture(scope='module')
def basic_proxy(cluster, workroot, password):
    path = workdir(workroot, 'nginx-basic')
    with Nginx(path, cluster.url, users={USER: password}) as n:
        yield n
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='module')
def pki(workroot):
    path = workdir(workroot, 'pki')
    yield make_pki(path, name='secrets')
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='module')
def mtls_proxy(cluster, workroot, pki):
    path = workdir(workroot, 'nginx-mtls')
    with Nginx(path, cluster.url, tls=pki, client_ca=pki['ca']) as n:
        yield n
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='module')
def token_proxy(cluster, workroot, token):
    path = workdir(workroot, 'nginx-token')
    with Nginx(path, cluster.url, bearer_token=token) as n:
        yield n
    shutil.rmtree(path, ignore_errors=True)


def test_basic_auth_password_never_shows(cluster, basic_proxy, ansible, jar, job_name, password):
    args = job_args(jar, job_name, url=basic_proxy.url, url_username=USER, url_password=password)
    r = ansible.run('flink_job', args, verbosity=4, diff=True)
    assert not r.failed, r.output
    assert r['changed'] and r['action'] == 'submitted'
    assert '"url_password": "%s"' % MASK in r.output
    assert_hidden(r, password)
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [r['job_id']]


def test_client_key_never_shows(cluster, mtls_proxy, pki, ansible, jar, job_name):
    key_line = middle_line(pki['client_key'])
    args = job_args(jar, job_name, url=mtls_proxy.url, ca_path=pki['ca'], client_cert=pki['client_cert'],
                    client_key=pki['client_key'])
    r = ansible.run('flink_job', args, verbosity=4, diff=True, env=TLS_ENV)
    assert not r.failed, r.output
    assert r['changed'] and r['action'] == 'submitted'
    assert '"client_key": "%s"' % pki['client_key'] in r.output
    assert_hidden(r, key_line)
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [r['job_id']]


def test_token_in_headers_never_shows(cluster, token_proxy, ansible, jar, job_name, token):
    args = job_args(jar, job_name, url=token_proxy.url, headers={'Authorization': 'Bearer %s' % token})
    r = ansible.run('flink_job', args, verbosity=4, diff=True)
    assert not r.failed, r.output
    assert r['changed'] and r['action'] == 'submitted'
    assert '"Authorization": "%s"' % MASK in r.output
    assert_hidden(r, token)
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [r['job_id']]


def test_failing_run_shows_no_password(cluster, basic_proxy, ansible, jar, job_name, password):
    wrong = 'wrong-%s' % uuid.uuid4().hex
    args = job_args(jar, job_name, url=basic_proxy.url, url_username=USER, url_password=wrong)
    r = ansible.run('flink_job', args, verbosity=4, diff=True)
    assert r.failed and 'HTTP 401' in r['msg'], r.output
    assert '"url_password": "%s"' % MASK in r.output
    assert_hidden(r, wrong, password)
    assert live_jobs(cluster.url, job_name) == []


def test_failing_token_run_shows_no_token(cluster, token_proxy, ansible, jar, job_name, token):
    wrong = 'tok-%s' % uuid.uuid4().hex
    r = ansible.run('flink_job', job_args(jar, job_name, url=token_proxy.url,
                                          headers={'Authorization': 'Bearer %s' % wrong}), verbosity=4, diff=True)
    assert r.failed and 'HTTP 401' in r['msg'], r.output
    assert '"Authorization": "%s"' % MASK in r.output
    assert_hidden(r, wrong, token)
    assert live_jobs(cluster.url, job_name) == []
