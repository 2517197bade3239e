"""The flink_cluster role on a cluster that carries jobs: configuration changes keep the jobs' state.

Every case drives the roles through real ansible-playbook on loopback hosts and judges
by what Flink and the processes show, never by the role's own output:

* single node, no HA: a config change restarts the JobManager and the TaskManager;
  the role takes the job out with a savepoint first and starts it again from it.
  Flink's checkpoint statistics show the restore from that savepoint, the example
  job's counter goes on from where it was, and a watcher never sees two instances.
  ``--check --diff`` before it names the processes and the job and changes nothing.
* two TaskManagers: a TaskManager-only change restarts them one at a time.
* HA with two JobManagers: standby first, then the leader; Flink recovers the job,
  never lost, never doubled.
* preflight: HA on two JobManager hosts with local storage is refused.

Role-level cases: they run with the first Flink version of the suite only (Makefile).
"""

import json
import os
import threading
import time

import pytest
import requests

from tests.harness.roles import RolePlay, common_vars, link_flink_home, process_conf, read_pid, stop_instance
from tests.integration.conftest import EXAMPLE_CLASS, TERMINAL, Watcher, free_port_block

QUICK = {
    'heartbeat.interval': 2000,
    'heartbeat.timeout': 10000,
    'execution.checkpointing.interval': '2s',
}


def live(url, name=None):
    jobs = requests.get(url + '/jobs/overview', timeout=10).json()['jobs']
    return [j for j in jobs if j['state'] not in TERMINAL and (name is None or j['name'] == name)]


def wait_until(predicate, timeout, what, interval=0.5):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = predicate()
        except (requests.RequestException, ValueError, KeyError) as exc:
            last = exc
        if last:
            return last
        time.sleep(interval)
    raise AssertionError('%s: not within %s s (last: %r)' % (what, timeout, last))


def counter(url, jid):
    """The example job's flinkopsCount gauge (highest count reached), or None while Flink has no value yet."""
    job = requests.get(url + '/jobs/%s' % jid, timeout=10).json()
    for vertex in job.get('vertices', []):
        base = url + '/jobs/%s/vertices/%s/subtasks/metrics' % (jid, vertex['id'])
        names = [m['id'] for m in requests.get(base, timeout=10).json() if m['id'].endswith('.flinkopsCount')]
        if names:
            values = requests.get(base, params={'get': names[0], 'agg': 'max'}, timeout=10).json()
            if values and values[0].get('max') is not None:
                return int(float(values[0]['max']))
    return None


def restored_from(url, jid):
    restored = ((requests.get(url + '/jobs/%s/checkpoints' % jid, timeout=10).json().get('latest') or {})
                .get('restored') or {})
    return restored


class PidWatch(object):
    """Samples pid files of processes every 0.1 s: the fewest alive at once, and every pid each one had."""

    def __init__(self, targets):
        self.targets = targets      # {label: (instance_dir, daemon)}
        self.min_alive = len(targets)
        self.pids = dict((k, []) for k in targets)
        self.first_seen = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            alive = 0
            for label, (instance, daemon) in self.targets.items():
                pid = read_pid(instance, daemon)
                if pid:
                    alive += 1
                    if pid not in self.pids[label]:
                        self.pids[label].append(pid)
                        self.first_seen[(label, pid)] = time.monotonic()
            self.min_alive = min(self.min_alive, alive)
            time.sleep(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def job_item(jar, name):
    return {'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'parallelism': 1,
            'args': ['--job-name', name, '--sleep-ms', '5']}


# -- single node, no HA ---------------------------------------------------------------------


@pytest.fixture(scope='module')
def single(flink_version, workroot, jar):
    port = free_port_block(19600, 19700, 10)
    work = os.path.join(workroot, 'restart-single-%d' % port)
    install = os.path.join(work, 'flink')
    link_flink_home(flink_version, install)
    name = 'restart-single-%d' % port
    host = dict(common_vars(flink_version), flink_cluster_install_dir=install, flink_cluster_rest_port=port,
                flink_cluster_rpc_port=port + 1, flink_cluster_config=dict(QUICK, **{'flinkops.test.round': 1}))
    play = RolePlay(work, {'all': {'hosts': {'single': host}}}, jobs=[job_item(jar, name)],
                    jobs_url='http://127.0.0.1:%d' % port)
    play.name = name
    play.url = 'http://127.0.0.1:%d' % port
    play.instance = os.path.join(install, 'instance')
    try:
        play.ensure()
        yield play
    finally:
        play.run(extra_vars={'flink_cluster_state': 'absent'})
        stop_instance(play.instance)


def test_check_diff_names_restarts_and_jobs_and_changes_nothing(single):
    [job] = live(single.url, single.name)
    jm, tm = read_pid(single.instance, 'standalonesession'), read_pid(single.instance, 'taskexecutor')
    conf = process_conf(single.instance, 'jobmanager')
    with open(conf) as f:
        before = f.read()
    rc, output, stats = single.run(check=True, diff=True,
                                   host_vars={'single': {'flink_cluster_config': dict(QUICK, **{
                                       'flinkops.test.round': 2})}})
    assert rc == 0, output[-6000:]
    assert 'jobmanager on single' in output and 'taskmanager on single' in output, output[-6000:]
    assert 'taken_out_with_savepoint' in output and single.name in output, output[-6000:]
    assert '+flinkops.test.round: 2' in output, output[-6000:]
    # Nothing moved: same processes, same job, same file, no handover.
    assert read_pid(single.instance, 'standalonesession') == jm and read_pid(single.instance, 'taskexecutor') == tm
    assert [j['jid'] for j in live(single.url, single.name)] == [job['jid']]
    with open(conf) as f:
        assert f.read() == before
    assert not os.path.exists(os.path.join(single.instance, 'handover.json'))
    assert not os.path.exists(os.path.join(single.instance, 'pid', 'jobmanager.restart'))


def test_config_change_restarts_and_the_job_keeps_its_state(single):
    [job] = live(single.url, single.name)
    reached = wait_until(lambda: (counter(single.url, job['jid']) or 0) >= 200, 90, 'the counter to reach 200')
    jm = read_pid(single.instance, 'standalonesession')
    watcher = Watcher(single.url, single.name)
    with watcher:
        rc, output, stats = single.run(host_vars={'single': {'flink_cluster_config': dict(QUICK, **{
            'flinkops.test.round': 2})}})
    assert rc == 0, output[-8000:]
    assert read_pid(single.instance, 'standalonesession') not in (None, jm), 'the JobManager did not restart'
    [after] = live(single.url, single.name)
    # Restored from a savepoint the role took (in the cluster's savepoint directory) ...
    restored = restored_from(single.url, after['jid'])
    assert restored.get('is_savepoint') and 'savepoint' in restored.get('external_path', ''), restored
    assert os.path.join(single.instance, 'savepoints') in restored['external_path'], restored
    # ... and the count went on from where it was.
    resumed = wait_until(lambda: counter(single.url, after['jid']), 60, 'the counter of the restored job')
    assert resumed >= reached, (reached, resumed)
    assert watcher.max_live == 1 and watcher.samples > 0
    assert not os.path.exists(os.path.join(single.instance, 'handover.json'))
    # Run again: nothing to do.
    output, stats = single.ensure(host_vars={'single': {'flink_cluster_config': dict(QUICK, **{
        'flinkops.test.round': 2})}})
    assert stats['single']['changed'] == 0, output[-6000:]
    assert [j['jid'] for j in live(single.url, single.name)] == [after['jid']]


def test_a_job_started_by_hand_stops_the_restart_before_anything_moves(single, jar):
    """A job without a record cannot be started again: the run fails first, naming it, unless told to cancel."""
    with open(jar, 'rb') as f:
        upload = requests.post(single.url + '/jars/upload',
                               files={'jarfile': ('hand.jar', f, 'application/x-java-archive')}, timeout=60)
    jar_id = upload.json()['filename'].rsplit('/', 1)[-1]
    hand = 'by-hand-%s' % single.name
    run = requests.post(single.url + '/jars/%s/run' % jar_id, json={
        'entryClass': EXAMPLE_CLASS, 'programArgsList': ['--job-name', hand, '--sleep-ms', '5']}, timeout=120)
    assert run.status_code == 200, run.text
    wait_until(lambda: live(single.url, hand), 60, 'the hand-started job')
    jm = read_pid(single.instance, 'standalonesession')
    [mine] = live(single.url, single.name)
    new_conf = {'single': {'flink_cluster_config': dict(QUICK, **{'flinkops.test.round': 3})}}
    rc, output, stats = single.run(host_vars=new_conf)
    assert rc != 0
    assert hand in output and 'no flinkops record' in output, output[-6000:]
    assert read_pid(single.instance, 'standalonesession') == jm
    assert [j['jid'] for j in live(single.url, single.name)] == [mine['jid']] and live(single.url, hand)
    # Told to cancel such jobs, the restart goes on: the hand-started job is cancelled, ours carried over.
    output, stats = single.ensure(host_vars={'single': dict(new_conf['single'],
                                                            flink_cluster_restart_unrecorded_jobs='cancel')})
    assert read_pid(single.instance, 'standalonesession') != jm
    assert not live(single.url, hand)
    [after] = live(single.url, single.name)
    assert restored_from(single.url, after['jid']).get('is_savepoint')


def test_stopping_the_cluster_takes_the_job_out_and_starting_brings_it_back(single):
    """flink_cluster_state=stopped (make stop) without HA: savepoint first; the next started run resumes from it."""
    [job] = live(single.url, single.name)
    reached = wait_until(lambda: (counter(single.url, job['jid']) or 0) >= 50, 90, 'the counter to reach 50')
    conf = {'single': {'flink_cluster_config': dict(QUICK, **{'flinkops.test.round': 3})}}
    single.ensure(host_vars=conf, extra_vars={'flink_cluster_state': 'stopped'})
    assert read_pid(single.instance, 'standalonesession') is None and read_pid(single.instance, 'taskexecutor') is None
    with open(os.path.join(single.instance, 'handover.json')) as f:
        assert [e['name'] for e in json.load(f)['jobs']] == [single.name]
    output, stats = single.ensure(host_vars=conf)
    [after] = live(single.url, single.name)
    restored = restored_from(single.url, after['jid'])
    assert restored.get('is_savepoint') and os.path.join(single.instance, 'savepoints') in restored['external_path']
    resumed = wait_until(lambda: counter(single.url, after['jid']), 60, 'the counter of the resumed job')
    assert resumed >= reached, (reached, resumed)
    assert not os.path.exists(os.path.join(single.instance, 'handover.json'))


# -- two TaskManagers -------------------------------------------------------------------------


def test_taskmanager_change_restarts_taskmanagers_one_at_a_time(flink_version, workroot, jar):
    port = free_port_block(19700, 19800, 10)
    work = os.path.join(workroot, 'restart-tms-%d' % port)
    hosts = {}
    for host in ('jm', 'tm1', 'tm2'):
        install = os.path.join(work, host)
        link_flink_home(flink_version, install)
        hosts[host] = dict(flink_cluster_install_dir=install)
    common = dict(common_vars(flink_version), flink_cluster_rest_port=port, flink_cluster_rpc_port=port + 1,
                  flink_cluster_config=QUICK)
    inventory = {'all': {'vars': common, 'children': {
        'flink_jobmanager': {'hosts': {'jm': hosts['jm']}},
        'flink_taskmanager': {'hosts': {'tm1': hosts['tm1'], 'tm2': hosts['tm2']}}}}}
    url = 'http://127.0.0.1:%d' % port
    name = 'restart-tms-%d' % port
    play = RolePlay(work, inventory, jobs=[job_item(jar, name)], jobs_url=url)
    instances = dict((h, os.path.join(work, h, 'instance')) for h in hosts)
    try:
        play.ensure()
        [job] = live(url, name)
        jm = read_pid(instances['jm'], 'standalonesession')
        targets = {'tm1': (instances['tm1'], 'taskexecutor'), 'tm2': (instances['tm2'], 'taskexecutor')}
        watcher = Watcher(url, name)
        pids = PidWatch(targets)
        with pids, watcher:
            output, stats = play.ensure(extra_vars={'flink_cluster_taskmanager_memory': '1300m'})
        assert 'taskmanager on tm1' in output and 'taskmanager on tm2' in output, output[-6000:]
        assert 'jobmanager on jm' not in output
        # Both TaskManagers restarted, never both down at once; the JobManager did not restart.
        assert len(pids.pids['tm1']) == 2 and len(pids.pids['tm2']) == 2, pids.pids
        assert pids.min_alive >= 1, pids.pids
        assert read_pid(instances['jm'], 'standalonesession') == jm
        # The job ran on (Flink recovered it from its checkpoint), one instance, the same job.
        assert [j['jid'] for j in live(url, name)] == [job['jid']]
        assert watcher.max_live == 1
        overview = requests.get(url + '/overview', timeout=10).json()
        assert overview['taskmanagers'] == 2 and overview['slots-total'] == 4
    finally:
        play.run(extra_vars={'flink_cluster_state': 'absent'})
        for instance in instances.values():
            stop_instance(instance)


# -- HA: two JobManagers ------------------------------------------------------------------------


def ha_inventory(flink_version, work, port, shared=True):
    hosts = {}
    for host in ('jm1', 'jm2', 'tm1'):
        install = os.path.join(work, host)
        link_flink_home(flink_version, install)
        hosts[host] = {'flink_cluster_install_dir': install}
    hosts['jm1'].update(flink_cluster_rest_port=port, flink_cluster_rpc_port=port + 2)
    hosts['jm2'].update(flink_cluster_rest_port=port + 1, flink_cluster_rpc_port=port + 3)
    common = dict(common_vars(flink_version), flink_cluster_ha='zookeeper', flink_cluster_zookeeper_port=port + 4,
                  flink_cluster_ha_cluster_id='/restart-%d' % port, flink_cluster_taskmanager_slots=2,
                  flink_cluster_config=dict(QUICK, **{'high-availability.zookeeper.client.session-timeout': 6000}))
    if shared:
        common.update(flink_cluster_storage_shared=True,
                      flink_cluster_ha_storage_dir='file://%s/shared/ha' % work,
                      flink_cluster_savepoints_dir='file://%s/shared/savepoints' % work,
                      flink_cluster_checkpoints_dir='file://%s/shared/checkpoints' % work)
    return {'all': {'vars': common, 'children': {
        'flink_jobmanager': {'hosts': {'jm1': hosts['jm1'], 'jm2': hosts['jm2']}},
        'flink_taskmanager': {'hosts': {'tm1': hosts['tm1']}}}}}


def test_ha_change_restarts_jobmanagers_standby_first_and_flink_keeps_the_job(flink_version, workroot, jar):
    port = free_port_block(19800, 19900, 10)
    work = os.path.join(workroot, 'restart-ha-%d' % port)
    inventory = ha_inventory(flink_version, work, port)
    urls = ['http://127.0.0.1:%d' % port, 'http://127.0.0.1:%d' % (port + 1)]
    name = 'restart-ha-%d' % port
    play = RolePlay(work, inventory, jobs=[job_item(jar, name)], jobs_url=urls)
    instances = dict((h, os.path.join(work, h, 'instance')) for h in ('jm1', 'jm2', 'tm1'))
    try:
        play.ensure()
        [job] = wait_until(lambda: [j for j in live(urls[0], name) if j['state'] == 'RUNNING'], 60, 'the job')
        reached = wait_until(lambda: (counter(urls[0], job['jid']) or 0) >= 100, 90, 'the counter to reach 100')
        # The leader is the JobManager whose REST endpoint was granted leadership last.
        leader = None
        for host in ('jm1', 'jm2'):
            log_dir = os.path.join(instances[host], 'log')
            for f in os.listdir(log_dir):
                if f.endswith('.log') and 'standalonesession' in f:
                    with open(os.path.join(log_dir, f)) as fh:
                        lines = [ln for ln in fh if 'DispatcherRestEndpoint' in ln and 'leadership' in ln]
                    if lines and 'was granted leadership' in lines[-1]:
                        leader = host
        assert leader in ('jm1', 'jm2')
        standby = 'jm2' if leader == 'jm1' else 'jm1'
        targets = {'jm1': (instances['jm1'], 'standalonesession'), 'jm2': (instances['jm2'], 'standalonesession')}
        # One watcher per JobManager: each is down for a while, never both.
        watchers = [Watcher(u, name) for u in urls]
        pids = PidWatch(targets)
        with pids, watchers[0], watchers[1]:
            output, stats = play.ensure(extra_vars={'flink_cluster_jobmanager_memory': '1100m'})
        assert 'jobmanager on %s, jobmanager on %s' % (standby, leader) in output, output[-6000:]
        assert len(pids.pids['jm1']) == 2 and len(pids.pids['jm2']) == 2, pids.pids
        assert pids.min_alive >= 1, pids.pids
        # Standby first: its new process appeared before the leader's.
        assert pids.first_seen[(standby, pids.pids[standby][1])] < pids.first_seen[(leader, pids.pids[leader][1])]
        # Flink recovered the job: the same job id, running, with its state; never two.
        [after] = wait_until(lambda: [j for j in live(urls[0], name) if j['state'] == 'RUNNING'], 60, 'the job')
        assert after['jid'] == job['jid']
        resumed = wait_until(lambda: counter(urls[0], after['jid']), 60, 'the counter after recovery')
        assert resumed >= reached, (reached, resumed)
        assert max(w.max_live for w in watchers) == 1 and min(w.samples for w in watchers) > 0
        assert not os.path.exists(os.path.join(instances['jm1'], 'handover.json'))
    finally:
        play.run(extra_vars={'flink_cluster_state': 'absent'})
        for instance in instances.values():
            stop_instance(instance)


def test_ha_on_two_hosts_with_local_storage_is_refused_in_preflight(flink_version, workroot):
    port = free_port_block(19900, 19990, 10)
    work = os.path.join(workroot, 'restart-ha-local-%d' % port)
    inventory = ha_inventory(flink_version, work, port, shared=False)
    play = RolePlay(work, inventory)
    rc, output, stats = play.run()
    assert rc != 0
    for variable in ('flink_cluster_ha_storage_dir', 'flink_cluster_savepoints_dir', 'flink_cluster_checkpoints_dir',
                     'flink_cluster_storage_shared'):
        assert variable in output, output[-4000:]
    for host in ('jm1', 'jm2', 'tm1'):
        assert not os.path.exists(os.path.join(work, host, 'instance')), host
