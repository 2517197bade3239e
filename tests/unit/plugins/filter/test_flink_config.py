import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.flinkops.flink.plugins.filter.flink_config import flink_flatten_config


def test_nested_keys_become_flat():
    nested = {'env': {'java': {'opts': {'all': '--add-opens=x'}}}, 'rest.port': 8081,
              'taskmanager': {'numberOfTaskSlots': 2, 'memory': {'process.size': '1728m'}}}
    assert flink_flatten_config(nested) == {
        'env.java.opts.all': '--add-opens=x',
        'rest.port': 8081,
        'taskmanager.numberOfTaskSlots': 2,
        'taskmanager.memory.process.size': '1728m',
    }


def test_lists_and_empty_input():
    assert flink_flatten_config({'a': {'b': [1, 2]}}) == {'a.b': [1, 2]}
    assert flink_flatten_config(None) == {}
    assert flink_flatten_config({}) == {}


def test_not_a_dict_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match='expects a dictionary'):
        flink_flatten_config(['rest.port'])


def test_not_a_dict_is_a_clear_error_for_strings_too():
    with pytest.raises(AnsibleFilterError, match='expects a dictionary, got str'):
        flink_flatten_config('rest.port: 1')


def test_one_key_two_values_is_an_error_naming_the_key():
    with pytest.raises(AnsibleFilterError, match=r'rest\.port is set twice'):
        flink_flatten_config({'rest': {'port': 8081}, 'rest.port': 8082})
    assert flink_flatten_config({'rest': {'port': 8081}, 'rest.port': 8081}) == {'rest.port': 8081}


def test_filter_and_module_utils_share_one_implementation():
    from ansible_collections.flinkops.flink.plugins.module_utils import _config
    data = {'a': {'b': {'c': 1}}, 'a.d': [1], 'e': None}
    assert flink_flatten_config(data) == _config.flatten(data) == {'a.b.c': 1, 'a.d': [1], 'e': None}
    assert flink_flatten_config({'x': 1}, 'p') == {'p.x': 1}


def test_filter_is_registered():
    from ansible_collections.flinkops.flink.plugins.filter.flink_config import FilterModule
    assert FilterModule().filters()['flink_flatten_config'] is flink_flatten_config
