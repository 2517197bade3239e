"""REST TLS and mutual TLS: the flink_cluster role serves https with the certificates it
generates, and the modules connect with ca_path / client_cert / client_key.

One cluster for the whole file, made by the role through real ansible-playbook on
localhost (pypi install, script service manager, free loopback ports). It starts
with TLS; a second role run switches mutual TLS on (only the JobManager restarts);
a third one hands the role its own keystore and truststore (copies of the generated
ones) with mutual TLS. The teardown runs the role with flink_cluster_state=absent,
which stops exactly the processes it started (by their pid files).
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid

import certifi
import pytest
import requests

from tests.harness import owned
from tests.harness.nginx import make_pki
from tests.harness.roles import process_conf, recap as parse_recap
from tests.integration.ansible_play import ansible_env
from tests.integration.conftest import EXAMPLE_CLASS, free_port_block

TERMINAL = ('FINISHED', 'CANCELED', 'FAILED')

# A CA bundle in the environment (REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, set on many
# machines) must not override the module's ca_path or validate_certs: the module
# runs of this file set both to a public bundle that does not hold the test CA.
TLS_ENV = {'REQUESTS_CA_BUNDLE': certifi.where(), 'CURL_CA_BUNDLE': certifi.where()}


class RoleCluster(object):
    """A single-host cluster made by the flink_cluster role, driven through ansible-playbook."""

    def __init__(self, version, workdir, rest_port, **role_vars):
        self.version = version
        self.workdir = workdir
        self.rest_port = rest_port
        self.install_dir = os.path.join(workdir, 'flink')
        self.role_vars = {
            'flink_cluster_version': version,
            'flink_cluster_install_source': 'pypi',
            'flink_cluster_install_dir': self.install_dir,
            'flink_cluster_user': 'root',
            'flink_cluster_group': 'root',
            'flink_cluster_service_manager': 'script',
            'flink_cluster_bind_address': '127.0.0.1',
            'flink_cluster_advertised_address': '127.0.0.1',
            'flink_cluster_rest_port': rest_port,
            'flink_cluster_rpc_port': rest_port + 1,
            'flink_cluster_taskmanager_slots': 4,
            'flink_cluster_jobmanager_memory': '1024m',
            'flink_cluster_taskmanager_memory': '1280m',
            'flink_cluster_wait_timeout': 120,
            # A restarted JobManager gets its TaskManager back within seconds, not the default 50 s.
            'flink_cluster_config': {'heartbeat.interval': 2000, 'heartbeat.timeout': 10000},
        }
        self.role_vars.update(role_vars)
        self.facts = {}
        self.runs = 0
        self.durations = []
        os.makedirs(workdir, exist_ok=True)

    @property
    def instance_dir(self):
        return os.path.join(self.install_dir, 'instance')

    @property
    def tls_dir(self):
        return os.path.join(self.instance_dir, 'tls')

    def pid(self, daemon):
        """Pid in the role's pid file of a process ('standalonesession' or 'taskexecutor'), or None."""
        path = os.path.join(self.instance_dir, 'pid', 'flink-flinkops-%s.pid' % daemon)
        try:
            with open(path) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def run(self, verbosity=0, diff=False, timeout=600, **extra_vars):
        """Run the role; return (rc, output, recap dict for the host)."""
        self.runs += 1
        n = self.runs
        facts_file = os.path.join(self.workdir, 'facts-%d.json' % n)
        host_vars = dict(self.role_vars, **extra_vars)
        host_vars.update({'ansible_connection': 'local',
                          'ansible_python_interpreter': '{{ ansible_playbook_python }}'})
        inventory = {'all': {'hosts': {'tlshost': host_vars}}}
        play = [{
            'name': 'flink_cluster with REST TLS',
            'hosts': 'all',
            'gather_facts': True,
            'gather_subset': ['min'],
            'roles': [{'role': 'flinkops.flink.flink_cluster'}],
            'post_tasks': [{
                'name': 'Save what the role published',
                'ansible.builtin.copy': {
                    'content': '{{ {"urls": flink_cluster_rest_urls, '
                               '"connection": flink_cluster_rest_connection} | to_json }}',
                    'dest': facts_file, 'mode': '0600'},
                'when': "flink_cluster_state | default('started') == 'started'",
                'changed_when': False,
                'diff': False,
            }],
        }]
        inv_path = os.path.join(self.workdir, 'inventory-%d.json' % n)
        play_path = os.path.join(self.workdir, 'play-%d.json' % n)
        for path, data in ((inv_path, inventory), (play_path, play)):
            with open(path, 'w') as f:
                json.dump(data, f)
        cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inv_path, play_path]
        if diff:
            cmd.append('--diff')
        if verbosity:
            cmd.append('-' + 'v' * verbosity)
        started = time.monotonic()
        # Pipelining (one process per task, no temporary module files) makes a role run much faster here.
        proc = owned.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=ansible_env({'ANSIBLE_PIPELINING': '1'}), cwd=self.workdir, timeout=timeout)
        self.durations.append(round(time.monotonic() - started, 1))
        output = proc.stdout.decode('utf-8', 'replace')
        with open(os.path.join(self.workdir, 'run-%d.log' % n), 'w') as f:
            f.write(output)
        if os.path.exists(facts_file):
            with open(facts_file) as f:
                self.facts = json.load(f)
        return proc.returncode, output, recap(output)

    def ensure(self, **extra_vars):
        rc, output, stats = self.run(**extra_vars)
        assert rc == 0, output[-6000:]
        return output, stats

    @property
    def url(self):
        return self.facts['urls'][0]

    @property
    def connection(self):
        return self.facts['connection']


def changed_tasks(output):
    """Names of the tasks and handlers that reported a change."""
    names, current = set(), None
    for line in output.splitlines():
        if line.startswith(('TASK [', 'RUNNING HANDLER [')):
            current = line.split('[', 1)[1].rsplit(']', 1)[0].split(' : ', 1)[-1]
        elif line.startswith('changed:') and current:
            names.add(current)
    return names


def recap(output):
    """ok/changed/unreachable/failed counts of the PLAY RECAP line of the one host."""
    return parse_recap(output).get('tlshost')


def flink_get(cluster, path, cert=None, **kwargs):
    return requests.get(cluster.url + path, verify=cluster.connection.get('ca_path'), cert=cert, timeout=10,
                        **kwargs)


def cancel_all(cluster, cert=None, timeout=60):
    jobs = flink_get(cluster, '/jobs/overview', cert=cert).json()['jobs']
    for j in jobs:
        if j['state'] not in TERMINAL:
            requests.patch(cluster.url + '/jobs/%s?mode=cancel' % j['jid'], verify=cluster.connection['ca_path'],
                           cert=cert, timeout=10)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        live = [j for j in flink_get(cluster, '/jobs/overview', cert=cert).json()['jobs']
                if j['state'] not in TERMINAL]
        if not live:
            return
        time.sleep(0.3)


def no_traceback(result):
    """A clear failure: a message, no Python traceback (ansible-core puts '(traceback unavailable)' there)."""
    assert 'Traceback' not in result.output and 'MODULE FAILURE' not in result.output, result.output
    assert result.get('exception', '(traceback unavailable)') == '(traceback unavailable)', result['exception']


def job_args(jar, name):
    return {'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name], 'parallelism': 1}


# --- fixtures ------------------------------------------------------------------

@pytest.fixture(scope='module')
def store_password():
    return 'ks-%s' % uuid.uuid4().hex


@pytest.fixture(scope='module')
def tls_cluster(flink_version, workroot, store_password):
    port = free_port_block(19400, 19900, 10)
    shutil.rmtree(os.path.join(workroot, 'tls-%d' % port), ignore_errors=True)
    c = RoleCluster(flink_version, os.path.join(workroot, 'tls-%d' % port), port,
                    flink_cluster_rest_ssl=True, flink_cluster_rest_ssl_keystore_password=store_password)
    try:
        c.first_output, c.first_stats = c.ensure(diff=True, verbosity=3)
        yield c
    finally:
        rc, output = c.run(flink_cluster_state='absent')[:2]
        print('role runs took %s s' % c.durations)
        assert rc == 0, output[-4000:]
        assert not os.path.exists(c.install_dir), output[-4000:]


@pytest.fixture(scope='module')
def other_ca(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp('other-ca')), client=False, name='other')


@pytest.fixture
def job_name(request):
    return 'tls-%s-%s' % (request.node.name[:30], uuid.uuid4().hex[:6])


# --- TLS -----------------------------------------------------------------------

def test_role_serves_https_with_the_generated_ca(tls_cluster, store_password):
    c = tls_cluster
    assert c.facts['urls'] == ['https://127.0.0.1:%d' % c.rest_port]
    conn = c.connection
    assert conn == {'validate_certs': True, 'ca_path': os.path.join(c.tls_dir, 'ca.pem')}
    # The generated certificate names the advertised address, localhost and 127.0.0.1.
    assert flink_get(c, '/config').json()['flink-version'] == c.version
    for host in ('localhost', '127.0.0.1'):
        r = requests.get('https://%s:%d/overview' % (host, c.rest_port), verify=conn['ca_path'], timeout=10)
        assert r.status_code == 200 and r.json()['slots-total'] == 4
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get('http://127.0.0.1:%d/overview' % c.rest_port, timeout=5)
    # Over TLS 1.2 the JobManager offers the ECDHE-GCM suites of flink_cluster_rest_ssl_algorithms.
    ctx = ssl.create_default_context(cafile=conn['ca_path'])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with ctx.wrap_socket(socket.create_connection(('127.0.0.1', c.rest_port), timeout=10),
                         server_hostname='127.0.0.1') as s:
        assert s.cipher()[0].startswith('ECDHE-') and 'GCM' in s.cipher()[0], s.cipher()
    # Passwords never show, not even with -vvv --diff.
    assert store_password not in c.first_output
    with open(process_conf(c.instance_dir, 'jobmanager')) as f:
        conf = f.read()
    assert store_password in conf and 'security.ssl.rest.enabled: true' in conf
    with open(process_conf(c.instance_dir, 'taskmanager')) as f:
        assert 'security.ssl' not in f.read()


def test_modules_work_with_ca_path(tls_cluster, ansible, jar, job_name):
    c = tls_cluster
    conn = dict(url=c.url, ca_path=c.connection['ca_path'])
    info = ansible.run('flink_cluster_info', conn, env=TLS_ENV)
    assert not info.failed, info.output
    assert info['reachable'] and info['flink_version'] == c.version and info['slots_total'] == 4, info
    job = ansible.run('flink_job', dict(conn, **job_args(jar, job_name)), env=TLS_ENV)
    assert not job.failed, job.output
    assert job['changed'] and job['action'] == 'submitted' and job['job']['state'] == 'RUNNING'
    again = ansible.run('flink_job', dict(conn, **job_args(jar, job_name)), env=TLS_ENV)
    assert not again.failed and not again['changed'] and again['job_id'] == job['job_id'], again.output
    live = [j for j in flink_get(c, '/jobs/overview').json()['jobs'] if j['state'] not in TERMINAL]
    assert [j['jid'] for j in live] == [job['job_id']]
    cancel_all(c)


def test_wrong_ca_fails_clearly(tls_cluster, ansible, other_ca):
    r = ansible.run('flink_cluster_info', {'url': tls_cluster.url, 'ca_path': other_ca['ca']}, env=TLS_ENV)
    assert r.failed, r.output
    assert 'TLS handshake with %s failed' % tls_cluster.url in r['msg'], r['msg']
    assert 'certificate verify failed' in r['msg'].lower(), r['msg']
    no_traceback(r)


def test_untrusted_certificate_fails_with_validate_certs(tls_cluster, ansible, jar, job_name):
    r = ansible.run('flink_job', dict(job_args(jar, job_name), url=tls_cluster.url, validate_certs=True),
                    env=TLS_ENV)
    assert r.failed, r.output
    assert 'TLS handshake' in r['msg'] and 'certificate verify failed' in r['msg'].lower(), r['msg']
    no_traceback(r)
    assert [j for j in flink_get(tls_cluster, '/jobs/overview').json()['jobs'] if j['name'] == job_name] == []


def test_validate_certs_false_works(tls_cluster, ansible):
    r = ansible.run('flink_cluster_info', {'url': tls_cluster.url, 'validate_certs': False}, env=TLS_ENV)
    assert not r.failed, r.output
    assert r['reachable'] and r['flink_version'] == tls_cluster.version, r


# --- mutual TLS ----------------------------------------------------------------

def pem_middle_line(path):
    with open(path) as f:
        lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith('-----')]
    return lines[len(lines) // 2]


@pytest.fixture(scope='module')
def mtls_cluster(tls_cluster):
    """The same cluster, re-run with mutual TLS: only the JobManager's configuration changes and only the
    JobManager restarts; no certificate or store is made again."""
    c = tls_cluster
    cancel_all(c)
    jm, tm = c.pid('standalonesession'), c.pid('taskexecutor')
    generated = dict((n, os.stat(os.path.join(c.tls_dir, n)).st_mtime_ns)
                     for n in ('ca.pem', 'server.pem', 'client.pem', 'client.key', 'keystore.p12', 'truststore.p12'))
    c.role_vars['flink_cluster_rest_ssl_client_auth'] = True
    output = c.ensure()[0]
    # Everything else is as the first run left it: the role is idempotent but for this one setting.
    assert changed_tasks(output) == {'Write the JobManager configuration', 'Show the restart plan', 'Restart the process'}, \
        changed_tasks(output)
    assert generated == dict((n, os.stat(os.path.join(c.tls_dir, n)).st_mtime_ns) for n in generated), \
        'the certificates and stores were made again'
    assert c.pid('taskexecutor') == tm, 'the TaskManager restarted'
    assert c.pid('standalonesession') not in (None, jm), 'the JobManager did not restart'
    return c


def test_mutual_tls_publishes_the_client_certificate(mtls_cluster):
    c = mtls_cluster
    assert c.connection == {'validate_certs': True, 'ca_path': os.path.join(c.tls_dir, 'ca.pem'),
                            'client_cert': os.path.join(c.tls_dir, 'client.pem'),
                            'client_key': os.path.join(c.tls_dir, 'client.key')}
    with open(process_conf(c.instance_dir, 'jobmanager')) as f:
        assert 'security.ssl.rest.authentication-enabled: true' in f.read()
    cert = (c.connection['client_cert'], c.connection['client_key'])
    assert flink_get(c, '/overview', cert=cert).json()['taskmanagers'] == 1


def test_mutual_tls_without_client_certificate_fails_clearly(mtls_cluster, ansible, jar, job_name):
    c = mtls_cluster
    r = ansible.run('flink_job', dict(job_args(jar, job_name), url=c.url, ca_path=c.connection['ca_path'],
                                      wait_timeout=30), env=TLS_ENV)
    assert r.failed, r.output
    assert 'TLS handshake with %s failed' % c.url in r['msg'], r['msg']
    assert 'client_cert' in r['msg'], r['msg']
    no_traceback(r)
    cert = (c.connection['client_cert'], c.connection['client_key'])
    assert [j for j in flink_get(c, '/jobs/overview', cert=cert).json()['jobs'] if j['name'] == job_name] == []


def test_mutual_tls_with_client_certificate_works(mtls_cluster, ansible, jar, job_name):
    c = mtls_cluster
    conn = dict(url=c.url, **c.connection)
    info = ansible.run('flink_cluster_info', conn, env=TLS_ENV)
    assert not info.failed and info['reachable'] and info['taskmanagers'] == 1, info.output
    secret = pem_middle_line(conn['client_key'])
    job = ansible.run('flink_job', dict(conn, **job_args(jar, job_name)), verbosity=4, diff=True, env=TLS_ENV)
    assert not job.failed, job.output
    assert job['changed'] and job['action'] == 'submitted' and job['job']['state'] == 'RUNNING'
    assert secret not in job.output and secret not in json.dumps(job)
    cert = (conn['client_cert'], conn['client_key'])
    live = [j for j in flink_get(c, '/jobs/overview', cert=cert).json()['jobs'] if j['state'] not in TERMINAL]
    assert [j['jid'] for j in live] == [job['job_id']]
    cancel_all(c, cert=cert)


def test_own_keystore_and_truststore(mtls_cluster, ansible, store_password):
    """Your own stores (here: copies of the generated ones) with mutual TLS: the role waits by presenting the
    JobManager's own certificate, and clients keep working with the same CA and client certificate."""
    c = mtls_cluster
    own = os.path.join(c.workdir, 'own-stores')
    os.makedirs(own, exist_ok=True)
    for name in ('keystore.p12', 'truststore.p12'):
        shutil.copy(os.path.join(c.tls_dir, name), os.path.join(own, name))
    jm = c.pid('standalonesession')
    conn = dict(c.connection)
    c.role_vars.update(flink_cluster_rest_ssl_keystore=os.path.join(own, 'keystore.p12'),
                       flink_cluster_rest_ssl_truststore=os.path.join(own, 'truststore.p12'))
    output = c.ensure(verbosity=2, diff=True)[0]
    assert store_password not in output
    assert {'Write the JobManager configuration', 'Extract the certificate and key from the keystore',
            'Show the restart plan', 'Restart the process'} <= changed_tasks(output), changed_tasks(output)
    assert c.pid('standalonesession') not in (None, jm)
    assert c.connection == {}, 'no CA of yours is known to the role'
    identity = os.path.join(c.tls_dir, 'jobmanager-identity.pem')
    assert oct(os.stat(identity).st_mode & 0o777) == '0o600'
    with open(process_conf(c.instance_dir, 'jobmanager')) as f:
        assert 'security.ssl.rest.keystore: %s' % os.path.join(own, 'keystore.p12') in f.read()
    info = ansible.run('flink_cluster_info', dict(conn, url=c.url), env=TLS_ENV)
    assert not info.failed and info['reachable'] and info['taskmanagers'] == 1, info.output
