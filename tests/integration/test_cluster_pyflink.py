"""The flink_cluster role provides PyFlink (``flink_cluster_python: true``), and a PyFlink job with a Python UDF
runs on it through the flink_jobs role, the job naming no Python of its own.

Flink is the referee: the job is listed once under its name, records go through the Python UDF (its
vertex's metrics), and the configuration the role wrote names the environment it built. A second run
changes nothing. Role-level case: with the role tests of the suite (tests/harness/suites.py).
"""

import os

import pytest

from tests.harness.roles import RolePlay, common_vars, link_flink_home, process_conf, stop_instance
from tests.integration.conftest import free_port_block, live_jobs
from tests.integration.test_python_job import NO_PYFLINK_WHEELS, program, records_through_the_udf


def test_the_role_provides_pyflink_for_a_job_with_a_python_udf(flink_version, workroot, tmp_path):
    if flink_version.startswith(NO_PYFLINK_WHEELS):
        pytest.skip('apache-flink %s has no wheel for Python 3.11: the role provides PyFlink from Flink 1.19 on'
                    % flink_version)
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
    finally:
        play.run(extra_vars={'flink_cluster_state': 'absent'})
        stop_instance(instance)
