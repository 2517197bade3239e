# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

try:
    from ansible_collections.flinkops.flink.plugins.module_utils import _config
except ImportError:
    # Loaded by file path (the test harness does so, outside any collection path):
    # take the module_utils file next to this one, so there is still one implementation.
    import importlib.util
    import os

    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'module_utils', '_config.py')
    _spec = importlib.util.spec_from_file_location('flinkops_flink_module_utils_config', _path)
    _config = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_config)


def flink_flatten_config(data, prefix=''):
    """Flink configuration as flat ``a.b.c: value`` keys (config.yaml accepts nested and flat keys)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AnsibleFilterError('flink_flatten_config expects a dictionary, got %s' % type(data).__name__)
    try:
        return _config.flatten(data, prefix)
    except _config.ConfigError as exc:
        raise AnsibleFilterError('flink_flatten_config: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'flink_flatten_config': flink_flatten_config}
