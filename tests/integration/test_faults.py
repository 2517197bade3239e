"""A fault-injecting proxy between flink_job and a real Flink: every fault, every operation.

Each case runs flink_job through the proxy while a watcher polls Flink directly.
Whatever the fault, the run must end with exactly the expected number of live
instances (one for present/upgraded, none for absent), never show two at once,
and report ``changed`` truthfully. Results go into the README's fault table.
"""

import time

import pytest

from tests.harness.faultproxy import FaultProxy
from tests.integration.conftest import EXAMPLE_CLASS, live_jobs

MUTATING = [('POST', r'^/jars/upload'), ('POST', r'^/jars/[^/]+/run'), ('POST', r'^/jobs/[^/]+/stop'),
            ('PATCH', r'^/jobs/[^/?]+')]


def drop_every_mutating_answer(proxy):
    # Flink acts on each mutating request, but the module never hears back the first time.
    return [proxy.add(method, path, 'drop', times=1) for method, path in MUTATING]


def delay_past_the_request_timeout(proxy):
    # Answers come after the module's request_timeout (2 s here) gave up on them.
    return [proxy.add(method, path, 'delay', times=1, seconds=3.5) for method, path in MUTATING]


def burst_of_503(proxy):
    # Flink's leader-election 503 on every request for a while.
    return [proxy.add('*', r'.*', 'status', times=10)]


def connection_resets(proxy):
    # The connection is reset before Flink sees the request.
    return [proxy.add('GET', r'^/jobs/overview', 'reset', times=2)] + \
        [proxy.add(method, path, 'reset', times=1) for method, path in MUTATING]


FAULTS = {
    'dropped answers': drop_every_mutating_answer,
    'answers slower than request_timeout': delay_past_the_request_timeout,
    '503 bursts': burst_of_503,
    'connection resets': connection_resets,
}


def job(jar, name, url, **extra):
    args = {'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name], 'url': url,
            'request_timeout': 2, 'wait_timeout': 120}
    args.update(extra)
    return args


@pytest.mark.parametrize('operation', ['present', 'upgraded', 'absent'])
@pytest.mark.parametrize('fault', sorted(FAULTS))
def test_fault(cluster, ansible, jar, jar_v2, job_name, watcher, fault_report, fault, operation):
    if operation in ('upgraded', 'absent'):
        before = ansible.run('flink_job', job(jar, job_name, cluster.url))
        assert before['changed'], before.output
        if operation == 'upgraded':
            # A savepoint needs a running job whose tasks are all up; a first checkpoint shows that.
            time.sleep(3)
    args = {
        'present': job(jar, job_name, None),
        'upgraded': job(jar_v2, job_name, None, state='upgraded'),
        'absent': job(jar, job_name, None, state='absent'),
    }[operation]
    with FaultProxy(cluster.url) as proxy:
        rules = FAULTS[fault](proxy)
        args['url'] = proxy.url
        started = time.monotonic()
        with watcher(job_name) as w:
            r = ansible.run('flink_job', args)
            took = time.monotonic() - started
            w.wait_samples()
        fired = sum(rule.fired for rule in rules)
    live = live_jobs(cluster.url, job_name)
    expected_live = 0 if operation == 'absent' else 1
    fault_report(fault, operation, runs=1, duplicates=int(w.max_live > 1), lost=int(len(live) != expected_live),
                 converge_s=[took])

    assert fired > 0, 'the fault never fired'
    assert not r.failed, r.output
    assert r['changed'], r.output
    assert w.max_live <= 1, 'two live instances seen'
    assert len(live) == expected_live, live
    if operation != 'absent':
        assert [j['jid'] for j in live] == [r['job_id']]
        assert r['job']['state'] == 'RUNNING'
    if operation == 'upgraded':
        assert r['savepoint'] and r['previous_job_id'] == before['job_id'], r.output
    # The run is repeatable: again, nothing to do.
    again = ansible.run('flink_job', dict(args, url=cluster.url))
    assert not again.failed and not again['changed'], again.output
