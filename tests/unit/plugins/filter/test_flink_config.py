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
