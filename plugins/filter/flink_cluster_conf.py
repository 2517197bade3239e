# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

_LOADED = []


def _impl():
    """``plugins/module_utils/_cluster_conf.py``, imported on first use.

    Ansible imports every filter file of a collection to find any one filter by its
    name, so importing this file must cost next to nothing.
    """
    if not _LOADED:
        try:
            from ansible_collections.flinkops.flink.plugins.module_utils import _cluster_conf as impl
        except ImportError:
            # Loaded by file path (the test harness does so, outside any collection path):
            # take the module_utils file next to this one, so there is still one implementation.
            import importlib.util
            import os

            path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'module_utils',
                                '_cluster_conf.py')
            spec = importlib.util.spec_from_file_location('flinkops_flink_module_utils_cluster_conf', path)
            impl = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(impl)
        _LOADED.append(impl)
    return _LOADED[0]


def flink_cluster_process_conf(base, settings):
    """The flat Flink configuration of each process of the flink_cluster role.

    ``base`` is the distribution's configuration: its ``config.yaml`` (flattened, or
    nested), or for Flink 1.18 its ``flink-conf.yaml`` read by ``flink_from_legacy_conf``;
    ``None`` is empty. ``settings`` is one dict; its keys, and the role variable each comes from:

    ================================  =====================================================
    ``ha``                            ``flink_cluster_ha`` (``none`` or ``zookeeper``)
    ``instance_dir``                  ``flink_cluster_instance_dir``
    ``savepoints_dir``                ``flink_cluster_savepoints_dir``
    ``checkpoints_dir``               ``flink_cluster_checkpoints_dir``
    ``advertised_address``            ``flink_cluster_advertised_address``
    ``bind_address``                  ``flink_cluster_bind_address``
    ``rest_port``                     ``flink_cluster_rest_port``
    ``jobmanager_memory``             ``flink_cluster_jobmanager_memory``
    ``taskmanager_memory``            ``flink_cluster_taskmanager_memory``
    ``taskmanager_slots``             ``flink_cluster_taskmanager_slots``
    ``jm0``                           the first JobManager's ``__flink_cluster_me``
                                      (``address``, ``rpc_port``, ``zk_port``)
    ``rpc_port``                      ``flink_cluster_rpc_port`` (HA)
    ``ha_storage_dir``                ``flink_cluster_ha_storage_dir`` (HA)
    ``ha_cluster_id``                 ``flink_cluster_ha_cluster_id`` (HA)
    ``zookeeper_quorum``              ``flink_cluster_zookeeper_quorum`` (HA; may be empty)
    ``rest_ssl``                      ``flink_cluster_rest_ssl``
    ``rest_ssl_client_auth``          ``flink_cluster_rest_ssl_client_auth`` (TLS)
    ``rest_keystore``                 ``__flink_cluster_rest_keystore`` (TLS)
    ``rest_truststore``               ``__flink_cluster_rest_truststore`` (TLS; may be empty)
    ``rest_ssl_algorithms``           ``flink_cluster_rest_ssl_algorithms`` (TLS)
    ``user_config``                   ``flink_cluster_config`` (nested or flat; wins)
    ================================  =====================================================

    Returns ``{'jobmanager': {...}, 'taskmanager': {...}, 'zookeeper': {...}}``; see
    ``plugins/module_utils/_cluster_conf.py`` for what goes into each. Invalid or
    missing settings raise AnsibleFilterError.
    """
    impl = _impl()
    try:
        return impl.process_conf(base, settings)
    except impl.SettingsError as exc:
        raise AnsibleFilterError('flink_cluster_process_conf: %s' % exc)


def flink_to_legacy_conf(conf):
    """``conf`` (flat or nested) as the text of Flink 1.18's ``flink-conf.yaml``.

    One ``key: value`` a line, sorted by key, values never quoted (Flink's legacy
    parser takes them verbatim): booleans ``true``/``false``, lists ``a;b``, maps
    ``k1:v1,k2:v2``. An empty value leaves its key out. What the format cannot hold
    (a ``#`` or a line break in a value, a null) raises AnsibleFilterError naming the
    key; see ``plugins/module_utils/_cluster_conf.py`` (``legacy_text``).
    """
    impl = _impl()
    try:
        return impl.legacy_text(conf)
    except impl.LegacyConfError as exc:
        raise AnsibleFilterError('flink_to_legacy_conf: %s' % exc)


def flink_from_legacy_conf(text):
    """The text of a ``flink-conf.yaml`` as Flink 1.18 reads it: a flat dict of strings."""
    impl = _impl()
    try:
        return impl.parse_legacy(text)
    except impl.LegacyConfError as exc:
        raise AnsibleFilterError('flink_from_legacy_conf: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {
            'flink_cluster_process_conf': flink_cluster_process_conf,
            'flink_to_legacy_conf': flink_to_legacy_conf,
            'flink_from_legacy_conf': flink_from_legacy_conf,
        }
