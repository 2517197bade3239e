# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def flink_flatten_config(data, prefix=''):
    """Flink configuration as flat ``a.b.c: value`` keys (config.yaml accepts nested and flat keys)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AnsibleFilterError('flink_flatten_config expects a dictionary, got %s' % type(data).__name__)
    out = {}
    for key, value in data.items():
        name = '%s.%s' % (prefix, key) if prefix else str(key)
        if isinstance(value, dict):
            out.update(flink_flatten_config(value, name))
        else:
            out[name] = value
    return out


class FilterModule(object):
    def filters(self):
        return {'flink_flatten_config': flink_flatten_config}
