"""The flink_cluster role run as root with its default service user (flink_cluster_user: flink).

As root the role creates the flink user and group and runs every process as that
user. An install directory that user cannot reach (here: under a 0700 directory)
is a preflight error that names the directory and the user, before anything is
installed or started. Real install from the Python package index, since handing
the installation to the user is part of the path.

These cases need root; CI runs as root. Role-level: first Flink version only (Makefile).
"""

import os
import pwd
import shutil
import tempfile

import pytest
import requests

from tests.harness.roles import RolePlay, common_vars, read_pid, stop_instance
from tests.integration.conftest import free_port_block

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the default service user path needs root (CI runs as root)')


def root_vars(version):
    host = common_vars(version)
    for key in ('flink_cluster_user', 'flink_cluster_group'):
        del host[key]          # the role's defaults: flink / flink
    return host


def uid_of(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('Uid:'):
                return int(line.split()[1])
    return None


def root_play(version, scratch, install, host_name):
    """A one-host play of the role with its default user, on free loopback ports; (play, rest port)."""
    port = free_port_block(20000, 20100, 10)
    host = dict(root_vars(version), flink_cluster_install_dir=install, flink_cluster_rest_port=port,
                flink_cluster_rpc_port=port + 1)
    return RolePlay(os.path.join(scratch, 'play'), {'all': {'hosts': {host_name: host}}}), port


@pytest.fixture
def scratch():
    """A directory in /tmp (world-searchable) for the test; removed afterwards."""
    path = tempfile.mkdtemp(prefix='flinkops-root-', dir='/tmp')
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_an_install_dir_the_service_user_cannot_reach_fails_in_preflight(flink_version, scratch):
    locked = os.path.join(scratch, 'locked')
    os.mkdir(locked, 0o700)
    play, _port = root_play(flink_version, scratch, os.path.join(locked, 'flink'), 'rootless')
    rc, output, stats = play.run()
    assert rc != 0
    assert locked in output and 'flink (flink_cluster_user)' in output, output[-4000:]
    assert 'Check that the service user can reach' in output
    # Nothing was installed or started.
    assert os.listdir(locked) == []
    assert stats['rootless']['changed'] == 0, stats


def test_as_root_the_default_user_is_created_and_runs_the_cluster(flink_version, scratch):
    os.chmod(scratch, 0o755)
    install = os.path.join(scratch, 'flink')
    play, port = root_play(flink_version, scratch, install, 'rooted')
    instance = os.path.join(install, 'instance')
    try:
        output, stats = play.ensure()
        user = pwd.getpwnam('flink')
        for daemon in ('standalonesession', 'taskexecutor'):
            pid = read_pid(instance, daemon)
            assert pid and uid_of(pid) == user.pw_uid, (daemon, pid)
        assert os.stat(instance).st_uid == user.pw_uid
        assert os.stat(os.path.join(install, 'flink-%s' % flink_version, 'lib')).st_uid == user.pw_uid
        overview = requests.get('http://127.0.0.1:%d/overview' % port, timeout=10).json()
        assert overview['taskmanagers'] == 1 and overview['slots-total'] == 2
        output, stats = play.ensure()
        assert stats['rooted']['changed'] == 0, output[-4000:]
    finally:
        play.run(extra_vars={'flink_cluster_state': 'absent'})
        stop_instance(instance)
