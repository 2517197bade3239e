# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""The Flink configuration of each process of the ``flink_cluster`` role.

One implementation behind the ``flink_cluster_process_conf`` filter. ``process_conf``
takes the distribution's configuration (``base``: its ``config.yaml``, or for Flink 1.18
its ``flink-conf.yaml`` as ``parse_legacy`` reads it) and one ``settings`` dict the role
builds from its variables, and returns the flat configuration of each process::

    {'jobmanager': {...}, 'taskmanager': {...}, 'zookeeper': {...}}

Each process starts from ``base`` (flattened); later layers win, key by key:

* jobmanager: common, JobManager settings, JobManager HA settings (HA only), REST
  TLS settings (``rest_ssl`` only), the user's configuration;
* taskmanager: common, TaskManager settings, the user's configuration;
* zookeeper: only the user's ``env.*`` keys (ZooKeeper reads only the JVM
  settings from Flink's configuration file).

"common" is ``io.tmp.dirs``, ``state.savepoints.dir``, ``state.checkpoints.dir``
and either ``jobmanager.rpc.address``/``jobmanager.rpc.port`` of the first
JobManager (no HA) or the ``high-availability.*`` settings (ZooKeeper HA).

Value types: ports and slots are ints (``high-availability.jobmanager.port`` is a
string: Flink reads it as a port or a port range), booleans are bools, and the
other settings (addresses, directories, memory sizes, ...) are passed on as given.
The REST store passwords are never part of the result; the role adds them when it
writes the JobManager's file.

``settings`` keys (see ``SETTINGS``; an unknown key is an error, to catch typos):

``ha``
    ``none`` or ``zookeeper``. Always required.
``instance_dir``
    The instance directory: ``io.tmp.dirs`` is ``<instance_dir>/tmp``,
    ``web.tmpdir`` ``<instance_dir>/web``, ``web.upload.dir`` ``<instance_dir>/jars``.
``savepoints_dir``, ``checkpoints_dir``
    ``state.savepoints.dir``, ``state.checkpoints.dir``.
``advertised_address``
    ``rest.address``, ``taskmanager.host``, and with HA ``jobmanager.rpc.address``.
``bind_address``
    ``jobmanager.bind-host``, ``rest.bind-address``, ``taskmanager.bind-host``.
``rest_port``
    ``rest.port`` (int).
``jobmanager_memory``, ``taskmanager_memory``
    ``jobmanager.memory.process.size``, ``taskmanager.memory.process.size``.
``taskmanager_slots``
    ``taskmanager.numberOfTaskSlots`` (int, at least 1).
``jm0``
    The first JobManager: a dict with ``address``, ``rpc_port`` and ``zk_port``
    (other keys are ignored). Without HA ``jobmanager.rpc.address`` and
    ``jobmanager.rpc.port`` (``address``, ``rpc_port``); with HA and an empty
    quorum the quorum is ``<address>:<zk_port>``. Required in those two cases.
``rpc_port``
    This host's RPC port: ``high-availability.jobmanager.port`` (a string). HA only.
``ha_storage_dir``, ``ha_cluster_id``
    ``high-availability.storageDir``, ``high-availability.cluster-id``. HA only.
``zookeeper_quorum``
    ``high-availability.zookeeper.quorum``; empty (the default) means the bundled
    ZooKeeper on the first JobManager. HA only.
``rest_ssl``
    REST API over TLS (a boolean or a boolean string). Always required.
``rest_ssl_client_auth``
    ``security.ssl.rest.authentication-enabled`` (a boolean). With ``rest_ssl``.
``rest_keystore``
    ``security.ssl.rest.keystore``. With ``rest_ssl``.
``rest_truststore``
    ``security.ssl.rest.truststore``; empty (the default) sets none. With ``rest_ssl``.
``rest_ssl_algorithms``
    ``security.ssl.algorithms``. With ``rest_ssl``.
``user_config``
    The user's Flink configuration, nested or flat; it wins over everything else.
    Optional (``None`` or missing is ``{}``).

Settings that the chosen mode does not use may be given and are then not checked.

The file Flink reads
--------------------

Flink 1.19 and later read ``conf/config.yaml`` (standard YAML; the role writes it
with ``to_nice_yaml``). Flink 1.18 reads only ``conf/flink-conf.yaml``, in Flink's
legacy flat format (``GlobalConfiguration.loadYAMLResource``): per line, everything
from the first ``#`` on is a comment; the rest, trimmed, is split at the first
``": "`` into a key and a value, both trimmed and taken verbatim (never YAML-unquoted);
a line without ``": "`` or with an empty key or value is skipped; a later line wins.
``legacy_text`` (the ``flink_to_legacy_conf`` filter) writes a configuration in that
format and ``parse_legacy`` (``flink_from_legacy_conf``) reads one, such as the
distribution's own ``flink-conf.yaml``, the way Flink does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from collections.abc import Mapping

from ansible.module_utils.parsing.convert_bool import boolean

try:
    from ansible_collections.flinkops.flink.plugins.module_utils import _config
except ImportError:
    # Loaded by file path (outside any collection path, as the filter's own fallback
    # does): take the _config file next to this one, so there is still one flatten.
    import importlib.util
    import os

    _path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_config.py')
    _spec = importlib.util.spec_from_file_location('flinkops_flink_module_utils_config', _path)
    _config = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_config)

HA_MODES = ('none', 'zookeeper')

# Every key process_conf knows; required or not depends on ha, rest_ssl and zookeeper_quorum.
SETTINGS = (
    'ha',
    'instance_dir',
    'savepoints_dir',
    'checkpoints_dir',
    'advertised_address',
    'bind_address',
    'rest_port',
    'jobmanager_memory',
    'taskmanager_memory',
    'taskmanager_slots',
    'jm0',
    'rpc_port',
    'ha_storage_dir',
    'ha_cluster_id',
    'zookeeper_quorum',
    'rest_ssl',
    'rest_ssl_client_auth',
    'rest_keystore',
    'rest_truststore',
    'rest_ssl_algorithms',
    'user_config',
)

_DIGITS = re.compile(r'^\s*[0-9]+\s*$')


class SettingsError(ValueError):
    """Settings process_conf cannot turn into a configuration; the message is for the user."""


class LegacyConfError(ValueError):
    """A configuration that Flink 1.18's flink-conf.yaml cannot hold; the message names the key, never the value."""


# Checks ---------------------------------------------------------------------------


def _type_name(value):
    return type(value).__name__


def _require(settings, key, why=None):
    if key not in settings:
        raise SettingsError('setting %s is missing%s' % (key, (' (needed %s)' % why) if why else ''))
    return settings[key]


def _text(value, name, allow_empty=False):
    """A string, passed on as it is (empty only with allow_empty)."""
    if not isinstance(value, str):
        raise SettingsError('%s must be a string, got %s' % (name, _type_name(value)))
    if not allow_empty and not value.strip():
        raise SettingsError('%s must not be empty' % name)
    return value


def _size(value, name):
    """A memory size: a non-empty string (1600m) or a number of bytes, passed on as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise SettingsError('%s must be a positive size, got %d' % (name, value))
        return value
    return _text(value, name)


def _integer(value, name):
    """Jinja's ``| int`` for the values that make sense: an int or a string of digits."""
    if isinstance(value, bool):
        raise SettingsError('%s must be an integer, got bool' % name)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str) and _DIGITS.match(value):
        return int(value)
    if isinstance(value, str):
        raise SettingsError('%s must be an integer, got %r' % (name, value))
    raise SettingsError('%s must be an integer, got %s' % (name, _type_name(value)))


def _port(value, name):
    port = _integer(value, name)
    if not 1 <= port <= 65535:
        raise SettingsError('%s must be a port number (1-65535), got %d' % (name, port))
    return port


def _bool(value, name):
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise SettingsError('%s must be a boolean, got %r' % (name, value))


def _flat(value, name):
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError('%s must be a dictionary of Flink settings, got %s' % (name, _type_name(value)))
    try:
        return _config.flatten(value)
    except _config.ConfigError as exc:
        raise SettingsError('%s: %s' % (name, exc))


def _jm0(settings, needed, why):
    jm0 = _require(settings, 'jm0', why)
    if not isinstance(jm0, Mapping):
        raise SettingsError('jm0 (the first JobManager) must be a dictionary, got %s' % _type_name(jm0))
    out = {}
    for key in needed:
        if key not in jm0:
            raise SettingsError('jm0.%s (the first JobManager) is missing (needed %s)' % (key, why))
        if key == 'address':
            out[key] = _text(jm0[key], 'jm0.address')
        else:
            out[key] = _port(jm0[key], 'jm0.%s' % key)
    return out


# The configuration ----------------------------------------------------------------


def process_conf(base, settings):
    """``{'jobmanager': {...}, 'taskmanager': {...}, 'zookeeper': {...}}``: flat configurations.

    ``base`` is the distribution's configuration (flat or nested; None is empty),
    ``settings`` the dict described in this module's docstring. Raises SettingsError.
    """
    if not isinstance(settings, Mapping):
        raise SettingsError('settings must be a dictionary, got %s' % _type_name(settings))
    unknown = sorted(str(k) for k in settings if k not in SETTINGS)
    if unknown:
        raise SettingsError('unknown setting(s) %s; known: %s' % (', '.join(unknown), ', '.join(sorted(SETTINGS))))

    base = _flat(base, 'the base configuration')

    ha = _require(settings, 'ha')
    if ha not in HA_MODES:
        raise SettingsError('ha must be one of %s, got %r' % (', '.join(HA_MODES), ha))
    ha = ha == 'zookeeper'
    rest_ssl = _bool(_require(settings, 'rest_ssl'), 'rest_ssl')

    instance_dir = _text(_require(settings, 'instance_dir'), 'instance_dir')
    advertised = _text(_require(settings, 'advertised_address'), 'advertised_address')
    bind = _text(_require(settings, 'bind_address'), 'bind_address')

    common = {
        'io.tmp.dirs': instance_dir + '/tmp',
        'state.savepoints.dir': _text(_require(settings, 'savepoints_dir'), 'savepoints_dir'),
        'state.checkpoints.dir': _text(_require(settings, 'checkpoints_dir'), 'checkpoints_dir'),
    }
    jm_ha = {}
    if ha:
        why = 'with ha zookeeper'
        quorum = _text(settings.get('zookeeper_quorum', ''), 'zookeeper_quorum', allow_empty=True)
        if not quorum:
            jm0 = _jm0(settings, ('address', 'zk_port'), 'with ha zookeeper and an empty zookeeper_quorum')
            quorum = '%s:%d' % (jm0['address'], jm0['zk_port'])
        common.update({
            'high-availability.type': 'zookeeper',
            'high-availability.storageDir': _text(_require(settings, 'ha_storage_dir', why), 'ha_storage_dir'),
            'high-availability.cluster-id': _text(_require(settings, 'ha_cluster_id', why), 'ha_cluster_id'),
            'high-availability.zookeeper.quorum': quorum,
        })
        jm_ha = {
            'jobmanager.rpc.address': advertised,
            'high-availability.jobmanager.port': str(_port(_require(settings, 'rpc_port', why), 'rpc_port')),
        }
    else:
        jm0 = _jm0(settings, ('address', 'rpc_port'), 'with ha none')
        common.update({
            'jobmanager.rpc.address': jm0['address'],
            'jobmanager.rpc.port': jm0['rpc_port'],
        })

    jm = {
        'jobmanager.bind-host': bind,
        'jobmanager.memory.process.size': _size(_require(settings, 'jobmanager_memory'), 'jobmanager_memory'),
        'rest.address': advertised,
        'rest.bind-address': bind,
        'rest.port': _port(_require(settings, 'rest_port'), 'rest_port'),
        'web.tmpdir': instance_dir + '/web',
        'web.upload.dir': instance_dir + '/jars',
    }
    jm_tls = {}
    if rest_ssl:
        why = 'with rest_ssl'
        jm_tls = {
            'security.ssl.rest.enabled': True,
            'security.ssl.rest.authentication-enabled': _bool(
                _require(settings, 'rest_ssl_client_auth', why), 'rest_ssl_client_auth'),
            'security.ssl.rest.keystore': _text(_require(settings, 'rest_keystore', why), 'rest_keystore'),
            'security.ssl.algorithms': _text(_require(settings, 'rest_ssl_algorithms', why), 'rest_ssl_algorithms'),
        }
        truststore = _text(settings.get('rest_truststore', ''), 'rest_truststore', allow_empty=True)
        if truststore:
            jm_tls['security.ssl.rest.truststore'] = truststore

    slots = _integer(_require(settings, 'taskmanager_slots'), 'taskmanager_slots')
    if slots < 1:
        raise SettingsError('taskmanager_slots must be at least 1, got %d' % slots)
    tm = {
        'taskmanager.bind-host': bind,
        'taskmanager.host': advertised,
        'taskmanager.numberOfTaskSlots': slots,
        'taskmanager.memory.process.size': _size(_require(settings, 'taskmanager_memory'), 'taskmanager_memory'),
    }

    user = _flat(settings.get('user_config'), 'user_config')

    return {
        'jobmanager': _merge(base, common, jm, jm_ha, jm_tls, user),
        'taskmanager': _merge(base, common, tm, user),
        'zookeeper': _merge(base, dict((k, v) for k, v in user.items() if k.startswith('env.'))),
    }


def _merge(*layers):
    """Like Ansible's ``combine``: later layers win key by key; a key keeps its first place."""
    out = {}
    for layer in layers:
        out.update(layer)
    return out


# Flink 1.18's flink-conf.yaml -----------------------------------------------------

LEGACY_COMMENT = '#'
LEGACY_SEPARATOR = ': '
# BufferedReader.readLine ends a line at any of these.
_LINE_BREAKS = re.compile(r'\r\n|\r|\n')


def _java_trim(text):
    """String.trim: every character up to U+0020 off both ends (Python's strip() takes other ones)."""
    start, end = 0, len(text)
    while start < end and ord(text[start]) <= 0x20:
        start += 1
    while end > start and ord(text[end - 1]) <= 0x20:
        end -= 1
    return text[start:end]


def _legacy_key(key):
    if not isinstance(key, str):
        raise LegacyConfError('config key %r must be a string' % (key,))
    bad = None
    if not _java_trim(key):
        bad = 'is empty'
    elif _java_trim(key) != key:
        bad = 'starts or ends with white space'
    elif _LINE_BREAKS.search(key):
        bad = 'holds a line break'
    elif LEGACY_COMMENT in key:
        bad = "holds '#', where Flink's flink-conf.yaml starts a comment"
    elif LEGACY_SEPARATOR in key:
        bad = "holds ': ', where Flink's flink-conf.yaml ends the key"
    if bad:
        raise LegacyConfError('config key %r %s; Flink 1.18 cannot read it from flink-conf.yaml' % (key, bad))
    return key


def _legacy_value(key, value):
    """The text after ``key: ``, or None when there is nothing Flink would read (an empty value)."""
    try:
        text = _config.render_value(key, value)
    except _config.ConfigError as exc:
        raise LegacyConfError(str(exc))
    # Flink trims the value (and the daemon scripts trim spaces): a trailing newline of a
    # folded YAML scalar, or spaces around it, mean nothing.
    text = _java_trim(text)
    if not text:
        return None
    # The value itself is never in the message: the key may be sensitive (a store password).
    if _LINE_BREAKS.search(text):
        raise LegacyConfError('config key %s: its value holds a line break, which Flink 1.18 cannot read from '
                              'flink-conf.yaml (one key a line); write it on one line' % key)
    if LEGACY_COMMENT in text:
        raise LegacyConfError("config key %s: its value holds '#', where Flink 1.18's flink-conf.yaml starts a "
                              'comment, so Flink would read only what comes before it' % key)
    return text


def legacy_text(conf):
    """``conf`` as the text of Flink 1.18's ``flink-conf.yaml``: one ``key: value`` a line, sorted by key.

    ``conf`` is a Flink configuration, flat or nested (None is empty). Values are
    written as Flink's own legacy writer would (``_config.render_value``): strings
    verbatim (never quoted), booleans ``true``/``false``, numbers in decimal, lists
    ``a;b``, maps ``k1:v1,k2:v2``; leading and trailing white space is dropped (Flink
    trims it). A key whose value is then empty is left out: Flink skips such a line,
    so the key keeps Flink's default. Raises LegacyConfError for what the format
    cannot hold: a null value, a ``#`` or a line break in a value, a key that is
    empty, has white space around it or holds ``#``, ``": "`` or a line break.
    """
    if conf is None:
        conf = {}
    if not isinstance(conf, Mapping):
        raise LegacyConfError('the configuration must be a dictionary, got %s' % _type_name(conf))
    try:
        flat = _config.flatten(conf)
    except _config.ConfigError as exc:
        raise LegacyConfError(str(exc))
    lines = []
    for key in sorted(flat):
        value = _legacy_value(_legacy_key(key), flat[key])
        if value is not None:
            lines.append('%s%s%s' % (key, LEGACY_SEPARATOR, value))
    return ''.join(line + '\n' for line in lines)


def parse_legacy(text):
    """Flink 1.18's ``flink-conf.yaml`` as Flink reads it: a flat dict of strings, in file order.

    The mirror of ``GlobalConfiguration.loadYAMLResource``: ``#`` starts a comment
    anywhere on a line, key and value are split at the first ``": "`` and trimmed,
    lines without ``": "`` or with an empty key or value are skipped, and a key set
    twice keeps its last value. None or empty text is an empty configuration.
    """
    if text is None:
        return {}
    if isinstance(text, bytes):
        text = text.decode('utf-8')
    if not isinstance(text, str):
        raise LegacyConfError('flink-conf.yaml must be text, got %s' % _type_name(text))
    out = {}
    for line in _LINE_BREAKS.split(text):
        conf = _java_trim(line.split(LEGACY_COMMENT, 1)[0])
        if not conf:
            continue
        parts = conf.split(LEGACY_SEPARATOR, 1)
        if len(parts) != 2:
            continue
        key, value = _java_trim(parts[0]), _java_trim(parts[1])
        if key and value:
            out[key] = value
    return out
