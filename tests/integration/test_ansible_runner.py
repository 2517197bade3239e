"""A deploy playbook run through ansible-runner, the engine AWX/Tower runs jobs with.

The playbook names no Flink URL anywhere: the connection comes only from FLINK_URL in
the runner's environment, which is how an AWX credential of the type in
extensions/awx/ reaches the modules. Results are read from runner events and stats,
as AWX reads them: a check-mode run (AWX's "Check" job type) predicts and changes
nothing, the real run submits, and a second real run reports no change at all.
"""

import contextlib
import json
import os
import signal
import sys

import ansible_runner
import requests

from tests.integration.ansible_play import COLLECTIONS
from tests.integration.conftest import EXAMPLE_CLASS, live_jobs

FLINK_JOB = 'flinkops.flink.flink_job'


def playbook(jar, name):
    return [{
        'name': 'Deploy a Flink job',
        'hosts': 'localhost',
        'connection': 'local',
        'gather_facts': False,
        'vars': {'ansible_python_interpreter': '{{ ansible_playbook_python }}'},
        # The connection is not here: FLINK_URL comes from the environment.
        'module_defaults': {'group/flinkops.flink.flink': {'wait_timeout': 180, 'request_timeout': 10}},
        'tasks': [
            {'name': 'The cluster answers', 'flinkops.flink.flink_cluster_info': None, 'register': 'info',
             'failed_when': 'not info.reachable'},
            {'name': 'Make sure the job runs, exactly once', FLINK_JOB: {
                'name': name, 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', name],
                'parallelism': 1}},
        ],
    }]


@contextlib.contextmanager
def own_signals():
    """ansible_runner.run() in the main thread replaces the SIGINT and SIGTERM handlers with one that only
    cancels its playbook, and never puts them back: after it, Ctrl-C or the SIGINT suites.py sends on a CI
    timeout would no longer stop this pytest, and the clusters it started would outlive the run. So the
    handlers are put back, and a run the signal cancelled interrupts the session as the signal would have."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def run(base, ident, text, url, check=False):
    """One job: like AWX, a fresh private data directory per run.

    ansible-runner keeps ``cmdline`` in ``<private_data_dir>/env/cmdline`` and a later run
    in the same directory without a cmdline reuses it, so a shared directory would run
    the "real" runs with --check too.
    """
    pdd = base / ident
    (pdd / 'project').mkdir(parents=True)
    (pdd / 'inventory').mkdir()
    (pdd / 'inventory' / 'hosts').write_text('localhost ansible_connection=local\n')
    (pdd / 'project' / 'deploy.yml').write_text(text, encoding='utf-8')
    with own_signals():
        r = ansible_runner.run(
            private_data_dir=str(pdd), playbook='deploy.yml', ident=ident, quiet=True,
            envvars={'FLINK_URL': url, 'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS, 'ANSIBLE_NOCOLOR': '1',
                     'ANSIBLE_RETRY_FILES_ENABLED': '0', 'PYTHONDONTWRITEBYTECODE': '1',
                     # This venv's ansible-playbook, as an EE has its own first on PATH.
                     'PATH': os.pathsep.join([os.path.dirname(sys.executable), os.environ.get('PATH', '')])},
            cmdline='--check' if check else None)
    if r.status == 'canceled':
        raise KeyboardInterrupt('ansible-runner was cancelled by a signal')
    events = list(r.events)
    assert r.status == 'successful' and r.rc == 0, (r.status, r.rc, r.stdout.read())
    assert ('--check' in r.config.command) is check, r.config.command
    return r, events


def module_results(events, action):
    return [e['event_data']['res'] for e in events
            if e['event'] == 'runner_on_ok' and e['event_data'].get('resolved_action') == action]


def jobs_named(url, name):
    """Every job of that name the cluster knows, in any state."""
    return [j for j in requests.get(url + '/jobs/overview', timeout=10).json()['jobs'] if j['name'] == name]


def test_deploy_through_ansible_runner_with_connection_from_environment(cluster, jar, job_name, tmp_path,
                                                                        monkeypatch):
    for var in ('FLINK_URL', 'FLINK_USERNAME', 'FLINK_PASSWORD', 'FLINK_VALIDATE_CERTS', 'FLINK_CA_PATH',
                'FLINK_CLIENT_CERT', 'FLINK_CLIENT_KEY'):
        monkeypatch.delenv(var, raising=False)
    text = json.dumps(playbook(jar, job_name), ensure_ascii=False)
    assert cluster.url not in text and '"url"' not in text

    # Check mode: reports the submission it would make, submits nothing.
    r, events = run(tmp_path, 'check', text, cluster.url, check=True)
    [predicted] = module_results(events, FLINK_JOB)
    assert predicted['changed'] is True and predicted['action'] == 'submitted', predicted
    assert predicted['invocation']['module_args']['url'] == [cluster.url], 'the url did not come from FLINK_URL'
    assert r.stats['changed'] == {'localhost': 1}
    assert jobs_named(cluster.url, job_name) == []

    # Real run: submits under the id check mode predicted; the job runs.
    r, events = run(tmp_path, 'deploy', text, cluster.url)
    [deployed] = module_results(events, FLINK_JOB)
    assert deployed['changed'] is True and deployed['action'] == 'submitted', deployed
    assert deployed['job_id'] == predicted['job_id']
    assert r.stats['changed'] == {'localhost': 1}
    assert [(j['jid'], j['state']) for j in jobs_named(cluster.url, job_name)] == [(deployed['job_id'], 'RUNNING')]

    # Again: nothing changes anywhere in the play.
    r, events = run(tmp_path, 'again', text, cluster.url)
    [again] = module_results(events, FLINK_JOB)
    assert again['changed'] is False and again['action'] == 'none' and again['job_id'] == deployed['job_id']
    assert r.stats['changed'] == {}
    assert not [e for e in events if e['event'] == 'runner_on_ok' and e['event_data']['res'].get('changed')]
    assert [j['jid'] for j in live_jobs(cluster.url, job_name)] == [deployed['job_id']]
