"""The flink_cluster role provides PyFlink (``flink_cluster_python: true``), and a PyFlink job with a Python UDF
runs on it through the flink_jobs role, the job naming no Python of its own: present, no-op, upgraded through a
savepoint, absent with a savepoint, present again resuming from it.

Flink is the referee: the job is listed once under its name, records go through the Python UDF (its
vertex's metrics), and the configuration the role wrote names the environment it built. A second run
changes nothing. Role-level case: with the role tests of the suite (tests/harness/suites.py).
"""

import os

import pytest

from tests.harness.roles import RolePlay, common_vars, link_flink_home, process_conf, stop_instance
from tests.integration.conftest import free_port_block, live_jobs
from tests.integration.test_python_job import program, pyflink_runs, records_through_the_udf
from tests.integration.test_upgrade import restored_path, wait_for_checkpoint


def test_the_role_provides_pyflink_for_a_job_with_a_python_udf(flink_version, workroot, tmp_path):
    if not pyflink_runs(flink_version):
        pytest.skip('Flink %s: flinkops.flink runs PyFlink jobs from Flink 1.20 on' % flink_version)
    port = free_port_block(19900, 20000, 10)
    work = os.path.join(workroot, 'pyflink-role-%d' % port)
    install = os.path.join(work, 'flink')
    link_flink_home(flink_version, install)
    name = 'pyflink-role-%d' % port
    url = 'http://127.0.0.1:%d' % port
    host = dict(common_vars(flink_version), flink_cluster_install_dir=install, flink_cluster_rest_port=port,
                flink_cluster_rpc_port=port + 1, flink_cluster_python=True,
                flink_cluster_config={'execution.checkpointing.interval': '2s'})
    job = {'name': name, 'python': program(tmp_path / 'prog'), 'python_module': 'clicks.main',
           'args': ['--rate', '20'], 'parallelism': 1}
    play = RolePlay(work, {'all': {'hosts': {'single': host}}}, jobs=[job], jobs_url=url)
    instance = os.path.join(install, 'instance')
    try:
        output, stats = play.ensure()
        python = os.path.join(install, 'pyflink-%s' % flink_version, 'bin', 'python')
        assert os.access(python, os.X_OK), output[-3000:]
        with open(process_conf(instance, 'jobmanager')) as f:
            conf = f.read()
        assert python in conf and 'python.client.executable' in conf and 'python.executable' in conf
        [live] = live_jobs(url, name)
        assert records_through_the_udf(url, live['jid']) > 0
        _output, again = play.ensure()
        assert again['single']['changed'] == 0, _output[-3000:]
        assert [j['jid'] for j in live_jobs(url, name)] == [live['jid']]
        wait_for_checkpoint(url, live['jid'])

        # The life cycle on the role's Python: an edited program is upgraded through a savepoint it restores from,
        # then the job is stopped with a savepoint and declared again, resuming from it.
        v2 = dict(job, python=program(tmp_path / 'prog-v2', buckets=20), state='upgraded')
        upgrade = RolePlay(work, play.inventory, jobs=[v2], jobs_url=url)
        upgrade.ensure()
        [after] = live_jobs(url, name)
        assert after['jid'] != live['jid']
        path, is_savepoint = restored_path(url, after['jid'])
        assert is_savepoint and path, path
        assert records_through_the_udf(url, after['jid']) > 0
        wait_for_checkpoint(url, after['jid'])
        gone = RolePlay(work, play.inventory, jobs=[{'name': name, 'state': 'absent', 'savepoint': True}],
                        jobs_url=url)
        gone.ensure()
        assert live_jobs(url, name) == []
        back = RolePlay(work, play.inventory, jobs=[dict(v2, state='present')], jobs_url=url)
        back.ensure()
        [resumed] = live_jobs(url, name)
        path, is_savepoint = restored_path(url, resumed['jid'])
        assert is_savepoint and path and path != restored_path(url, after['jid'])[0]
    finally:
        play.run(extra_vars={'flink_cluster_state': 'absent'})
        stop_instance(instance)
