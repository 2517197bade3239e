"""The flink_job_params filter: flink_job's options from the module's own spec, recursive merge, clear errors."""

import copy
import importlib.util
import os
import sys

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.flinkops.flink.plugins.filter import flink_job_params as plugin
from ansible_collections.flinkops.flink.plugins.filter.flink_job_params import FilterModule, flink_job_params
from ansible_collections.flinkops.flink.plugins.module_utils._common import connection_argument_spec
from ansible_collections.flinkops.flink.plugins.module_utils._job_spec import (
    job_argument_spec,
    job_required_if,
    option_names,
)
from ansible_collections.flinkops.flink.plugins.modules import flink_job as flink_job_module

JOB = {'name': 'etl', 'jar': '/srv/etl.jar'}


# --- one source of truth -------------------------------------------------------

def test_job_options_are_exactly_the_job_argument_spec():
    # wait_timeout is the one connection option a job may set for itself (its time budget).
    assert plugin.job_options() == set(job_argument_spec()) | {'wait_timeout'}
    assert 'wait_timeout' in connection_argument_spec()
    assert not set(job_argument_spec()) & set(connection_argument_spec())


def test_connection_options_are_the_connection_spec_without_url():
    spec = connection_argument_spec()
    expected = set(spec) - {'url'}
    for option in spec.values():
        expected.update(option.get('aliases') or ())
    assert plugin.connection_options() == expected
    assert {'request_timeout', 'wait_timeout', 'url_password', 'password', 'headers'} <= plugin.connection_options()
    assert 'url' not in plugin.connection_options()


def test_every_job_option_is_accepted():
    item = dict((key, None) for key in job_argument_spec())
    item.update(JOB, wait_timeout=5)
    params = flink_job_params(item)
    assert set(params) == set(job_argument_spec()) | {'wait_timeout'}


class _Captured(Exception):
    pass


def test_module_argument_spec_is_connection_plus_job_spec(monkeypatch):
    captured = {}

    def fake_module(**kwargs):
        captured.update(kwargs)
        raise _Captured()

    monkeypatch.setattr(flink_job_module, 'AnsibleModule', fake_module)
    with pytest.raises(_Captured):
        flink_job_module.main()
    expected = connection_argument_spec()
    expected.update(job_argument_spec())
    expected['scope'] = dict(type='str')    # flink_job's own: a set's jobs get their scope from flink_job_set
    assert captured['argument_spec'] == expected
    assert captured['required_if'] == job_required_if()
    assert captured['supports_check_mode'] is True


def test_module_documents_exactly_its_job_options():
    import yaml
    options = yaml.safe_load(flink_job_module.DOCUMENTATION)['options']
    assert set(job_argument_spec()) <= set(options)
    # connection options come from the doc fragment; scope is flink_job's own (flink_job_set has one per set)
    assert set(options) - set(job_argument_spec()) == set(['scope'])


def test_secret_args_keeps_no_log():
    assert job_argument_spec()['secret_args']['no_log'] is True


def test_job_argument_spec_is_a_fresh_copy_every_time():
    spec = job_argument_spec()
    spec['config']['default']['x'] = 1
    spec.pop('name')
    assert job_argument_spec()['config']['default'] == {}
    assert 'name' in job_argument_spec()


def test_option_names_include_aliases():
    assert option_names({'a': {'aliases': ['b', 'c']}, 'd': {}}) == {'a', 'b', 'c', 'd'}


# --- merge ---------------------------------------------------------------------

def test_config_maps_merge_and_the_item_wins():
    params = flink_job_params(dict(JOB, config={'b': '2', 'shared': 'item'}),
                              defaults={'config': {'a': '1', 'shared': 'default'}})
    assert params['config'] == {'a': '1', 'b': '2', 'shared': 'item'}


def test_nested_config_maps_merge_at_every_level():
    defaults = {'config': {'execution': {'checkpointing': {'interval': '10s', 'mode': 'EXACTLY_ONCE'}},
                           'state': {'backend': {'type': 'rocksdb'}}}}
    item = dict(JOB, config={'execution': {'checkpointing': {'interval': '30s'}, 'runtime-mode': 'STREAMING'}})
    params = flink_job_params(item, defaults=defaults)
    assert params['config'] == {
        'execution': {'checkpointing': {'interval': '30s', 'mode': 'EXACTLY_ONCE'}, 'runtime-mode': 'STREAMING'},
        'state': {'backend': {'type': 'rocksdb'}},
    }


def test_lists_are_replaced_not_appended():
    defaults = {'args': ['--a', '1'], 'secret_args': ['--token', 'x'], 'config': {'l': [1, 2]}}
    params = flink_job_params(dict(JOB, args=['--b'], config={'l': [3]}), defaults=defaults)
    assert params['args'] == ['--b']
    assert params['config'] == {'l': [3]}
    assert params['secret_args'] == ['--token', 'x']


def test_scalars_and_types_item_wins():
    defaults = {'state': 'upgraded', 'parallelism': 4, 'config': {'a': {'b': 1}}, 'wait': True}
    params = flink_job_params(dict(JOB, parallelism=2, config={'a': 'flat'}, wait=False), defaults=defaults)
    assert params == dict(JOB, state='upgraded', parallelism=2, config={'a': 'flat'}, wait=False)


def test_defaults_fill_in_and_inputs_are_not_changed():
    defaults = {'config': {'a': {'x': 1}}, 'args': ['--d']}
    item = dict(JOB, config={'a': {'y': 2}})
    before = copy.deepcopy((defaults, item))
    params = flink_job_params(item, defaults=defaults)
    assert (defaults, item) == before
    params['config']['a']['z'] = 3
    params['args'].append('--e')
    assert (defaults, item) == before


def test_merge_function_directly():
    assert plugin.merge({'a': {'b': 1, 'c': [1]}, 'd': 1}, {'a': {'c': [2]}, 'e': None}) == \
        {'a': {'b': 1, 'c': [2]}, 'd': 1, 'e': None}
    assert plugin.merge({'a': 1}, {'a': {'b': 2}}) == {'a': {'b': 2}}
    assert plugin.merge({'a': {'b': 2}}, {'a': 1}) == {'a': 1}


# --- connection and url ----------------------------------------------------------

def test_connection_and_url_are_added():
    connection = {'validate_certs': False, 'ca_path': '/ca.pem', 'url_password': 'pw', 'headers': {'X': 'y'},
                  'request_timeout': 2.5, 'wait_timeout': 300}
    params = flink_job_params(JOB, connection=connection, url=['http://a:8081', 'http://b:8081'])
    assert params == dict(JOB, url=['http://a:8081', 'http://b:8081'], **connection)


def test_item_wait_timeout_wins_over_connection():
    params = flink_job_params(dict(JOB, wait_timeout=600), defaults={'wait_timeout': 200},
                              connection={'wait_timeout': 300})
    assert params['wait_timeout'] == 600
    assert flink_job_params(JOB, defaults={'wait_timeout': 200}, connection={'wait_timeout': 300})['wait_timeout'] \
        == 200


@pytest.mark.parametrize('url', [None, '', []])
def test_empty_url_is_left_out(url):
    assert 'url' not in flink_job_params(JOB, url=url)


def test_connection_aliases_are_accepted():
    assert flink_job_params(JOB, connection={'username': 'u', 'password': 'p'})['password'] == 'p'


def test_secret_args_and_request_timeout_are_accepted():
    params = flink_job_params(dict(JOB, secret_args=['--token', 's3cr3t']), connection={'request_timeout': 3})
    assert params['secret_args'] == ['--token', 's3cr3t']
    assert params['request_timeout'] == 3


# --- errors --------------------------------------------------------------------

def test_unknown_item_key_names_item_keys_and_accepted_options():
    with pytest.raises(AnsibleFilterError) as err:
        flink_job_params(dict(JOB, jarfile='/x.jar', paralelism=2))
    msg = str(err.value)
    assert "job 'etl'" in msg
    assert 'jarfile, paralelism' in msg
    for option in job_argument_spec():
        assert option in msg


def test_unknown_key_in_defaults():
    with pytest.raises(AnsibleFilterError, match=r'defaults have unknown option\(s\) jarfile'):
        flink_job_params(JOB, defaults={'jarfile': '/x'})


def test_defaults_cannot_set_a_name():
    with pytest.raises(AnsibleFilterError, match='defaults cannot set name'):
        flink_job_params(JOB, defaults={'name': 'x'})


def test_unknown_connection_key():
    with pytest.raises(AnsibleFilterError) as err:
        flink_job_params(JOB, connection={'ca_file': '/x', 'validate_certs': False})
    msg = str(err.value)
    assert 'connection options have unknown key(s) ca_file' in msg
    assert 'request_timeout' in msg and 'ca_path' in msg


def test_url_in_connection_is_an_error():
    with pytest.raises(AnsibleFilterError, match='cannot set url'):
        flink_job_params(JOB, connection={'url': 'http://x'})


def test_job_options_are_not_connection_options():
    with pytest.raises(AnsibleFilterError, match=r'unknown key\(s\) parallelism'):
        flink_job_params(JOB, connection={'parallelism': 2})


def test_connection_options_other_than_wait_timeout_are_not_job_options():
    with pytest.raises(AnsibleFilterError, match=r"job 'etl' has unknown option\(s\) ca_path, url"):
        flink_job_params(dict(JOB, ca_path='/x', url='http://x'))


def test_missing_name():
    with pytest.raises(AnsibleFilterError, match='has no name'):
        flink_job_params({'jar': '/x'})
    with pytest.raises(AnsibleFilterError, match=r'the job \(list item 1\) has no name'):
        flink_job_params([JOB, {'jar': '/x', 'name': ''}])


def test_present_without_jar_fails_like_the_module():
    with pytest.raises(AnsibleFilterError, match="job 'x' with state=present needs one of jar, python, sql, sql_file"):
        flink_job_params({'name': 'x'})
    with pytest.raises(AnsibleFilterError, match="state=upgraded needs one of jar, python, sql, sql_file"):
        flink_job_params({'name': 'x'}, defaults={'state': 'upgraded'})
    assert flink_job_params({'name': 'x', 'state': 'absent'}) == {'name': 'x', 'state': 'absent'}
    assert flink_job_params({'name': 'x'}, defaults={'jar': '/j'})['jar'] == '/j'


def test_a_sql_job_needs_no_jar_and_takes_no_jar():
    assert flink_job_params({'name': 'x', 'sql': 'INSERT INTO t SELECT 1'})['sql'] == 'INSERT INTO t SELECT 1'
    assert flink_job_params({'name': 'x', 'sql_file': '/q.sql'}, defaults={'state': 'upgraded'})['sql_file'] == '/q.sql'
    with pytest.raises(AnsibleFilterError, match="job 'x' sets jar, sql, which exclude each other"):
        flink_job_params({'name': 'x', 'sql': 'INSERT INTO t SELECT 1'}, defaults={'jar': '/j'})


def test_values_never_appear_in_errors():
    with pytest.raises(AnsibleFilterError) as err:
        flink_job_params([dict(JOB, secret_args=['TOPSECRET-1'], bogus='TOPSECRET-2')],
                         connection={'url_password': 'TOPSECRET-3', 'nope': 'TOPSECRET-4'})
    assert 'TOPSECRET' not in str(err.value)


def test_not_a_dict():
    with pytest.raises(AnsibleFilterError, match='expects a job'):
        flink_job_params('name=etl')
    with pytest.raises(AnsibleFilterError, match='defaults must be a dictionary'):
        flink_job_params(JOB, defaults=['x'])
    with pytest.raises(AnsibleFilterError, match='connection must be a dictionary'):
        flink_job_params(JOB, connection='x')


# --- a list of jobs ----------------------------------------------------------------

def test_list_returns_params_for_every_job():
    jobs = [dict(JOB), {'name': 'other', 'state': 'absent'}]
    assert flink_job_params(jobs, defaults={'config': {'a': 1}}, url='http://x') == [
        dict(JOB, url='http://x', config={'a': 1}),
        {'name': 'other', 'state': 'absent', 'url': 'http://x', 'config': {'a': 1}},
    ]
    assert flink_job_params([]) == []


def test_list_duplicate_names():
    with pytest.raises(AnsibleFilterError, match=r"job name 'etl' is used 2 times \(list items 0, 2\)"):
        flink_job_params([JOB, {'name': 'b', 'state': 'absent'}, JOB])


def test_list_reports_every_problem_at_once():
    with pytest.raises(AnsibleFilterError) as err:
        flink_job_params([dict(JOB, foo=1), 'etl', {'jar': '/x'}, dict(JOB)], connection={'bar': 1})
    msg = str(err.value)
    assert "job 'etl' (list item 0) has unknown option(s) foo" in msg
    assert 'the job (list item 1) is a str, not a dictionary' in msg
    assert 'the job (list item 2) has no name' in msg
    assert "job name 'etl' is used 2 times (list items 0, 3)" in msg
    assert 'unknown key(s) bar' in msg


# --- plugin loading ----------------------------------------------------------------

def test_filter_is_registered():
    assert FilterModule().filters()['flink_job_params'] is flink_job_params


def _load_by_path(name):
    path = os.path.join(os.path.dirname(plugin.__file__), 'flink_job_params.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loaded_by_file_path_it_works_the_same():
    module = _load_by_path('flinkops_filter_flink_job_params_by_path')
    assert module.job_options() == plugin.job_options()
    assert module.flink_job_params(dict(JOB, config={'b': 2}), defaults={'config': {'a': 1}})['config'] == \
        {'a': 1, 'b': 2}


def test_fallback_loads_the_module_utils_files_next_to_it(monkeypatch):
    from ansible_collections.flinkops.flink.plugins import module_utils
    for name in ('_job_spec', '_common'):
        monkeypatch.delattr(module_utils, name, raising=False)
        monkeypatch.setitem(sys.modules, 'ansible_collections.flinkops.flink.plugins.module_utils.' + name, None)
    module = _load_by_path('flinkops_filter_flink_job_params_fallback')
    assert module._job_spec.__name__ != 'ansible_collections.flinkops.flink.plugins.module_utils._job_spec'
    assert os.path.samefile(module._job_spec.__file__, os.path.join(
        os.path.dirname(os.path.dirname(plugin.__file__)), 'module_utils', '_job_spec.py'))
    assert module.job_options() == plugin.job_options()
    assert module.connection_options() == plugin.connection_options()
