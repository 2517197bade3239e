# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

_LOADED = []


def _impl():
    """``plugins/module_utils/_config.py``, imported on first use.

    Ansible imports every filter file of a collection to find any one filter by its
    name, so importing this file must cost next to nothing.
    """
    if not _LOADED:
        try:
            from ansible_collections.flinkops.flink.plugins.module_utils import _config as impl
        except ImportError:
            # Loaded by file path (the test harness does so, outside any collection path):
            # take the module_utils file next to this one, so there is still one implementation.
            import importlib.util
            import os

            path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'module_utils',
                                '_config.py')
            spec = importlib.util.spec_from_file_location('flinkops_flink_module_utils_config', path)
            impl = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(impl)
        _LOADED.append(impl)
    return _LOADED[0]


def flink_flatten_config(data, prefix=''):
    """Flink configuration as flat ``a.b.c: value`` keys (config.yaml accepts nested and flat keys)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AnsibleFilterError('flink_flatten_config expects a dictionary, got %s' % type(data).__name__)
    impl = _impl()
    try:
        return impl.flatten(data, prefix)
    except impl.ConfigError as exc:
        raise AnsibleFilterError('flink_flatten_config: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'flink_flatten_config': flink_flatten_config}
