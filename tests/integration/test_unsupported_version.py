"""Flink older than 1.18 is refused by every module, with the first request, and nothing changes.

This file starts its own Flink 1.17.2 cluster, whatever FLINKOPS_FLINK_VERSION
says (`make integration` runs it once, with the first version's suite). Flink
1.17 ships no Java 17 options; the harness lends it 1.18's (tests/harness/cluster.py).
The job on it was submitted straight through Flink's REST API, so the modules
have something they could touch, and the referee is Flink's own job list,
jar list and savepoint directory before and after.
"""

import json
import os
import subprocess

import pytest
import requests

from tests.harness import owned
from tests.harness.cluster import FlinkCluster
from tests.harness.jobs import build_jar
from tests.integration.ansible_play import ansible_env
from tests.integration.conftest import EXAMPLE_CLASS, free_port_block

OLD = '1.17.2'
SUPPORTED = 'supports Flink 1.18 to 2.3'


@pytest.fixture(scope='module')
def old_cluster(workroot):
    port = free_port_block(18910, 18990, 10)
    c = FlinkCluster(OLD, os.path.join(workroot, 'flink-%s-%d' % (OLD, port)), rest_port=port, slots=2)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope='module')
def old_job(old_cluster):
    """A job started by hand on the old cluster, named like the declared one (flink_job would adopt it)."""
    jar = build_jar(OLD, 'v1')
    with open(jar, 'rb') as f:
        up = requests.post(old_cluster.url + '/jars/upload', files={'jarfile': ('job.jar', f, 'application/java')},
                           timeout=60).json()
    jar_id = up['filename'].rsplit('/', 1)[-1]
    run = requests.post(old_cluster.url + '/jars/%s/run' % jar_id, timeout=60,
                        json={'entryClass': EXAMPLE_CLASS, 'programArgsList': ['--job-name', 'orders']}).json()
    return {'jar': jar, 'job_id': run['jobid']}


def snapshot(cluster):
    jobs = requests.get(cluster.url + '/jobs/overview', timeout=10).json()['jobs']
    jars = requests.get(cluster.url + '/jars', timeout=10).json()['files']
    savepoints = os.path.join(cluster.workdir, 'savepoints')
    return (sorted((j['jid'], j['state']) for j in jobs), sorted(j['id'] for j in jars),
            sorted(os.listdir(savepoints)) if os.path.isdir(savepoints) else [])


def calls(url, jar, job_id, handover_file):
    job = {'url': url, 'name': 'orders', 'jar': jar, 'entry_class': EXAMPLE_CLASS, 'args': ['--job-name', 'orders']}
    return [
        ('flink_job', job),
        ('flink_job', dict(job, state='upgraded', args=['--job-name', 'orders', '--v', '2'])),
        ('flink_job', {'url': url, 'name': 'orders', 'state': 'absent', 'savepoint': True}),
        ('flink_savepoint', {'url': url, 'job_id': job_id}),
        ('flink_savepoint', {'url': url, 'state': 'absent', 'path': 'file:/tmp/no-such-savepoint'}),
        ('flink_job_info', {'url': url}),
        ('flink_cluster_info', {'url': url}),
        ('flink_job_handover', {'url': url, 'state': 'suspended', 'handover_file': handover_file}),
        ('flink_job_handover', {'url': url, 'state': 'resumed', 'handover_file': handover_file}),
        ('flink_job_handover', {'url': url, 'state': 'settled'}),
    ]


def run_all_in_one_play(ansible, workdir, tasks):
    """Every (module, args, check) as a task of one play (one ansible-playbook start); their registered results."""
    out = os.path.join(workdir, 'results.json')
    play = {'hosts': 'localhost', 'gather_facts': False,
            'vars': {'ansible_python_interpreter': '{{ ansible_playbook_python }}'},
            'tasks': [{'name': '%s %d' % (module, i), 'flinkops.flink.%s' % module: args, 'check_mode': check,
                       'register': 'r%d' % i, 'ignore_errors': True}
                      for i, (module, args, check) in enumerate(tasks)]}
    play['tasks'].append({'name': 'save results', 'check_mode': False, 'ansible.builtin.copy': {
        'dest': out, 'content': '{{ [%s] | to_json }}' % ', '.join('r%d' % i for i in range(len(tasks)))}})
    path = os.path.join(workdir, 'play.yml')
    with open(path, 'w') as f:
        json.dump([play], f)
    proc = owned.run([ansible.bin, '-i', 'localhost,', '-c', 'local', '--diff', path], env=ansible_env(),
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
    text = proc.stdout.decode('utf-8', 'replace')
    assert os.path.exists(out), text
    with open(out) as f:
        return json.load(f), text


def test_flink_1_17_is_refused_by_every_module(old_cluster, old_job, ansible, tmp_path):
    handover_file = str(tmp_path / 'handover.json')
    before = snapshot(old_cluster)
    assert ('%s' % old_job['job_id'], 'RUNNING') in before[0]
    tasks = [(module, args, check) for check in (True, False)
             for module, args in calls(old_cluster.url, old_job['jar'], old_job['job_id'], handover_file)]
    results, output = run_all_in_one_play(ansible, str(tmp_path), tasks)
    assert 'Traceback' not in output and 'MODULE FAILURE' not in output, output
    assert len(results) == len(tasks)
    for (module, args, check), r in zip(tasks, results):
        assert r.get('failed'), (module, args, check, r)
        assert 'runs Flink %s' % OLD in r['msg'] and SUPPORTED in r['msg'], (module, r['msg'])
        assert 'Nothing was changed' in r['msg'] and not r.get('changed'), (module, r['msg'])
    assert snapshot(old_cluster) == before, 'a module changed the cluster'
    assert not os.path.exists(handover_file)
