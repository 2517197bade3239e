"""Every module (flink_job_set too) through a URL with a path prefix (a YARN proxy, a Kubernetes ingress path).

A real nginx (tests/harness/nginx.py) serves the session cluster under ``/flink/`` only:
``location /flink/ { proxy_pass http://<flink>/; }`` strips the prefix and every other path
answers 404 without reaching Flink. The modules get ``url: http://127.0.0.1:<port>/flink/``
or ``.../flink`` (no trailing slash): the module runs alternate between the two. Flink
itself is the referee (queried directly, never through the module's result), and nginx's
access log shows that each request a module sent carried the prefix and was answered by
Flink.
"""

import os
import re
import shutil
import time
import uuid
import zipfile

import pytest
import requests

from tests.harness.nginx import Nginx
from tests.integration.conftest import EXAMPLE_CLASS, live_jobs, local
from tests.integration.test_job_set import by_name
from tests.integration.test_upgrade import restored_path
from tests.integration.test_upgrade_transaction import flink_state

PREFIX = '/flink/'
# The harness's log format for a prefixed proxy: combined, then the upstream and its status.
_LOG_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) .*'
                       r' upstream=(?P<upstream>\S+) upstream_status=(?P<upstream_status>\S+)$')


def fresh_jar(jar, directory):
    """A copy of ``jar`` with one more entry: the same program under a content hash no cluster has seen.

    flink_job then has to upload it (through the prefix), whatever earlier tests left on the cluster.
    """
    copy = os.path.join(str(directory), os.path.basename(jar))
    shutil.copyfile(jar, copy)
    with zipfile.ZipFile(copy, 'a') as z:
        z.writestr('flinkops-test/nonce.txt', uuid.uuid4().hex)
    return copy


def job_args(url, jar, name, **extra):
    args = {'url': url, 'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name],
            'parallelism': 1, 'wait_timeout': 180}
    args.update(extra)
    return args


def flink(cluster, path):
    """GET ``path`` from Flink itself, not through nginx."""
    r = requests.get(cluster.url + path, timeout=10)
    r.raise_for_status()
    return r.json()


def job_state(cluster, jid):
    return flink(cluster, '/jobs/%s' % jid)['state']


def latest_savepoint(cluster, jid, timeout=30):
    """The latest savepoint Flink reports for a job. Its statistics of a job that has just ended lag behind (a
    cache of a few seconds, longer on a loaded machine): poll until one is reported, for up to ``timeout`` s."""
    end = time.monotonic() + timeout
    while True:
        point = (flink(cluster, '/jobs/%s/checkpoints' % jid).get('latest') or {}).get('savepoint') or {}
        if point.get('status') or time.monotonic() >= end:
            return point
        time.sleep(0.5)


class Log(object):
    """The access log lines written since this mark, parsed."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.start = len(proxy.access_log())

    def entries(self):
        text = self.proxy.access_log()[self.start:]
        out = []
        for line in text.splitlines():
            m = _LOG_LINE.search(line)
            assert m, 'unexpected access log line: %r' % line
            out.append(m.groupdict())
        return out

    def check(self, cluster, *expected):
        """Every request went through the prefix to Flink; each (method, path regex) of ``expected`` was sent.

        The paths in ``expected`` are Flink's (without the prefix). Returns the entries.
        """
        entries = self.entries()
        assert entries, 'nothing went through nginx'
        upstream = cluster.url.split('://', 1)[1]
        for e in entries:
            assert e['path'].startswith(PREFIX), e
            # nginx sent it on to Flink (the prefix location), and passed Flink's answer back.
            assert e['upstream'] == upstream and e['upstream_status'] == e['status'], e
        for method, pattern in expected:
            rx = re.compile('^%s%s$' % (re.escape(PREFIX.rstrip('/')), pattern))
            # Answered with success: Flink knows no /flink/... path, so it got the path with the prefix stripped.
            found = [e for e in entries
                     if e['method'] == method and rx.match(e['path'].split('?', 1)[0]) and e['status'][0] == '2']
            assert found, '%s %s%s not in the access log: %s' % (
                method, PREFIX.rstrip('/'), pattern, [(e['method'], e['path'], e['status']) for e in entries])
        return entries


@pytest.fixture(scope='module')
def proxy(cluster, workroot):
    workdir = os.path.join(workroot, 'nginx-prefix-%s' % uuid.uuid4().hex[:8])
    os.makedirs(workdir)
    with Nginx(workdir, cluster.url, prefix=PREFIX) as n:
        yield n
    shutil.rmtree(workdir, ignore_errors=True)


def test_only_the_prefix_leads_to_flink(cluster, proxy):
    log = Log(proxy)
    assert requests.get(proxy.url + '/overview', timeout=10).status_code == 404
    r = requests.get(proxy.prefix_url + 'overview', timeout=10)
    assert r.status_code == 200 and r.json()['taskmanagers'] == flink(cluster, '/overview')['taskmanagers'] >= 1
    (bare, prefixed) = log.entries()
    assert (bare['path'], bare['status'], bare['upstream']) == ('/overview', '404', '-'), bare
    assert (prefixed['path'], prefixed['upstream_status']) == ('/flink/overview', '200'), prefixed


def test_flink_cluster_info(cluster, proxy, ansible):
    log = Log(proxy)
    r = ansible.run('flink_cluster_info', {'url': proxy.prefix_url}, check=True)
    assert not r.failed and not r['changed'], r.output
    overview = flink(cluster, '/overview')
    assert r['reachable'] is True and r['url'] == proxy.prefix_url.rstrip('/')  # .../flink/ and .../flink are one
    assert r['flink_version'] == overview['flink-version']
    assert (r['taskmanagers'], r['slots_total']) == (overview['taskmanagers'], overview['slots-total'])
    log.check(cluster, ('GET', '/overview'))


def test_flink_job_present_info_upgraded_absent(cluster, proxy, ansible, jar, jar_v2, job_name, tmp_path):
    slash, no_slash = proxy.prefix_url, proxy.prefix_url.rstrip('/')

    log = Log(proxy)
    v1 = ansible.run('flink_job', job_args(slash, jar, job_name))
    assert not v1.failed, v1.output
    assert v1['changed'] and v1['action'] == 'submitted', v1.output
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [v1['job_id']]
    assert job_state(cluster, v1['job_id']) == 'RUNNING'
    log.check(cluster, ('GET', '/jobs/overview'), ('POST', '/jars/[^/]+/run'))

    log = Log(proxy)
    info = ansible.run('flink_job_info', {'url': no_slash, 'name': job_name})
    assert not info.failed, info.output
    assert [(j['id'], j['state']) for j in info['jobs']] == [(v1['job_id'], job_state(cluster, v1['job_id']))]
    log.check(cluster, ('GET', '/jobs/overview'))

    log = Log(proxy)
    v2 = ansible.run('flink_job', job_args(no_slash, fresh_jar(jar_v2, tmp_path), job_name, state='upgraded'))
    assert not v2.failed, v2.output
    assert v2['changed'] and v2['action'] == 'upgraded' and v2['previous_job_id'] == v1['job_id'], v2.output
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [v2['job_id']] != [v1['job_id']]
    assert flink_state(cluster.url, v1['job_id']) == 'FINISHED'  # stopped with a savepoint, not cancelled
    assert latest_savepoint(cluster, v1['job_id']).get('external_path') == v2['savepoint']
    assert restored_path(cluster.url, v2['job_id']) == (v2['savepoint'], True)
    entries = log.check(cluster, ('POST', '/jars/upload'), ('POST', '/jars/[^/]+/plan'),
                        ('POST', '/jobs/%s/stop' % v1['job_id']), ('POST', '/jars/[^/]+/run'),
                        ('DELETE', '/jars/[^/]+'))
    # The previous version's jar was deleted through the prefix: Flink no longer lists it.
    deleted = [e['path'].rsplit('/', 1)[1] for e in entries if e['method'] == 'DELETE']
    listed = [f['id'] for f in flink(cluster, '/jars')['files']]
    assert deleted and not set(deleted) & set(listed), (deleted, listed)

    log = Log(proxy)
    target = 'file://%s' % (tmp_path / 'savepoints')
    gone = ansible.run('flink_job', {'url': slash, 'name': job_name, 'state': 'absent', 'savepoint': True,
                                     'savepoint_dir': target})
    assert not gone.failed, gone.output
    assert gone['changed'] and gone['action'] == 'stopped' and gone['job_ids'] == [v2['job_id']], gone.output
    assert live_jobs(cluster.url, job_name) == []
    assert flink_state(cluster.url, v2['job_id']) == 'FINISHED'
    taken = latest_savepoint(cluster, v2['job_id'])
    assert taken.get('status') == 'COMPLETED' and taken.get('external_path') == gone['savepoint'], taken
    assert str(tmp_path / 'savepoints') in gone['savepoint'] and os.path.isdir(local(gone['savepoint']))
    log.check(cluster, ('POST', '/jobs/%s/stop' % v2['job_id']))


def test_flink_job_set_present_upgraded_absent(cluster, proxy, ansible, jar, jar_v2, job_name, tmp_path):
    """flink_job_set through the prefix: two jobs submitted, one upgraded through a savepoint, both stopped."""
    slash, no_slash = proxy.prefix_url, proxy.prefix_url.rstrip('/')
    a, b = job_name + '-a', job_name + '-b'
    first = fresh_jar(jar, tmp_path)

    def one(name, jar_path, **extra):
        job = job_args(None, jar_path, name, **extra)
        del job['url'], job['wait_timeout']  # the set's own
        return job

    def declared(url, jobs):
        return {'url': url, 'jobs': jobs, 'wait_timeout': 180}

    log = Log(proxy)
    up = ansible.run('flink_job_set', declared(slash, [one(a, first), one(b, first)]))
    assert not up.failed, up.output
    started = by_name(up)
    assert up['changed'] and [started[n]['action'] for n in (a, b)] == ['submitted', 'submitted'], up.output
    for n in (a, b):
        assert [j['jid'] for j in live_jobs(cluster.url, n)] == [started[n]['job_id']]
        assert job_state(cluster, started[n]['job_id']) == 'RUNNING'
    log.check(cluster, ('GET', '/jobs/overview'), ('POST', '/jars/upload'), ('POST', '/jars/[^/]+/run'))

    log = Log(proxy)
    v2 = ansible.run('flink_job_set', declared(no_slash, [one(a, first),
                                                          one(b, fresh_jar(jar_v2, tmp_path), state='upgraded')]))
    assert not v2.failed, v2.output
    after = by_name(v2)
    assert v2['changed'] and (after[a]['action'], after[b]['action']) == ('none', 'upgraded'), v2.output
    assert [j['jid'] for j in live_jobs(cluster.url, a)] == [started[a]['job_id']]
    assert [j['jid'] for j in live_jobs(cluster.url, b)] == [after[b]['job_id']] != [started[b]['job_id']]
    assert flink_state(cluster.url, started[b]['job_id']) == 'FINISHED'  # stopped with a savepoint
    assert restored_path(cluster.url, after[b]['job_id']) == (after[b]['savepoint'], True)
    log.check(cluster, ('POST', '/jobs/%s/stop' % started[b]['job_id']), ('POST', '/jars/[^/]+/run'))

    log = Log(proxy)
    target = 'file://%s' % (tmp_path / 'savepoints')
    gone = ansible.run('flink_job_set', declared(slash, [
        {'name': n, 'state': 'absent', 'savepoint': True, 'savepoint_dir': target} for n in (a, b)]))
    assert not gone.failed, gone.output
    ended = by_name(gone)
    assert gone['changed'] and [ended[n]['action'] for n in (a, b)] == ['stopped', 'stopped'], gone.output
    for n, jid in ((a, started[a]['job_id']), (b, after[b]['job_id'])):
        assert live_jobs(cluster.url, n) == [] and flink_state(cluster.url, jid) == 'FINISHED'
        taken = latest_savepoint(cluster, jid)
        assert taken.get('status') == 'COMPLETED' and taken.get('external_path') == ended[n]['savepoint'], taken
    log.check(cluster, ('POST', '/jobs/%s/stop' % started[a]['job_id']),
              ('POST', '/jobs/%s/stop' % after[b]['job_id']))


def dispose_directly(cluster, path, timeout=60):
    """Ask Flink itself (not through nginx) to dispose ``path``; return its failure cause (None: disposed)."""
    trigger = requests.post(cluster.url + '/savepoint-disposal', json={'savepoint-path': path},
                            timeout=10).json()['request-id']
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = flink(cluster, '/savepoint-disposal/%s' % trigger)
        if status['status']['id'] == 'COMPLETED':
            return ((status.get('operation') or {}).get('failure-cause') or {}).get('stack-trace')
        time.sleep(0.3)
    raise AssertionError('Flink did not finish disposing %s' % path)


def test_flink_savepoint_take_and_dispose(cluster, proxy, ansible, jar, job_name, tmp_path):
    url = proxy.prefix_url.rstrip('/')
    job = ansible.run('flink_job', job_args(proxy.prefix_url, jar, job_name))
    assert job['changed'], job.output

    log = Log(proxy)
    taken = ansible.run('flink_savepoint', {'url': url, 'name': job_name, 'savepoint_dir': 'file://%s' % tmp_path})
    assert not taken.failed and taken['changed'] and taken['job_id'] == job['job_id'], taken.output
    point = latest_savepoint(cluster, job['job_id'])
    assert point.get('status') == 'COMPLETED' and point.get('external_path') == taken['savepoint'], point
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [job['job_id']], 'the job must keep running'
    assert os.path.isdir(local(taken['savepoint']))
    log.check(cluster, ('POST', '/jobs/%s/savepoints' % job['job_id']),
              ('GET', '/jobs/%s/savepoints/[^/]+' % job['job_id']))

    log = Log(proxy)
    gone = ansible.run('flink_savepoint', {'url': proxy.prefix_url, 'state': 'absent', 'path': taken['savepoint']})
    assert not gone.failed and gone['changed'], gone.output
    log.check(cluster, ('POST', '/savepoint-disposal'), ('GET', '/savepoint-disposal/[^/]+'))
    assert not os.path.exists(local(taken['savepoint']))
    # Flink itself no longer finds it.
    cause = dispose_directly(cluster, taken['savepoint'])
    assert cause and ('FileNotFoundException' in cause or 'Cannot find' in cause), cause


def test_flink_job_handover_suspended_then_resumed(cluster, proxy, ansible, jar, job_name, tmp_path):
    job = ansible.run('flink_job', job_args(proxy.prefix_url, jar, job_name))
    assert job['changed'], job.output
    handover = {'handover_file': str(tmp_path / 'handover.json'), 'wait_timeout': 180}

    log = Log(proxy)
    out = ansible.run('flink_job_handover', dict(
        handover, url=proxy.prefix_url, state='suspended', jar_dirs=[os.path.join(cluster.workdir, 'web')]))
    assert not out.failed and out['changed'], out.output
    assert [(j['job_id'], j['action']) for j in out['jobs']] == [(job['job_id'], 'stopped')], out['jobs']
    savepoint = out['jobs'][0]['savepoint']
    assert live_jobs(cluster.url) == []
    assert flink_state(cluster.url, job['job_id']) == 'FINISHED'
    assert latest_savepoint(cluster, job['job_id']).get('external_path') == savepoint
    log.check(cluster, ('GET', '/jobs/overview'), ('POST', '/jobs/%s/stop' % job['job_id']))

    log = Log(proxy)
    back = ansible.run('flink_job_handover', dict(handover, url=proxy.prefix_url.rstrip('/'), state='resumed',
                                                  healthy_for=0))
    assert not back.failed and back['changed'], back.output
    (resumed,) = back['jobs']
    assert resumed['action'] == 'resumed' and resumed['previous_job_id'] == job['job_id'], resumed
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [resumed['job_id']] != [job['job_id']]
    assert restored_path(cluster.url, resumed['job_id']) == (savepoint, True)
    assert not os.path.exists(handover['handover_file'])
    log.check(cluster, ('POST', '/jars/[^/]+/run'))

    log = Log(proxy)
    settled = ansible.run('flink_job_handover', {'url': proxy.prefix_url, 'state': 'settled',
                                                 'job_ids': [resumed['job_id']], 'taskmanagers': 1})
    assert not settled.failed and not settled['changed'], settled.output
    assert settled['taskmanagers'] == flink(cluster, '/overview')['taskmanagers']
    assert job_state(cluster, resumed['job_id']) == 'RUNNING'
    log.check(cluster, ('GET', '/overview'), ('GET', '/jobs/overview'))


def test_url_without_the_prefix_fails_and_reaches_nothing(cluster, proxy, ansible, jar, job_name):
    log = Log(proxy)
    r = ansible.run('flink_job', job_args(proxy.url, jar, job_name))
    assert r.failed, r.output
    assert 'HTTP 404' in r['msg'] and proxy.url in r['msg'], r['msg']
    assert 'Traceback' not in r.output and 'MODULE FAILURE' not in r.output, r.output
    assert [j for j in flink(cluster, '/jobs/overview')['jobs'] if j['name'] == job_name] == []
    entries = log.entries()
    assert entries and all(e['upstream'] == '-' and e['status'] == '404' for e in entries), entries
