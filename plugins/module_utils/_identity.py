# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""Job identity and the record a job carries.

A Flink job id is 32 hex digits. flinkops.flink derives it from the declared
job *name* and a generation, nothing else::

    NNNNNNNNNNNNNNNN GGGGGGGGGGGGGGGG
    name hash (64 b) generation (64 bits)

* name hash: sha256 of the job's ``name``. Every instance of a job shares it, so
  ``GET /jobs/overview`` alone finds all instances, whatever version they run.
* generation: Flink refuses to run an id again once a job with that id ended,
  so each new instance takes a new generation. Any two runs for one name pick
  their generation from what they observe, not from what they declare: two
  runs that declare different versions of one job submit the same id and
  Flink lets only one of them start.

What a job runs (its spec) is not in the id. It travels with the job as a
*record* in the job's global job parameters (key ``flinkops.spec``), which
``GET /jobs/<id>/config`` shows: the declared name, the spec (jar SHA-256,
entry class, args, parallelism, config), where the instance was restored
from, salted digests (never values) of secrets and, for a job declared in a
set (``flink_job_set``, or ``flink_job``'s ``scope``), the set's scope.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import re

from ansible_collections.flinkops.flink.plugins.module_utils import _config as cfg

NAME_HASH_LEN = 16
GEN_LEN = 16
MAX_GENERATION = (1 << 64) - 1

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


_NAME_HASHES = {}


def name_hash(name):
    """The job-id prefix of every instance of the job called ``name`` (remembered: a set compares each of its
    names with every job of the cluster)."""
    known = _NAME_HASHES.get(name)
    if known is None:
        known = hashlib.sha256(b'flinkops.flink/job-name\x00' + name.encode('utf-8')).hexdigest()[:NAME_HASH_LEN]
        if len(_NAME_HASHES) < 4096:
            _NAME_HASHES[name] = known
    return known


def job_id(name, generation=0):
    if not 0 <= generation <= MAX_GENERATION:
        raise ValueError('generation out of range: %r' % generation)
    return '%s%016x' % (name_hash(name), generation)


class ParsedId(object):
    __slots__ = ('job_id', 'name_hash', 'generation')

    def __init__(self, jid):
        self.job_id = jid
        self.name_hash = jid[:NAME_HASH_LEN]
        self.generation = int(jid[NAME_HASH_LEN:], 16)


def parse_job_id(jid):
    jid = (jid or '').lower()
    if not _JOB_ID.match(jid):
        return None
    return ParsedId(jid)


def belongs_to(jid, name):
    """True when ``jid`` is an instance of the job called ``name`` under this scheme."""
    return (jid or '').lower().startswith(name_hash(name))


def generation_of(jid):
    parsed = parse_job_id(jid)
    return parsed.generation if parsed else None


# The spec ----------------------------------------------------------------------


class Spec(object):
    """What one version of a job runs.

    ``config`` holds only values that may be published; values under Flink's
    sensitive keys live in ``secret_config`` and program arguments given as
    secrets in ``secret_args``. Neither is ever recorded or returned: the
    record keeps salted digests of them.
    """

    def __init__(self, jar_sha256, entry_class=None, args=None, parallelism=None, config=None,
                 secret_config=None, secret_args=None, sql=None):
        self.jar_sha256 = jar_sha256
        # A SQL job: its statements (the jar is the SQL runner, which gets them as program arguments).
        self.sql = [str(s) for s in sql] if sql is not None else None
        self.entry_class = entry_class or None
        self.args = [str(a) for a in (args or [])]
        self.parallelism = int(parallelism) if parallelism is not None else None
        self.config = dict(config or {})
        self.secret_config = dict(secret_config or {})
        self.secret_args = [str(a) for a in (secret_args or [])]

    def core(self):
        """What may be published: everything but secrets."""
        out = {
            'jar_sha256': self.jar_sha256,
            'entry_class': self.entry_class,
            'args': list(self.args),
            'parallelism': self.parallelism,
            'config': dict(self.config),
        }
        if self.sql is not None:
            out['sql'] = list(self.sql)
        return out

    def public(self):
        """The spec as it is shown: secrets by name and count only."""
        out = self.core()
        out['secret_config_keys'] = sorted(self.secret_config)
        out['secret_args'] = len(self.secret_args)
        return out

    def digest(self):
        """sha256 of the public spec (secret values do not enter it: it is returned to the user)."""
        data = json.dumps(self.public(), sort_keys=True, separators=(',', ':'), ensure_ascii=False)
        return hashlib.sha256(data.encode('utf-8')).hexdigest()

    def secret_digests(self, salt):
        return {
            'config': dict((k, cfg.secret_digest(v, salt)) for k, v in sorted(self.secret_config.items())),
            'args': cfg.secret_digest('\x00'.join(self.secret_args), salt) if self.secret_args else None,
        }

    def flink_config(self):
        """Everything that goes into the run request's flinkConfiguration."""
        out = dict(self.config)
        out.update(self.secret_config)
        return out

    def program_args(self):
        if self.sql is not None:
            # The SQL runner's arguments: its mode, then each statement, base64 (see _sql_runner).
            return ['run'] + [base64.b64encode(s.encode('utf-8')).decode('ascii') for s in self.sql]
        return list(self.args) + list(self.secret_args)


def same_spec(spec, record):
    """True when ``spec`` (declared) runs exactly what ``record`` (a job's record) says, secrets included."""
    if record is None or record.spec is None:
        return False
    if spec.core() != record.spec.core():
        return False
    return spec.secret_digests(record.salt) == record.secrets


def same_scope(scope, record):
    """True when a job's record is in the declared ``scope`` (always, when no scope is declared)."""
    return scope is None or (record is not None and record.scope == scope)


# The record a job carries ---------------------------------------------------------
#
# flink_job records what it submitted in the job's global job parameters
# (``pipeline.global-job-parameters``, key ``flinkops.spec``, base64url JSON),
# which ``GET /jobs/<id>/config`` shows under ``execution-config.user-config``.
# A program that sets its own global job parameters hides it; then the job
# counts as unrecorded.

SPEC_PARAM = 'flinkops.spec'
GLOBAL_PARAMS_KEY = 'pipeline.global-job-parameters'
RECORD_VERSION = 2


class Record(object):
    def __init__(self, name, spec, jar_name=None, restored_from=None, salt=None, secrets=None, version=RECORD_VERSION,
                 scope=None):
        self.name = name                    # None for records of the first format (0.1), which had no name
        self.scope = scope                  # the set (flink_job_set scope) that declares the job, or None
        self.spec = spec                    # Spec without secret values
        self.jar_name = jar_name
        self.restored_from = restored_from  # the path this instance was started from, or None
        self.salt = salt or ''
        self.secrets = secrets or {'config': {}, 'args': None}
        self.version = version

    def encode(self):
        payload = {
            'v': RECORD_VERSION,
            'name': self.name,
            'spec': self.spec.core(),
            'jar_name': self.jar_name,
            'restored_from': self.restored_from,
            'salt': self.salt,
            'secrets': self.secrets,
        }
        if self.scope is not None:
            payload['scope'] = self.scope
        data = json.dumps(payload, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
        return base64.urlsafe_b64encode(data).decode('ascii').rstrip('=')

    def has_secrets(self):
        return bool(self.secrets.get('config') or self.secrets.get('args'))


def new_record(name, spec, jar_name=None, restored_from=None, salt=None, scope=None):
    salt = salt or cfg.new_salt()
    return Record(name, Spec(spec.jar_sha256, spec.entry_class, spec.args, spec.parallelism, spec.config,
                             sql=spec.sql),
                  jar_name=jar_name, restored_from=restored_from, salt=salt, secrets=spec.secret_digests(salt),
                  scope=scope)


def decode_record(text):
    """The record a job carries, or None if it is missing or unreadable."""
    if not text or not isinstance(text, str):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(text + '=' * (-len(text) % 4)).decode('utf-8'))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        if data.get('v') == 1 and 'jar_sha256' in data:
            spec = Spec(data['jar_sha256'], data.get('entry_class'), data.get('args'), data.get('parallelism'),
                        data.get('config'))
            return Record(None, spec, jar_name=data.get('jar_name'), version=1)
        if data.get('v') == RECORD_VERSION and isinstance(data.get('spec'), dict) and data.get('name'):
            s = data['spec']
            sql = s.get('sql')
            if sql is not None and not isinstance(sql, list):
                return None
            spec = Spec(s['jar_sha256'], s.get('entry_class'), s.get('args'), s.get('parallelism'), s.get('config'),
                        sql=sql)
            secrets = data.get('secrets') or {}
            return Record(data['name'], spec, jar_name=data.get('jar_name'), restored_from=data.get('restored_from'),
                          salt=data.get('salt') or '',
                          secrets={'config': dict(secrets.get('config') or {}), 'args': secrets.get('args')},
                          version=RECORD_VERSION, scope=data['scope'] if isinstance(data.get('scope'), str) else None)
    except (KeyError, TypeError, ValueError):
        return None
    return None


def record_from_user_config(user_config):
    return decode_record((user_config or {}).get(SPEC_PARAM))


def with_record(config, record):
    """``config`` with the record added to the global job parameters (the user's own ones are kept).

    Flink reads global job parameters from the map key itself or from prefix keys
    (``pipeline.global-job-parameters.<name>``, what a nested ``config`` becomes),
    and ignores the prefix keys once the map key is set. So the record joins the
    form the user chose: appended to the map, or as one more prefix key.
    """
    out = dict(config)
    encoded = record.encode()
    prefix = GLOBAL_PARAMS_KEY + '.'
    if GLOBAL_PARAMS_KEY not in out and any(k.startswith(prefix) for k in out):
        out[prefix + SPEC_PARAM] = encoded
        return out
    current = out.get(GLOBAL_PARAMS_KEY, '')
    entry = '%s:%s' % (SPEC_PARAM, encoded)
    out[GLOBAL_PARAMS_KEY] = ('%s,%s' % (current, entry)) if current else entry
    return out
