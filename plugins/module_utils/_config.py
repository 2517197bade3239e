# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""Flink configuration: flat keys, string values Flink parses back, secrets.

One implementation for the ``flink_flatten_config`` filter (config.yaml of the
``flink_cluster`` role) and the ``flink_job`` module (``flinkConfiguration`` of a
run request).

Values are rendered the way Flink's own ``ConfigurationUtils.convertToString``
writes them in its legacy (pre-YAML) syntax, which Flink 1.20 and 2.x still read
back (checked against the classes of 1.20.3 and 2.3.0):

* list: items joined with ``;``
* map: ``key:value`` entries joined with ``,``
* an item, key or value that holds the separator, ``'`` or ``"`` is wrapped in
  single quotes, with every ``'`` inside doubled (``StructuredOptionsSplitter``
  ``escapeWithSingleQuote`` / ``splitEscaped``). A map entry is quoted for
  ``:`` first, then the whole ``key:value`` for ``,``.

On top of Flink's own rule this module also quotes what Flink's writer leaves
bare but its reader would change: the empty string (dropped or a broken map
entry), leading or trailing white space (trimmed), control characters, and a
leading YAML indicator (Flink 1.19+ with config.yaml and 2.x first try to read
list and map values as YAML; ``[a]`` or ``- a`` would come back as a YAML list).
Quoting is always read back verbatim, so this never changes a value.

Sensitive keys follow Flink's ``GlobalConfiguration.isSensitive``: a key is
sensitive when its lower-cased form contains one of ``SENSITIVE_KEYS``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import hashlib
import math
import os

from collections.abc import Mapping

# Union of GlobalConfiguration.SENSITIVE_KEYS in Flink 1.20.3 and 2.3.0 (2.x adds 'api-key').
SENSITIVE_KEYS = (
    'password',
    'secret',
    'fs.azure.account.key',
    'apikey',
    'api-key',
    'auth-params',
    'service-key',
    'token',
    'basic-auth',
    'jaas.config',
    'http-headers',
)

# GlobalConfiguration.HIDDEN_CONTENT
HIDDEN = '******'

LIST_SEPARATOR = ';'
MAP_ENTRY_SEPARATOR = ','
MAP_KV_SEPARATOR = ':'

# A value starting with one of these may be read as YAML structure by Flink's
# YAML-first parsing of list and map options.
_YAML_INDICATORS = frozenset('[]{}#&*!|>%@`')
_YAML_INDICATORS_BEFORE_SPACE = frozenset('-?:')

_DIGEST_DOMAIN = b'flinkops.flink/secret-digest/v1\x00'


class ConfigError(ValueError):
    """A configuration the module cannot turn into Flink configuration; the message is for the user."""


# Flattening ---------------------------------------------------------------------


def _canon(value):
    """A comparable form of a leaf value that tells 1, 1.0, True and '1' apart."""
    if value is None:
        return ('none',)
    if isinstance(value, bool):
        return ('bool', value)
    if isinstance(value, int):
        return ('int', value)
    if isinstance(value, float):
        return ('float', value)
    if isinstance(value, bytes):
        return ('str', value.decode('utf-8', 'replace'))
    if isinstance(value, str):
        return ('str', str(value))
    if isinstance(value, (list, tuple)):
        return ('list', tuple(_canon(v) for v in value))
    if isinstance(value, Mapping):
        return ('map', tuple(sorted((str(k), _canon(v)) for k, v in value.items())))
    return ('other', str(value))


def _flatten_into(out, data, prefix):
    for key, value in data.items():
        name = '%s.%s' % (prefix, key) if prefix else str(key)
        if isinstance(value, Mapping):
            _flatten_into(out, value, name)
        elif name in out and _canon(out[name]) != _canon(value):
            # The values are not in the message: the key may be sensitive.
            raise ConfigError('config key %s is set twice with different values (as a nested key and as a flat '
                              'key, or both ways nested); keep one' % name)
        else:
            out[name] = value


def flatten(data, prefix=''):
    """Nested dicts as flat ``a.b.c`` keys (config.yaml and Flink accept both forms).

    Keys become strings; values are kept as they are. A key reached twice (for example
    ``{'a': {'b': 1}, 'a.b': 2}``) must carry the same value both times, or ConfigError.
    """
    if not isinstance(data, Mapping):
        raise ConfigError('Flink configuration must be a dictionary, got %s' % type(data).__name__)
    out = {}
    _flatten_into(out, data, prefix)
    return out


# Rendering ----------------------------------------------------------------------


def _null(key):
    return ConfigError('config key %s has no value (null); remove it or give a value' % key)


def _needs_quotes(text, separators):
    if text == '':
        return True
    if "'" in text or '"' in text:
        return True
    if any(sep in text for sep in separators):
        return True
    # Flink trims unquoted items (String.trim: every char <= U+0020) and skips leading white space.
    if ord(text[0]) <= 0x20 or ord(text[-1]) <= 0x20 or text[0].isspace() or text[-1].isspace():
        return True
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in text):
        return True
    first = text[0]
    if first in _YAML_INDICATORS:
        return True
    if first in _YAML_INDICATORS_BEFORE_SPACE and (len(text) == 1 or text[1].isspace() or text[:3] == '---'):
        return True
    return False


def _escape(text, separators):
    """StructuredOptionsSplitter.escapeWithSingleQuote, plus the cases Flink's reader would alter."""
    if _needs_quotes(text, separators):
        return "'" + text.replace("'", "''") + "'"
    return text


def _scalar(key, value):
    if value is None:
        raise _null(key)
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return 'NaN'
        if math.isinf(value):
            return 'Infinity' if value > 0 else '-Infinity'
        return repr(value)
    if isinstance(value, bytes):
        return value.decode('utf-8')
    return str(value)


def _render_list(key, items):
    parts = []
    for index, item in enumerate(items):
        if item is None:
            raise _null('%s[%d]' % (key, index))
        parts.append(_escape(render_value(key, item), (LIST_SEPARATOR,)))
    return LIST_SEPARATOR.join(parts)


def _render_map(key, data):
    entries = []
    # Nested dicts inside a map become dotted map keys, as in config.yaml.
    for name, value in flatten(data).items():
        if value is None:
            raise _null('%s.%s' % (key, name))
        k = _escape(name, (MAP_KV_SEPARATOR,))
        v = _escape(render_value('%s.%s' % (key, name), value), (MAP_KV_SEPARATOR,))
        entries.append((name, _escape(k + MAP_KV_SEPARATOR + v, (MAP_ENTRY_SEPARATOR,))))
    return MAP_ENTRY_SEPARATOR.join(entry for _name, entry in sorted(entries))


def render_value(key, value):
    """The string Flink parses back to ``value`` (``key`` only names the value in errors).

    bool -> ``true``/``false``; int, float -> their decimal form; str -> itself;
    list/tuple -> ``a;b``; dict -> ``k1:v1,k2:v2`` sorted by key. Items, keys and values
    are quoted as Flink's StructuredOptionsSplitter expects. None -> ConfigError.
    """
    if value is None:
        raise _null(key)
    if isinstance(value, (list, tuple)):
        return _render_list(key, value)
    if isinstance(value, Mapping):
        return _render_map(key, value)
    return _scalar(key, value)


def normalize_config(config):
    """Flattened and rendered: a dict of str -> str, sorted by key. None or empty -> {}."""
    if not config:
        if config is None or isinstance(config, Mapping):
            return {}
    flat = flatten(config)
    return dict((k, render_value(k, flat[k])) for k in sorted(flat))


# Sensitive keys -----------------------------------------------------------------


def is_sensitive(key):
    """GlobalConfiguration.isSensitive: the lower-cased key contains one of SENSITIVE_KEYS."""
    if key is None:
        return False
    lowered = str(key).lower()
    return any(word in lowered for word in SENSITIVE_KEYS)


def mask_config(config):
    """A flat copy of ``config`` with the value of every sensitive key replaced by HIDDEN."""
    if not config:
        return {}
    flat = flatten(config)
    return dict((k, HIDDEN if is_sensitive(k) else v) for k, v in flat.items())


def split_sensitive(config):
    """(public, sensitive): the flat config split by is_sensitive of each key."""
    public, sensitive = {}, {}
    if config:
        for key, value in flatten(config).items():
            (sensitive if is_sensitive(key) else public)[key] = value
    return public, sensitive


def new_salt():
    """16 random hex digits (64 bits) for secret_digest."""
    return binascii.hexlify(os.urandom(8)).decode('ascii')


def _field(data):
    return str(len(data)).encode('ascii') + b':' + data + b','


# PBKDF2 rounds for secret digests: the record is readable by anyone with REST access, so a guess at a weak
# secret must cost real work (about 40 ms per digest here), not one sha256.
SECRET_DIGEST_ROUNDS = 100000


def secret_digest(value, salt):
    """Hex PBKDF2-HMAC-SHA256 of the value, salted with a domain tag and the salt (length-prefixed).

    ``value`` is a string (a rendered config value or the joined secret args); other
    values are rendered first. Equal value and salt give the same digest.
    """
    if not isinstance(value, (str, bytes)):
        value = render_value('secret', value)
    if isinstance(value, str):
        value = value.encode('utf-8')
    salt = (salt or '')
    if isinstance(salt, str):
        salt = salt.encode('utf-8')
    return binascii.hexlify(hashlib.pbkdf2_hmac('sha256', _field(value), _DIGEST_DOMAIN + _field(salt),
                                                SECRET_DIGEST_ROUNDS)).decode('ascii')
