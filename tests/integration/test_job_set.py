"""flink_job_set and the flink_jobs role on real Flink: sets of jobs, pruning, concurrent upgrades, failover.

Flink's REST API is the referee: a SetWatcher polls ``/jobs/overview`` for the whole
run and counts the live instances of every name; restores are read from each job's
checkpoint statistics, stops from the job list and the savepoint directories.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from tests.harness import owned
from tests.harness.cluster import FlinkCluster
from tests.harness.faultproxy import FaultProxy
from tests.integration.ansible_play import ansible_env, ensure_collection_link
from tests.integration.conftest import EXAMPLE_CLASS, TERMINAL, free_port_block, local
from tests.integration.test_ha_failover import current_leader, kill_at, revive_dead_jobmanagers
from tests.integration.test_upgrade import recorded_args, restored_path

# Jobs of a set here pause 500 ms per record, so that 50 of them stay cheap on a 2-core machine.
SLOW = ['--sleep-ms', '500']


def item(jar, name, *extra, **options):
    job = {'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name] + SLOW + list(extra),
           'healthy_for': 0}
    job.update(options)
    return job


def job_set(url, jobs, **options):
    args = {'url': url, 'jobs': jobs, 'wait_timeout': 240}
    args.update(options)
    return args


def by_name(result):
    return dict((j['name'], j) for j in result['jobs'])


def live_by_name(url):
    out = {}
    for j in requests.get(url + '/jobs/overview', timeout=10).json()['jobs']:
        if j['state'] not in TERMINAL:
            out.setdefault(j['name'], []).append(j['jid'])
    return out


def job_states(url):
    return dict((j['jid'], j['state']) for j in requests.get(url + '/jobs/overview', timeout=10).json()['jobs'])


class SetWatcher(object):
    """Polls the job list in the background; remembers the most live instances each name ever had."""

    def __init__(self, url, interval=0.25):
        self.url, self.interval = url, interval
        self.max_live = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                for name, ids in live_by_name(self.url).items():
                    self.max_live[name] = max(self.max_live.get(name, 0), len(ids))
                self.samples += 1
            except (requests.RequestException, ValueError, KeyError):
                pass
            self._stop.wait(self.interval)

    def doubled(self):
        return dict((n, c) for n, c in self.max_live.items() if c > 1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope='module')
def big_cluster(flink_version, workroot):
    """One TaskManager with 64 slots: room for 50 jobs of a set, and more.

    Deploying 50 jobs at once keeps a 2-core machine busy for a while: the heartbeats get Flink's default
    timeout (50 s) instead of the suite's short one, so a TaskManager busy deploying is not declared dead.
    """
    port = free_port_block(18100, 18900, 10)
    c = FlinkCluster(flink_version, os.path.join(workroot, 'sets-%d' % port), rest_port=port, slots=64,
                     extra_config={'taskmanager.memory.process.size': '3g', 'jobmanager.memory.process.size': '1536m',
                                   'heartbeat.interval': 10000, 'heartbeat.timeout': 50000})
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def names():
    token = uuid.uuid4().hex[:6]
    return lambda prefix, n: ['set-%s-%s-%02d' % (token, prefix, i) for i in range(n)]


def run_role(workdir, role_vars, check=False, url_override=None):
    """The flink_jobs role in a one-host play; returns (rc, output, flink_jobs_results)."""
    ensure_collection_link()
    os.makedirs(workdir, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    out = os.path.join(workdir, 'role-result-%s.json' % token)
    play = [{'hosts': 'localhost', 'gather_facts': False,
             'vars': {'ansible_python_interpreter': '{{ ansible_playbook_python }}'},
             'roles': [{'role': 'flinkops.flink.flink_jobs', 'vars': role_vars}],
             'post_tasks': [{'name': 'save', 'ansible.builtin.copy': {
                 'content': '{{ flink_jobs_results | to_json }}', 'dest': out}, 'check_mode': False, 'diff': False}]}]
    path = os.path.join(workdir, 'role-play-%s.json' % token)
    with open(path, 'w') as f:
        json.dump(play, f)
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', path]
    if check:
        cmd += ['--check', '--diff']
    proc = owned.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ansible_env(), cwd=workdir,
                     timeout=900)
    output = proc.stdout.decode('utf-8', 'replace')
    result = None
    if os.path.exists(out):
        with open(out) as f:
            result = json.load(f)
    return proc.returncode, output, result


def test_fifty_jobs_by_the_role_then_a_noop_run_reads_the_job_list_once(big_cluster, jar, names, workroot):
    url = big_cluster.url
    fifty = names('fifty', 50)
    role_vars = {'flink_jobs_url': url, 'flink_jobs_scope': 'fifty',
                 'flink_jobs_list': [item(jar, n) for n in fifty], 'flink_jobs_defaults': {'healthy_for': 0},
                 'flink_jobs_max_parallel': 5}
    workdir = os.path.join(workroot, 'sets')
    try:
        with SetWatcher(url) as w:
            rc, output, first = run_role(workdir, role_vars)
        assert rc == 0, output[-4000:]
        assert first['changed'] and len(first['jobs']) == 50
        live = live_by_name(url)
        assert sorted(n for n in live if n in fifty) == fifty
        assert all(len(live[n]) == 1 for n in fifty) and w.doubled() == {}
        assert sorted(live[n][0] for n in fifty) == sorted(j['job_id'] for j in first['jobs'])

        with FaultProxy(url) as proxy:
            rc, output, again = run_role(workdir, dict(role_vars, flink_jobs_url=proxy.url))
            paths = [path.split('?')[0] for _method, path, _fault, _status in proxy.log]
        assert rc == 0, output[-4000:]
        assert not again['changed'] and [j['action'] for j in again['jobs']] == ['none'] * 50
        # One module run: the Flink version, one job list, one record per live job of the set; nothing else.
        assert paths.count('/jobs/overview') == 1 and paths.count('/config') == 1, paths
        records = [p for p in paths if p.endswith('/config') and p.startswith('/jobs/')]
        assert sorted(records) == sorted('/jobs/%s/config' % live[n][0] for n in fifty)
        assert len(paths) == 2 + 50, paths
        # Kept-alive connections serve the whole set: one per thread (max_parallel 5), not one per job.
        assert proxy.connections <= 5, proxy.connections
    finally:
        big_cluster.cancel_all()


def start_by_hand(url, jar, name):
    with open(jar, 'rb') as f:
        up = requests.post(url + '/jars/upload', files={'jarfile': ('by-hand.jar', f)}, timeout=60).json()
    jar_id = up['filename'].rsplit('/', 1)[-1]
    body = {'entryClass': EXAMPLE_CLASS, 'programArgsList': ['--job-name', name] + SLOW}
    return requests.post(url + '/jars/%s/run' % jar_id, timeout=120, json=body).json()['jobid']


def test_prune_stops_exactly_the_dropped_jobs_of_the_scope(big_cluster, ansible, jar, names):
    url = big_cluster.url
    team = names('team', 4)
    other = names('other', 1)
    plain = names('plain', 1)
    try:
        assert not ansible.run('flink_job_set', job_set(url, [item(jar, n) for n in team], scope='team')).failed
        assert not ansible.run('flink_job_set', job_set(url, [item(jar, n) for n in other], scope='other')).failed
        assert not ansible.run('flink_job', dict(item(jar, plain[0]), url=url)).failed       # no scope
        by_hand = start_by_hand(url, jar, names('hand', 1)[0])
        kept = list(team[:2])
        dropped = team[2:]
        declared = job_set(url, [item(jar, n) for n in kept], scope='team', prune=True)
        before = job_states(url)

        check = ansible.run('flink_job_set', declared, check=True)
        assert not check.failed, check.output
        assert check['changed'] and sorted(check['pruned']) == sorted(dropped)
        assert job_states(url) == before, 'check mode changed the cluster'

        real = ansible.run('flink_job_set', declared)
        assert not real.failed, real.output
        assert sorted(real['pruned']) == sorted(dropped)
        results = by_name(real)
        states = job_states(url)
        for name in dropped:
            r = results[name]
            assert r['pruned'] and r['action'] == 'stopped', r
            assert states[r['job_id']] == 'FINISHED'                         # stopped with a savepoint
            assert os.path.exists(os.path.join(local(r['savepoint']), '_metadata')), r['savepoint']
        live = live_by_name(url)
        for name in kept + other + plain:
            assert len(live.get(name, [])) == 1, (name, live)
        assert states[by_hand] == 'RUNNING'
        assert sorted(n for n in results if results[n]['pruned']) == sorted(dropped)

        again = ansible.run('flink_job_set', declared)
        assert not again.failed and not again['changed'] and again['pruned'] == [], again.output
    finally:
        big_cluster.cancel_all()


def test_ten_upgrades_in_one_run_and_a_crash_loop_rolls_back_alone(big_cluster, ansible, jar, jar_v2, names):
    url = big_cluster.url
    ten = names('ten', 10)
    crash = ten[3]
    try:
        v1 = ansible.run('flink_job_set', job_set(url, [item(jar, n) for n in ten], scope='ten',
                                                  max_parallel=10))
        assert not v1.failed, v1.output
        first = by_name(v1)
        time.sleep(4)   # a checkpoint or two: each upgrade must carry its own job's state
        v2 = [item(jar_v2, n, '--fail-after', '3', healthy_for=8) if n == crash else item(jar_v2, n, healthy_for=8)
              for n in ten]
        with SetWatcher(url) as w:
            r = ansible.run('flink_job_set', job_set(url, [dict(j, state='upgraded') for j in v2], scope='ten',
                                                     max_parallel=5, wait_timeout=300))
        assert r.failed, r.output
        assert '1 of 10 jobs of the set failed (%s)' % crash in r['msg'], r['msg']
        results = by_name(r)
        live = live_by_name(url)
        assert w.doubled() == {}, w.doubled()
        for name in ten:
            res = results[name]
            assert live.get(name) == [res['job_id']], (name, live.get(name), res)
            path, is_savepoint = restored_path(big_cluster.url, res['job_id'])
            assert path == res['savepoint'] and is_savepoint, (name, path, res['savepoint'])
            # Flink names a savepoint after the job it was taken from: each job's own.
            assert os.path.basename(res['savepoint']).startswith('savepoint-%s' % first[name]['job_id'][:6])
            if name == crash:
                assert res['failed'] and res['action'] == 'rolled_back', res
                assert recorded_args(big_cluster, res['job_id']) == item(jar, name)['args']
            else:
                assert res['action'] == 'upgraded' and not res.get('failed'), res
                assert res['previous_job_id'] == first[name]['job_id']
        assert len(set(results[n]['savepoint'] for n in ten)) == 10
    finally:
        big_cluster.cancel_all()


def test_leader_killed_during_a_set_run_gives_no_duplicate_and_loses_nothing(ha_cluster, ansible, jar, jar_v2, names):
    """SIGKILL the leader right after it took the stop-with-savepoint of one job's upgrade, while the same set run
    also checks a running job and submits a new one; the dead JobManager stays first in url."""
    urls = ha_cluster.urls
    up, same, new = names('ha', 3)
    try:
        first = ansible.run('flink_job_set', job_set(urls, [item(jar, up), item(jar, same)], scope='ha'))
        assert not first.failed, first.output
        before = by_name(first)
        time.sleep(4)   # a first checkpoint, so a recovered job has state to come back with
        leader = current_leader(ha_cluster)
        standby = 1 - leader
        killed = []
        jobs = [dict(item(jar_v2, up), state='upgraded'), item(jar, same), item(jar, new)]
        with FaultProxy(urls[leader]) as proxy, SetWatcher(urls[standby]) as w:
            proxy.add('*', '^/jobs/[^/]+/stop', 'hook', times=1,
                      after=lambda status, body: kill_at(ha_cluster, leader, killed)())
            r = ansible.run('flink_job_set', job_set([proxy.url, urls[standby]], jobs, scope='ha', max_parallel=3,
                                                     wait_timeout=300))
        assert killed, 'the leader was never killed\n%s' % r.output
        assert not r.failed, r.output
        assert w.doubled() == {}, w.doubled()
        live = live_by_name(urls[standby])
        results = by_name(r)
        assert all(live.get(n) == [results[n]['job_id']] for n in (up, same, new)), (live, results)
        # The upgrade went through from its own savepoint; the running job was recovered, not doubled or lost.
        assert results[up]['action'] == 'upgraded' and results[up]['previous_job_id'] == before[up]['job_id']
        path, is_savepoint = restored_path(urls[standby], results[up]['job_id'])
        assert path == results[up]['savepoint'] and is_savepoint
        assert results[same]['job_id'] == before[same]['job_id']
        assert results[new]['action'] == 'submitted'
    finally:
        revive_dead_jobmanagers(ha_cluster)
        ha_cluster.cancel_all()
