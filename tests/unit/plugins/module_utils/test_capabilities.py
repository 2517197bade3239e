"""The capability table (module_utils/_capabilities.py) and the version gate every module passes first.

The same gate against a real Flink 1.17.2 cluster, through ansible-playbook, is in
tests/integration/test_lifecycle.py (test_flink_1_17_is_refused_by_every_module).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
from ansible_collections.flinkops.flink.plugins.module_utils import _capabilities as caps
from ansible_collections.flinkops.flink.plugins.module_utils import _handover as handover
from ansible_collections.flinkops.flink.plugins.module_utils import _savepoint as savepoint
from ansible_collections.flinkops.flink.plugins.module_utils import _service as service

from .fake_flink import FakeFlink
from .fakes import FakeClock, FakeResponse, FakeSession


def client_for(flink):
    clock = FakeClock()
    flink.now = clock
    return api.FlinkClient(['http://jm:8081'], api.Deadline(30, clock=clock), session=FakeSession(flink),
                           sleep=clock.sleep)


@pytest.mark.parametrize('version, expected', [
    ('1.20.3', (1, 20, 3)), ('2.3.0', (2, 3, 0)), ('2.3-SNAPSHOT', (2, 3)), ('1.18.1-rc2', (1, 18, 1)),
    ('', ()), (None, ()), ('unknown', ()),
])
def test_version_tuple(version, expected):
    assert caps.version_tuple(version) == expected


@pytest.mark.parametrize('version', ['1.18.0', '1.18.1', '1.19.3', '1.20.5', '2.0.2', '2.1.3', '2.2.1', '2.3.0',
                                     '2.4.0'])
def test_supported_lines_get_a_table(version):
    table = caps.for_version(version)
    assert table.version == version and table.line == caps.version_tuple(version)[:2]


@pytest.mark.parametrize('version', ['1.17.2', '1.16.3', '1.9.3', '0.10'])
def test_older_lines_are_refused_naming_the_supported_ones(version):
    with pytest.raises(caps.UnsupportedVersion) as err:
        caps.for_version(version, where='http://jm:8081')
    msg = str(err.value)
    assert 'runs Flink %s' % version in msg and 'http://jm:8081' in msg
    assert 'Flink 1.18 to 2.3' in msg and 'Nothing was changed' in msg


@pytest.mark.parametrize('version', [None, '', 'abc', '2'])
def test_an_unreadable_version_is_refused_not_guessed(version):
    with pytest.raises(caps.UnsupportedVersion, match='Could not tell which Flink version'):
        caps.for_version(version)


def test_checkpoint_and_savepoint_keys_by_line():
    for version in ('1.18.1', '1.19.3'):
        table = caps.for_version(version)
        assert table.checkpoint_dir_keys == ('state.checkpoints.dir',)
        assert table.savepoint_dir_key == 'state.savepoints.dir'
    for version in ('1.20.5', '2.0.2', '2.3.0'):
        table = caps.for_version(version)
        assert table.checkpoint_dir_keys == ('execution.checkpointing.dir', 'state.checkpoints.dir')
        assert table.savepoint_dir_key == 'execution.checkpointing.savepoint-dir'


def test_the_version_is_read_once_per_run_and_shared_by_every_flinkjobs_of_the_client():
    flink = FakeFlink(version='1.19.3')
    client = client_for(flink)
    first = service.FlinkJobs(client).capabilities()
    second = service.FlinkJobs(client).capabilities()
    assert first is second and first.version == '1.19.3'
    assert flink.requests == [('GET', '/config')]


def test_the_savepoint_module_refuses_an_old_flink_before_anything_else():
    flink = FakeFlink(version='1.17.2')
    flink.add_job('ab' * 16, 'orders')
    for check in (True, False):
        manager = savepoint.SavepointManager(client_for(flink), check_mode=check)
        with pytest.raises(service.FlinkUnsupportedVersion, match='supports Flink 1.18 to 2.3'):
            manager.take(name='orders')
        with pytest.raises(service.FlinkUnsupportedVersion, match='supports Flink 1.18 to 2.3'):
            manager.dispose('file:/tmp/savepoint-1')
    assert set(flink.requests) == {('GET', '/config')} and flink.mutating() == []


@pytest.mark.parametrize('step', ['suspend', 'resume', 'settle'])
def test_the_handover_refuses_an_old_flink_before_anything_else(tmp_path, step):
    flink = FakeFlink(version='1.17.2')
    flink.add_job('ab' * 16, 'orders')
    runner = handover.Handover(client_for(flink), path=str(tmp_path / 'handover.json'), healthy_for=0)
    with pytest.raises(service.FlinkUnsupportedVersion, match='runs Flink 1.17.2'):
        getattr(runner, step)()
    assert flink.requests == [('GET', '/config')] and flink.mutating() == []
    assert not (tmp_path / 'handover.json').exists()


def test_a_url_that_is_not_flink_says_so_and_names_the_path_prefix():
    """A proxy's own 404 (its address without the path prefix that leads to Flink): a message, not the 404 page."""
    clock = FakeClock()
    page = FakeResponse(404, '<html><body><center><h1>404 Not Found</h1></center></body></html>', reason='Not Found')
    session = FakeSession(lambda method, url, kwargs: page)
    client = api.FlinkClient(['http://gateway:8080/'], api.Deadline(30, clock=clock), session=session,
                             sleep=clock.sleep)
    with pytest.raises(api.FlinkApiError) as err:
        service.FlinkJobs(client).capabilities()
    assert 'does not lead to a Flink REST API' in err.value.msg and 'path prefix' in err.value.msg
    assert 'http://gateway:8080' in err.value.msg and 'HTTP 404' in err.value.msg
    assert [(m, u) for m, u, _kwargs in session.calls] == [('GET', 'http://gateway:8080/config')]
