"""state=upgraded as a transaction on real Flink (issue 10's acceptance).

Every case lets the example job misbehave in one way (it crash-loops, lacks slots,
snapshots slowly, never completes a checkpoint, or the leader dies during the
rollback) while a referee polls Flink itself. The module's result is checked
against what the referee and Flink's own REST answers show, never alone.

Time bounds are the documented ones (flink_job, option rollback_timeout): a run
takes at most wait_timeout, plus ANSIBLE_SLACK_S for ansible-playbook's own
start-up and the module's first request, both outside the module's clock.
"""

import base64
import glob
import json
import os
import re
import threading
import time

import pytest
import requests

from tests.harness.faultproxy import FaultProxy
from tests.integration.conftest import EXAMPLE_CLASS, TERMINAL, live_jobs
from tests.integration.test_ha_failover import FailoverTally, current_leader, kill_at
from tests.integration.test_upgrade import jar_names, restored_path, spec, upgraded, wait_for_checkpoint

# The module's documented defaults (healthy_for 10 s): the suite's plays otherwise use healthy_for 0
# (tests/integration/ansible_play.py); a case that needs a window sets its own.
DOCUMENTED_DEFAULTS = {'module_defaults': {'flinkops.flink.flink_job': {}}}
# ansible-playbook start-up and the module's first request are outside the module's wait_timeout clock.
ANSIBLE_SLACK_S = 15


class Referee(object):
    """Polls ``GET /jobs/overview`` of every url itself and keeps what it saw of one job name.

    Each answer is one sample (time, live instances); a JobManager that does not
    answer (killed, electing a leader) gives none. ``seen`` keeps, per job id, the
    (state, task states with a count) pairs it went through.
    """

    def __init__(self, urls, name, interval=0.2):
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.name, self.interval = name, interval
        self.samples = []
        self.seen = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for url in self.urls:
                try:
                    jobs = requests.get(url + '/jobs/overview', timeout=3).json()['jobs']
                except (requests.RequestException, ValueError, KeyError):
                    self.errors += 1
                    continue
                mine = [j for j in jobs if j['name'] == self.name]
                self.samples.append((time.monotonic(), sum(1 for j in mine if j['state'] not in TERMINAL)))
                for j in mine:
                    tasks = tuple(sorted(k for k, v in (j.get('tasks') or {}).items() if v and k != 'total'))
                    trail = self.seen.setdefault(j['jid'], [])
                    if not trail or trail[-1] != (j['state'], tasks):
                        trail.append((j['state'], tasks))
            self._stop.wait(self.interval)

    @property
    def max_live(self):
        return max([n for _t, n in self.samples] or [0])

    def counts_since(self, t):
        return [n for at, n in self.samples if at >= t]

    def wait_samples(self, count=3, timeout=60):
        target = len(self.samples) + count
        end = time.monotonic() + timeout
        while len(self.samples) < target and time.monotonic() < end:
            time.sleep(self.interval)
        return len(self.samples) >= target

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def recorded_spec(url, jid):
    """The spec flink_job recorded with a job (jar hash, args, parallelism, ...), read from Flink."""
    user = requests.get(url + '/jobs/%s/config' % jid, timeout=10).json()['execution-config']['user-config']
    text = user['flinkops.spec']
    return json.loads(base64.urlsafe_b64decode(text + '=' * (-len(text) % 4)))['spec']


def flink_failures(url, jid, wanted=None, timeout=60):
    """The exception history Flink keeps for a job. Flink caches the answer for a few seconds and fills it in
    as failures are archived, which lags on a loaded machine: poll until an entry holds ``wanted`` (or, without
    ``wanted``, until there is any entry), for up to ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        data = requests.get(url + '/jobs/%s/exceptions' % jid, timeout=10).json()
        entries = (data.get('exceptionHistory') or {}).get('entries') or []
        texts = [e.get('stacktrace') or e.get('exceptionName') or '' for e in entries]
        found = any(wanted in t for t in texts) if wanted else bool(texts)
        if found or time.monotonic() >= end:
            return texts
        time.sleep(1)


def crash_recorded(cluster, jid, wanted='--fail-after', timeout=60):
    """Where Flink itself recorded that job ``jid`` failed with ``wanted`` in its failure: the exception history,
    or else the JobManager's log. Up to Flink 1.19 a failure enters the exception history only when the restart it
    triggers runs, after the restart delay; a job cancelled within that delay (a rollback that caught the crash
    loop at once) keeps an empty history, while Flink's log still has the job going RESTARTING and the task's
    failure. Returns 'exception history', 'jobmanager log' or None."""
    end = time.monotonic() + timeout
    while True:
        if any(wanted in t for t in flink_failures(cluster.url, jid, wanted, timeout=0)):
            return 'exception history'
        restarting = failure = False
        for p in cluster.procs:
            if p['role'] != 'jobmanager':
                continue
            for path in glob.glob(os.path.join(p['log_dir'], '*.log')):
                with open(path, errors='replace') as f:
                    for line in f:
                        if jid in line and 'to RESTARTING' in line:
                            restarting = True
                        if wanted in line and 'Exception' in line:   # the task's failure, as Flink logged it
                            failure = True
        if restarting and failure:
            return 'jobmanager log'
        if time.monotonic() >= end:
            return None
        time.sleep(1)


def flink_state(url, jid, timeout=30):
    """The state a job ended in: ``GET /jobs/<id>`` is answered from a cache of a few seconds, so a job that has
    just ended may still read as live there; poll until it reads as ended, for up to ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        state = requests.get(url + '/jobs/%s' % jid, timeout=10).json()['state']
        if state in TERMINAL or time.monotonic() >= end:
            return state
        time.sleep(0.5)


def start_v1(cluster, ansible, jar, name, *args, **options):
    v1 = ansible.run('flink_job', spec(cluster, jar, name, *args, **options))
    assert v1['changed'] and not v1.failed, v1.output
    return v1


def assert_rolled_back(cluster, r, v1, v1_spec, referee):
    """The upgrade failed, and the referee and Flink show the previous version back from the upgrade's savepoint."""
    assert r.failed and 'Traceback' not in r.output, r.output
    assert r['action'] == 'rolled_back', r.output
    assert r['previous_job_id'] == v1['job_id']
    assert r['savepoint'] and r['savepoint'] in r['msg'], r['msg']
    assert r['new_job_id'] and r['new_job_id'] != r['previous_job_id']
    assert r['new_job_id'] in r['failed_job_ids'], r.output
    assert r['verification']['healthy'] is False and r['verification']['job_id'] == r['new_job_id']
    assert r['rollback_verification']['healthy'] is True, r['rollback_verification']
    assert 'previous version was restored from savepoint %s' % r['savepoint'] in r['msg'], r['msg']
    # The referee: never two, and now exactly the rolled-back instance.
    assert referee.max_live <= 1, referee.seen
    live = [j['jid'] for j in live_jobs(cluster.url, v1['job']['name'])]
    assert live == [r['job_id']] and r['job_id'] not in (r['new_job_id'], r['previous_job_id']), (live, r.output)
    assert flink_state(cluster.url, r['new_job_id']) == 'CANCELED'
    # Flink: the instance runs the previous spec, restored from exactly the upgrade's savepoint.
    assert recorded_spec(cluster.url, r['job_id']) == v1_spec, 'the rolled-back job does not run the previous spec'
    path, is_savepoint = restored_path(cluster.url, r['job_id'])
    assert path == r['savepoint'] and is_savepoint, (path, r['savepoint'])


def report_case(fault_report, fault, cluster_url, name, referee, took):
    live = live_jobs(cluster_url, name)
    fault_report(fault, 'upgraded', runs=1, duplicates=int(referee.max_live > 1), lost=int(len(live) != 1),
                 converge_s=[took])


def timed(ansible, args, **kwargs):
    started = time.monotonic()
    r = ansible.run('flink_job', args, **kwargs)
    return r, time.monotonic() - started


# --- 1. the new version crash-loops ------------------------------------------------------------------------------

def test_crash_looping_new_version_is_rolled_back_with_the_default_gate(cluster, ansible, jar, jar_v2, job_name,
                                                                        fault_report):
    v1 = start_v1(cluster, ansible, jar, job_name)
    wait_for_checkpoint(cluster.url, v1['job_id'])
    v1_spec = recorded_spec(cluster.url, v1['job_id'])
    with Referee(cluster.url, job_name) as ref:
        # Each counter subtask throws after 100 records (about 2 s at 20 ms a record), on every attempt.
        r, took = timed(ansible, upgraded(cluster, jar_v2, job_name, '--fail-after', '100'),
                        play_extra=DOCUMENTED_DEFAULTS)
        ref.wait_samples()
    report_case(fault_report, 'new version crash-loops (healthy_for default)', cluster.url, job_name, ref, took)

    assert r['verification']['healthy_for'] == 10, r['verification']   # the documented default, not the suite's
    assert_rolled_back(cluster, r, v1, v1_spec, ref)
    assert 'not healthy' in r['msg']
    # Flink recorded the crash loop of the new version itself.
    where = crash_recorded(cluster, r['new_job_id'])
    print('the crash loop of %s, as Flink recorded it: %s' % (r['new_job_id'], where))
    assert where, r['new_job_id']


# --- 2. the new version cannot get its slots -----------------------------------------------------------------------

def test_new_version_lacking_slots_is_rolled_back_within_wait_timeout(cluster, ansible, jar, jar_v2, job_name,
                                                                      fault_report):
    conf = dict((e['key'], e['value']) for e in requests.get(cluster.url + '/jobmanager/config', timeout=10).json())
    assert conf.get('jobmanager.scheduler', 'default').lower() == 'default', 'the case needs the default scheduler'
    assert int(conf['taskmanager.numberOfTaskSlots']) == 8
    v1 = start_v1(cluster, ansible, jar, job_name)
    wait_for_checkpoint(cluster.url, v1['job_id'])
    v1_spec = recorded_spec(cluster.url, v1['job_id'])
    wait_timeout, rollback_timeout = 40, 20
    with Referee(cluster.url, job_name) as ref:
        r, took = timed(ansible, upgraded(cluster, jar_v2, job_name, parallelism=9, wait_timeout=wait_timeout,
                                          rollback_timeout=rollback_timeout))
        ref.wait_samples()
    report_case(fault_report, 'new version lacks slots (default scheduler)', cluster.url, job_name, ref, took)

    assert_rolled_back(cluster, r, v1, v1_spec, ref)
    # The default scheduler lacks slots in two ways, both seen here. On a fresh cluster, Flink says RUNNING and the
    # tasks wait SCHEDULED for slots that never come: the gate runs out. In the full suite (a cluster up for many
    # minutes; most likely past the ResourceManager's start-up period, resourcemanager.standalone.start-up-time) the
    # job was seen only RESTARTING: its slot requests failed at once, and the gate failed at the first restart.
    trail = ref.seen[r['new_job_id']]
    assert not any(s == 'RUNNING' and t == ('running',) for s, t in trail), trail
    waited = any(s == 'RUNNING' and 'scheduled' in t and 'running' not in t for s, t in trail)
    restarted = any(s == 'RESTARTING' for s, t in trail)
    assert waited or restarted, trail
    reason = r['verification']['reason']
    if restarted:
        assert any(word in reason for word in ('restarting', 'failed', 'not all RUNNING')), r['verification']
    else:
        assert 'not all RUNNING' in reason, r['verification']
    assert took <= wait_timeout + ANSIBLE_SLACK_S, 'the run took %.1f s, the bound is %d s + %d s' % (
        took, wait_timeout, ANSIBLE_SLACK_S)


# --- 3. snapshots slower than wait_timeout -------------------------------------------------------------------------

def test_savepoint_slower_than_wait_timeout_never_leaves_the_job_down(cluster, ansible, jar, jar_v2, job_name,
                                                                      fault_report):
    # Every checkpoint and savepoint of the job takes at least 22 s, longer than the whole wait_timeout below (the
    # savepoint may also queue behind a periodic checkpoint in flight: up to twice that).
    slow = ('--snapshot-sleep-ms', '22000')
    v1 = start_v1(cluster, ansible, jar, job_name, *slow)
    v1_spec = recorded_spec(cluster.url, v1['job_id'])
    wait_timeout, rollback_timeout = 20, 12     # the forward budget is 8 s
    with Referee(cluster.url, job_name) as ref:
        r, took = timed(ansible, upgraded(cluster, jar_v2, job_name, *slow, wait_timeout=wait_timeout,
                                          rollback_timeout=rollback_timeout))
        ended = time.monotonic()
        # 60 s after the run, the referee must have seen exactly one instance all the time.
        while time.monotonic() < ended + 60:
            time.sleep(1)
    report_case(fault_report, 'savepoint slower than wait_timeout', cluster.url, job_name, ref, took)

    after = ref.counts_since(ended)
    assert len(after) > 100 and set(after) == {1}, 'live instances seen after the run: %s' % sorted(set(after))
    assert r.failed and r['action'] == 'rolled_back', r.output
    assert r['previous_job_id'] == v1['job_id'] and r['savepoint'], r.output
    assert r['new_job_id'] is None, 'the new version must not be started after the forward budget'
    assert 'longer than the forward budget' in r['msg'], r['msg']
    stop_s = int(re.search(r'with a savepoint took (\d+) s', r['msg']).group(1))
    assert stop_s > wait_timeout, r['msg']
    assert set(ref.seen) == {v1['job_id'], r['job_id']}, 'the new version ran: %s' % ref.seen
    assert 'previous version was restored from savepoint %s' % r['savepoint'] in r['msg'], r['msg']
    assert any('takes longer than' in w for w in r.get('warnings', [])), r.output
    assert ref.max_live <= 1
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [r['job_id']]
    assert recorded_spec(cluster.url, r['job_id']) == v1_spec
    assert restored_path(cluster.url, r['job_id']) == (r['savepoint'], True)

    # With time enough, the same declaration converges on the new version, from a savepoint.
    with Referee(cluster.url, job_name) as ref2:
        again = ansible.run('flink_job', upgraded(cluster, jar_v2, job_name, *slow, wait_timeout=240))
        ref2.wait_samples()
    assert not again.failed and again['changed'] and again['action'] == 'upgraded', again.output
    assert again['previous_job_id'] == r['job_id'] and again['savepoint'] != r['savepoint']
    assert restored_path(cluster.url, again['job_id']) == (again['savepoint'], True)
    assert ref2.max_live <= 1
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [again['job_id']]
    assert recorded_spec(cluster.url, again['job_id'])['jar_sha256'] != v1_spec['jar_sha256']
    third = ansible.run('flink_job', upgraded(cluster, jar_v2, job_name, *slow, wait_timeout=240))
    assert not third.failed and not third['changed'] and third['job_id'] == again['job_id'], third.output


# --- 4. the health gate runs out (no checkpoint) -------------------------------------------------------------------

def test_rollback_after_the_health_gate_runs_out(cluster, ansible, jar, jar_v2, job_name, fault_report):
    v1 = start_v1(cluster, ansible, jar, job_name)
    wait_for_checkpoint(cluster.url, v1['job_id'])
    v1_spec = recorded_spec(cluster.url, v1['job_id'])
    wait_timeout, rollback_timeout = 40, 20
    with Referee(cluster.url, job_name) as ref:
        # The new version runs fine, but its first checkpoint takes a minute: the gate never sees one complete.
        r, took = timed(ansible, upgraded(cluster, jar_v2, job_name, '--snapshot-sleep-ms', '60000',
                                          wait_for_checkpoint=True, wait_timeout=wait_timeout,
                                          rollback_timeout=rollback_timeout))
        ref.wait_samples()
    report_case(fault_report, 'health gate runs out (no checkpoint)', cluster.url, job_name, ref, took)

    assert_rolled_back(cluster, r, v1, v1_spec, ref)
    assert 'no checkpoint' in r['verification']['reason'], r['verification']
    assert r['rollback_verification']['checkpoint_id'] is not None, r['rollback_verification']
    assert any(s == 'RUNNING' and t == ('running',) for s, t in ref.seen[r['new_job_id']]), ref.seen
    assert took <= wait_timeout + ANSIBLE_SLACK_S, 'the run took %.1f s, the bound is %d s + %d s' % (
        took, wait_timeout, ANSIBLE_SLACK_S)


# --- 5. the clean-up after a successful upgrade fails ------------------------------------------------------------

INJECTED = json.dumps({'errors': ['injected by the test: the clean-up request failed']})


def test_failing_jar_cleanup_never_fails_a_successful_upgrade(cluster, ansible, jar, jar_v2, job_name):
    v1 = start_v1(cluster, ansible, jar, job_name)
    wait_for_checkpoint(cluster.url, v1['job_id'])
    v1_sha = recorded_spec(cluster.url, v1['job_id'])['jar_sha256'][:16]

    # a) Deleting the previous version's jar fails.
    with FaultProxy(cluster.url) as proxy, Referee(cluster.url, job_name) as ref:
        delete = proxy.add('DELETE', r'^/jars/', 'status', times=None, status=500, body=INJECTED)
        r = ansible.run('flink_job', upgraded(cluster, jar_v2, job_name, url=proxy.url))
        ref.wait_samples()
    assert delete.fired >= 1, proxy.log
    assert_upgraded_with_warning(cluster, r, v1['job_id'], ref)
    assert any(n.startswith('flinkops-%s-' % v1_sha) for n in jar_names(cluster)), 'the fault did not take effect'
    v2_sha = recorded_spec(cluster.url, r['job_id'])['jar_sha256'][:16]
    wait_for_checkpoint(cluster.url, r['job_id'])

    # b) Back to v1: reading the live jobs' records fails, but only once the new version is verified (the clean-up
    #    lists the jars first; a rule armed there fails every GET /jobs/<id>/config after it).
    with FaultProxy(cluster.url) as proxy, Referee(cluster.url, job_name) as ref:
        submitted = threading.Event()
        config = proxy.add('GET', r'^/jobs/[0-9a-f]{32}/config', 'status', times=0, status=500, body=INJECTED)

        def arm():
            if submitted.is_set():
                config.times = None
        proxy.add('POST', r'^/jars/[^/]+/run', 'hook', times=None, after=lambda status, body: submitted.set())
        proxy.add('GET', r'^/jars/?(\?|$)', 'hook', times=None, before=arm)
        back = ansible.run('flink_job', upgraded(cluster, jar, job_name, url=proxy.url))
        ref.wait_samples()
    assert config.fired >= 1, proxy.log
    assert not any(method == 'DELETE' for method, *_rest in proxy.log), proxy.log
    assert_upgraded_with_warning(cluster, back, r['job_id'], ref)
    assert any(n.startswith('flinkops-%s-' % v2_sha) for n in jar_names(cluster)), 'the fault did not take effect'
    same = ansible.run('flink_job', upgraded(cluster, jar, job_name))
    assert not same.failed and not same['changed'] and same['job_id'] == back['job_id'], same.output


def assert_upgraded_with_warning(cluster, r, previous_id, referee):
    assert not r.failed, r.output
    assert r['changed'] and r['action'] == 'upgraded', r.output
    assert r['previous_job_id'] == previous_id and r['savepoint'] and r['job_id'], r.output
    warnings = [w for w in r.get('warnings', []) if 'jar' in w and 'upgraded' in w]
    assert warnings and 'injected by the test' in warnings[0], r.get('warnings')
    assert referee.max_live <= 1
    assert [j['jid'] for j in live_jobs(cluster.url, r['job']['name'])] == [r['job_id']]
    assert restored_path(cluster.url, r['job_id']) == (r['savepoint'], True)


# --- 6. a first submission crash-loops -----------------------------------------------------------------------------

def test_first_submission_that_crash_loops_fails_the_task(cluster, ansible, jar, job_name):
    with Referee(cluster.url, job_name) as ref:
        r = ansible.run('flink_job', spec(cluster, jar, job_name, '--fail-after', '100'),
                        play_extra=DOCUMENTED_DEFAULTS)
        ref.wait_samples()
    assert r.failed and 'Traceback' not in r.output, r.output
    assert 'not healthy' in r['msg'], r['msg']
    assert r['job_id'] and r['job_id'] in r['msg']
    v = r['verification']
    assert v['job_id'] == r['job_id'] and v['healthy'] is False and v['healthy_for'] == 10 and v['reason'], v
    # Flink: the instance is left as it runs, crash-looping, and it was the only one.
    assert ref.max_live == 1
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [r['job_id']]
    assert any('--fail-after' in text for text in flink_failures(cluster.url, r['job_id'], '--fail-after'))


# --- 7. the leader dies during the rollback (HA) -------------------------------------------------------------------

def ha_args(jar, name, urls, *extra, **options):
    args = {'url': urls, 'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS,
            'args': ['--job-name', name] + list(extra), 'wait_timeout': 150}
    args.update(options)
    return args


@pytest.mark.parametrize('previous_jar_on', ['standby', 'leader'])
def test_leader_killed_during_the_rollback(ha_cluster, ansible, jar, jar_v2, job_name, fault_report, previous_jar_on):
    """A crash-looping upgrade; the leader is SIGKILLed as the module cancels the new version.

    Jars live with the JobManager whose REST endpoint took the upload. ``standby``:
    the previous version was started through the standby, its jar survives the leader,
    and the rollback must bring it back. ``leader``: its only copy dies with the leader;
    a rollback cannot upload a jar the declaration no longer names, so the run must say
    so and keep the savepoint, and the next run of the previous declaration (which names
    its jar) must start it again from that savepoint.
    """
    urls = ha_cluster.urls
    leader = current_leader(ha_cluster)
    standby = 1 - leader
    fault = 'leader SIGKILL during rollback'
    if previous_jar_on == 'leader':
        fault += ' (previous jar only on the leader; then a plain run)'
    with FailoverTally(ha_cluster, fault_report, fault, 'upgraded',
                       runs_per_case=1 if previous_jar_on == 'standby' else 2) as tally:
        upload_to = urls[standby] if previous_jar_on == 'standby' else urls[leader]
        v1 = ansible.run('flink_job', ha_args(jar, job_name, [upload_to]))
        assert v1['changed'], v1.output
        wait_for_checkpoint(ha_cluster.url, v1['job_id'])
        v1_spec = recorded_spec(urls[standby], v1['job_id'])
        killed = []
        with FaultProxy(urls[leader]) as proxy, Referee(urls, job_name) as ref:
            # The only PATCH of this run is the cancel of the new version, in the compensation.
            proxy.add('PATCH', r'^/jobs/', 'hook', times=1, before=kill_at(ha_cluster, leader, killed))
            r = ansible.run('flink_job', ha_args(jar_v2, job_name, [proxy.url, urls[standby]], '--fail-after', '10',
                                                 state='upgraded', rollback_timeout=100, healthy_for=5))
            assert ref.wait_samples(), ref.errors
            live = [j['jid'] for j in live_jobs(urls[standby], job_name)]
            if previous_jar_on == 'leader':
                # A later plain run of the previous declaration.
                later = ansible.run('flink_job', ha_args(jar, job_name, urls, state='upgraded'))
                ref.wait_samples()
                live = [j['jid'] for j in live_jobs(urls[standby], job_name)]
            tally.times.append(time.monotonic() - killed[0] if killed else 0.0)
            tally.duplicates += int(ref.max_live > 1)
            tally.lost += int(len(live) != 1)

        assert killed, 'the leader was never killed: the rollback did not reach the cancel\n%s' % r.output
        assert r.failed and 'Traceback' not in r.output, r.output
        assert r['savepoint'] and r['savepoint'] in r['msg'], r.output
        assert r['new_job_id'] and r['previous_job_id'] == v1['job_id'] and r['new_job_id'] in r['failed_job_ids']
        assert ref.max_live <= 1, ref.seen
        if previous_jar_on == 'standby':
            assert r['action'] == 'rolled_back', r.output
            assert live == [r['job_id']], (live, r.output)
            assert recorded_spec(urls[standby], r['job_id']) == v1_spec
            assert restored_path(urls[standby], r['job_id'])[0] == r['savepoint']
            later = ansible.run('flink_job', ha_args(jar, job_name, urls, state='upgraded'))
            assert not later.failed and not later['changed'] and later['job_id'] == r['job_id'], later.output
        else:
            assert r['action'] == 'failed' and r['job_id'] is None, r.output
            # The previous declaration names its jar: it starts again, from the upgrade's savepoint.
            assert not later.failed, later.output
            assert later['changed'] and live == [later['job_id']], (live, later.output)
            assert recorded_spec(urls[standby], later['job_id']) == v1_spec
            assert (restored_path(urls[standby], later['job_id'])[0]
                    == r['savepoint']), later.output
            # The failed run named the jar that is gone (not a request for a jar called "None").
            assert 'jar' in r['msg'] and '/None does not exist' not in r['msg'], r['msg']
        # Leaving the tally brings the killed JobManager back and cancels the jobs.
