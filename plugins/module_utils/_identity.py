# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""Deterministic job identity.

A Flink job id is 32 hex digits. flinkops.flink derives it from what the user
declared, so every run that wants the same job computes the same id::

    NNNNNNNNNNNNNNNN SSSSSSSS GGGGGGGG
    name hash (64 b) spec(32) generation (32 bits)

* name hash: sha256 of the job's ``name``; all instances of a job share it, so
  the module finds every instance of "its" job from ``GET /jobs/overview``
  alone, whatever spec it ran.
* spec: the first 32 bits of the sha256 of the canonical desired spec (jar
  content hash, entry class, args, parallelism, config): a live job whose id
  carries a different spec runs another version.
* generation: Flink refuses to run an id again once a job with that id ended,
  so when the last instance of this spec ended, the next submission takes the
  next generation. Every client that sees the same ended instance picks the
  same next generation.

Two concurrent or retried submissions of the same desired job therefore carry
the same id, and Flink rejects the second one as a duplicate.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import re

NAME_HASH_LEN = 16
SPEC_HASH_LEN = 8
GEN_LEN = 8
MAX_GENERATION = 0xFFFFFFFF

_JOB_ID = re.compile(r'^[0-9a-f]{32}$')


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _config_value(value):
    """Flink configuration values are strings; render YAML-ish Python values the way Flink writes them."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return ';'.join(_config_value(v) for v in value)
    if isinstance(value, dict):
        return ','.join('%s:%s' % (k, _config_value(v)) for k, v in sorted(value.items()))
    if value is None:
        return ''
    return str(value)


def normalize_config(config):
    return dict((str(k), _config_value(v)) for k, v in sorted((config or {}).items()))


def canonical_spec(jar_sha256, entry_class=None, args=None, parallelism=None, config=None):
    """The desired spec as a plain dict; equal specs give equal dicts."""
    return {
        'jar_sha256': jar_sha256,
        'entry_class': entry_class or None,
        'args': [str(a) for a in (args or [])],
        'parallelism': int(parallelism) if parallelism is not None else None,
        'config': normalize_config(config),
    }


def spec_hash(spec):
    data = json.dumps(spec, sort_keys=True, separators=(',', ':'), ensure_ascii=False)
    return hashlib.sha256(data.encode('utf-8')).hexdigest()


def name_hash(name):
    return hashlib.sha256(b'flinkops.flink/job-name\x00' + name.encode('utf-8')).hexdigest()[:NAME_HASH_LEN]


def job_id(name, spec_digest, generation=0):
    if not 0 <= generation <= MAX_GENERATION:
        raise ValueError('generation out of range: %r' % generation)
    return '%s%s%08x' % (name_hash(name), spec_digest[:SPEC_HASH_LEN], generation)


class ParsedId(object):
    __slots__ = ('job_id', 'name_hash', 'spec_prefix', 'generation')

    def __init__(self, jid):
        self.job_id = jid
        self.name_hash = jid[:NAME_HASH_LEN]
        self.spec_prefix = jid[NAME_HASH_LEN:NAME_HASH_LEN + SPEC_HASH_LEN]
        self.generation = int(jid[NAME_HASH_LEN + SPEC_HASH_LEN:], 16)


def parse_job_id(jid):
    jid = (jid or '').lower()
    if not _JOB_ID.match(jid):
        return None
    return ParsedId(jid)


def belongs_to(jid, name):
    """True when ``jid`` is an instance of the job called ``name`` under this scheme."""
    return (jid or '').lower().startswith(name_hash(name))


def runs_spec(jid, spec_digest):
    parsed = parse_job_id(jid)
    return parsed is not None and parsed.spec_prefix == spec_digest[:SPEC_HASH_LEN]


# The spec travels with the job ------------------------------------------------
#
# flink_job records the declared spec of every job it submits in the job's
# global job parameters (``pipeline.global-job-parameters``, key
# ``flinkops.spec``, base64url-encoded JSON), where ``GET /jobs/<id>/config``
# shows it under ``execution-config.user-config``. An upgrade reads it back to
# know how to restart the previous version. A program that sets its own global
# job parameters hides it; then the previous spec is unknown.

SPEC_PARAM = 'flinkops.spec'
GLOBAL_PARAMS_KEY = 'pipeline.global-job-parameters'


def encode_spec(spec, jar_name=None):
    payload = dict(spec, v=1)
    if jar_name:
        payload['jar_name'] = jar_name
    data = json.dumps(payload, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    return base64.urlsafe_b64encode(data).decode('ascii').rstrip('=')


def decode_spec(text):
    """The spec recorded with a job, or None if it is missing or unreadable."""
    if not text or not isinstance(text, str):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(text + '=' * (-len(text) % 4)).decode('utf-8'))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get('v') != 1 or 'jar_sha256' not in data:
        return None
    spec = canonical_spec(data['jar_sha256'], data.get('entry_class'), data.get('args'), data.get('parallelism'),
                          data.get('config'))
    return spec, data.get('jar_name')


def with_spec_param(config, encoded):
    """``config`` with the spec added to the global job parameters (the user's own ones are kept)."""
    out = dict(config)
    current = out.get(GLOBAL_PARAMS_KEY, '')
    out[GLOBAL_PARAMS_KEY] = ('%s,%s:%s' % (current, SPEC_PARAM, encoded)) if current else '%s:%s' % (SPEC_PARAM,
                                                                                                      encoded)
    return out
