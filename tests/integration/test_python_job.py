"""PyFlink jobs on real Flink, through ansible-playbook: a Python program with a Python UDF, packed by the module.

The cluster is the suite's own; the job names its Python (``python.client.executable`` for the program's
main in the JobManager, ``python.executable`` for the UDF workers in the TaskManagers) in its ``config``,
a virtual environment with ``apache-flink`` of the cluster's version (tests/harness/flinkdist.py, cached).
The role-provided environment is covered by tests/integration/test_flink_jobs_role.py.

The referees are Flink's answers: a Watcher counts live instances of the name, the restores are read from
the new instance's checkpoint statistics, records flowing through the Python UDF are read from the job's
vertex metrics.
"""

import importlib.util
import os
import time

import pytest
import requests

from tests.harness.flinkdist import ROOT, ensure_python_env
from tests.integration.conftest import assert_one_instance_one_change, live_jobs, local
from tests.integration.test_lifecycle import ok
from tests.integration.test_upgrade import restored_path, wait_for_checkpoint

MAIN = '''import sys

from pyflink.table import EnvironmentSettings, TableEnvironment

from clicks.udfs import bucket


def main(rate):
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.execute_sql("CREATE TABLE clicks (user_id INT, n BIGINT) WITH ('connector' = 'datagen', "
                    "'rows-per-second' = '%s', 'fields.user_id.min' = '0', 'fields.user_id.max' = '99')" % rate)
    env.execute_sql("CREATE TABLE per_bucket (b INT, c BIGINT) WITH ('connector' = 'blackhole')")
    env.create_temporary_function('bucket', bucket)
    env.execute_sql('INSERT INTO per_bucket SELECT bucket(user_id), COUNT(*) FROM clicks GROUP BY bucket(user_id)')


if __name__ == '__main__':
    main(sys.argv[sys.argv.index('--rate') + 1] if '--rate' in sys.argv else '10')
'''
UDFS = '''from pyflink.table import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.INT())
def bucket(user_id):
    return user_id %% %d
'''


# The collection's capability table itself (it imports nothing of Ansible's): loaded from its file, since the tests
# do not run with the collection on sys.path.
_spec = importlib.util.spec_from_file_location(
    'flinkops_capabilities', os.path.join(ROOT, 'plugins', 'module_utils', '_capabilities.py'))
capabilities = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(capabilities)


def pyflink_runs(flink_version):
    """PyFlink jobs run from Flink 1.20 on, as the collection's own capability table says (pyflink_jobs): before
    it, PythonDriver cannot parse -pyfs and ends the JobManager's process, and the module refuses them (the last
    test here)."""
    return capabilities.for_version(flink_version).pyflink_jobs


@pytest.fixture(scope='module')
def python_env(flink_version):
    if not pyflink_runs(flink_version):
        pytest.skip('Flink %s: flinkops.flink runs PyFlink jobs from Flink 1.20 on (before it, PythonDriver cannot '
                    'take -pyfs and ends the JobManager); test_a_pyflink_job_is_refused_before_flink_1_20 covers it'
                    % flink_version)
    return ensure_python_env(flink_version)


def program(root, buckets=10):
    """A program directory: package clicks, entry module clicks.main, the UDF in clicks/udfs.py."""
    pkg = root / 'clicks'
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'main.py').write_text(MAIN)
    (pkg / 'udfs.py').write_text(UDFS % buckets)
    return str(root)


def spec(url, name, path, python_env, **options):
    args = {'url': url, 'name': name, 'python': path, 'python_module': 'clicks.main', 'args': ['--rate', '20'],
            'parallelism': 1, 'wait_timeout': 240, 'healthy_for': 3,
            'config': {'python.client.executable': python_env, 'python.executable': python_env}}
    args.update(options)
    return args


def records_through_the_udf(url, jid, timeout=60):
    """Records the Python UDF's vertex wrote (the UDF runs in the TaskManager's Python): waits for some."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        vertices = requests.get(url + '/jobs/%s' % jid, timeout=10).json()['vertices']
        written = sum(v['metrics'].get('write-records', 0) for v in vertices if 'PythonCalc' in v['name'])
        if written:
            return written
        time.sleep(1)
    raise AssertionError('no record went through the Python UDF of job %s' % jid)


def test_a_pyflink_job_through_its_whole_life(cluster, ansible, job_name, watcher, python_env, tmp_path):
    url = cluster.url
    v1 = program(tmp_path / 'v1')
    v2 = program(tmp_path / 'v2', buckets=20)      # another UDF body: the same plan, so its state restores

    def live_ids():
        return [j['jid'] for j in live_jobs(url, job_name)]
    with watcher(job_name) as watch:
        ok(ansible.run('flink_job', spec(url, job_name, v1, python_env), check=True), changed=True,
           action='submitted')
        assert live_ids() == []
        first = ok(ansible.run('flink_job', spec(url, job_name, v1, python_env)), changed=True, action='submitted')
        assert live_ids() == [first['job_id']], 'the job does not run under the declared name'
        assert records_through_the_udf(url, first['job_id']) > 0
        named = spec(url, job_name, v1, python_env)
        ok(ansible.run('flink_job', named), changed=False, action='none', job_id=first['job_id'])
        wait_for_checkpoint(cluster.url, first['job_id'])

        # An edit of one file of the program is a new version: --check --diff shows it, upgraded restores.
        upgraded = dict(named, python=v2, state='upgraded')
        check = ok(ansible.run('flink_job', upgraded, check=True, diff=True), changed=True, action='upgraded')
        assert check['diff']['before']['jar_sha256'] != check['diff']['after']['jar_sha256']
        assert live_ids() == [first['job_id']]
        up = ok(ansible.run('flink_job', upgraded), changed=True, action='upgraded', previous_job_id=first['job_id'])
        assert live_ids() == [up['job_id']]
        assert restored_path(cluster.url, up['job_id']) == (up['savepoint'], True), up.output
        assert records_through_the_udf(url, up['job_id']) > 0
        ok(ansible.run('flink_job', upgraded), changed=False, action='none', job_id=up['job_id'])
        wait_for_checkpoint(cluster.url, up['job_id'])

        absent = {'url': url, 'name': job_name, 'state': 'absent', 'savepoint': True, 'wait_timeout': 180}
        gone = ok(ansible.run('flink_job', absent), changed=True, action='stopped')
        assert gone['savepoint'] and os.path.isdir(local(gone['savepoint'])) and live_ids() == []
        back = ok(ansible.run('flink_job', dict(upgraded, state='present')), changed=True, action='submitted')
        assert restored_path(cluster.url, back['job_id']) == (gone['savepoint'], True)
        assert watch.wait_samples()
    assert watch.max_live == 1, 'the watcher saw %d live instances of %s' % (watch.max_live, job_name)


def test_concurrent_runs_declaring_different_programs_start_one_instance(
        cluster, ansible, job_name, watcher, python_env, tmp_path):
    a, b = program(tmp_path / 'a'), program(tmp_path / 'b', buckets=7)
    calls = [('flink_job', spec(cluster.url, job_name, p, python_env)) for p in (a, b, a, b)]
    with watcher(job_name) as w:
        results = ansible.run_many(calls)
        w.wait_samples()
    assert_one_instance_one_change(results, w, cluster.url, job_name)


def test_a_program_that_is_not_there_or_fails_is_refused(cluster, ansible, job_name, python_env, tmp_path):
    url = cluster.url
    before = requests.get(url + '/jars', timeout=10).json()['files']
    missing = ansible.run('flink_job', spec(url, job_name, str(tmp_path / 'nowhere'), python_env))
    assert missing.failed and 'does not exist on the host where the module runs' in missing['msg'], missing.output
    no_module = ansible.run('flink_job', spec(url, job_name, program(tmp_path / 'p'), python_env,
                                              python_module='clicks.nothere'))
    assert no_module.failed and 'python_module clicks.nothere is not in' in no_module['msg'], no_module.output
    assert requests.get(url + '/jars', timeout=10).json()['files'] == before, 'something was uploaded'
    # A program whose main fails: Flink's reason (the Python traceback's last line) and no job.
    broken = tmp_path / 'broken'
    program(broken)
    (broken / 'clicks' / 'udfs.py').write_text('raise ValueError("no bucket for you")\n')
    failed = ansible.run('flink_job', spec(url, job_name, str(broken), python_env))
    assert failed.failed and 'no bucket for you' in failed['msg'], failed.output
    assert live_jobs(url, job_name) == []


def test_a_pyflink_job_is_refused_before_flink_1_20(cluster, ansible, job_name, flink_version, tmp_path):
    if pyflink_runs(flink_version):
        pytest.skip('Flink %s runs PyFlink jobs: the tests above cover them' % flink_version)
    # Flink 1.19.3's PythonDriver called System.exit in the JobManager for these arguments: the module must never
    # send them. No Python environment is needed: the refusal comes before anything is uploaded.
    url = cluster.url
    before = requests.get(url + '/jars', timeout=10).json()['files']
    args = spec(url, job_name, program(tmp_path / 'p'), '/usr/bin/python3')
    for check in (True, False):
        r = ansible.run('flink_job', args, check=check)
        assert r.failed and 'Traceback' not in r.output, r.output
        assert 'runs Flink %s' % flink_version in r['msg'] and 'Flink 1.20 and later' in r['msg'], r['msg']
        assert 'Nothing was changed' in r['msg'], r['msg']
    assert requests.get(url + '/jars', timeout=10).json()['files'] == before, 'something was uploaded'
    assert live_jobs(url, job_name) == []
    # The JobManager still answers (PythonDriver never ran).
    assert requests.get(url + '/config', timeout=10).json()['flink-version'] == flink_version
