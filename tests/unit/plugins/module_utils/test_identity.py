from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident


def spec(**kw):
    base = dict(jar_sha256='a' * 64, entry_class='org.example.Job', args=['--x', '1'], parallelism=2,
                config={'pipeline.max-parallelism': '128'})
    base.update(kw)
    return ident.Spec(**base)


def test_job_id_is_name_and_generation_only():
    a = ident.job_id('orders', 0)
    assert a == ident.job_id('orders', 0)
    assert len(a) == 32 and int(a, 16) >= 0
    assert a.endswith('0' * 16)
    assert a[:16] == ident.name_hash('orders')


def test_job_id_layout():
    jid = ident.job_id('orders', 7)
    parsed = ident.parse_job_id(jid)
    assert parsed.name_hash == ident.name_hash('orders')
    assert parsed.generation == 7
    assert ident.belongs_to(jid, 'orders')
    assert not ident.belongs_to(jid, 'orders2')


@pytest.mark.parametrize('change', [
    dict(jar_sha256='b' * 64),
    dict(entry_class='org.example.Other'),
    dict(args=['--x', '2']),
    dict(args=['--x 1']),
    dict(parallelism=3),
    dict(config={'pipeline.max-parallelism': '256'}),
    dict(secret_config={'my.password': 'x'}),
    dict(secret_args=['--token', 'x']),
])
def test_every_spec_field_changes_the_digest(change):
    assert spec().digest() != spec(**change).digest()


def test_secret_values_never_enter_the_digest_or_the_record():
    a = spec(secret_config={'my.password': 'one'}, secret_args=['t1'])
    b = spec(secret_config={'my.password': 'two'}, secret_args=['t2'])
    assert a.digest() == b.digest()
    rec = ident.new_record('orders', a, jar_name='job.jar', restored_from='file:/sp/1')
    text = rec.encode()
    decoded = ident.decode_record(text)
    assert 'one' not in text and 't1' not in text
    assert decoded.name == 'orders' and decoded.restored_from == 'file:/sp/1' and decoded.jar_name == 'job.jar'
    assert ident.same_spec(a, decoded)
    assert not ident.same_spec(b, decoded), 'another secret value is another version'
    assert not ident.same_spec(spec(secret_config={'my.password': 'one'}), decoded), 'secret args dropped'


def test_salts_differ_per_record():
    a = spec(secret_config={'my.password': 'one'})
    r1, r2 = ident.new_record('orders', a), ident.new_record('orders', a)
    assert r1.salt != r2.salt and r1.secrets != r2.secrets


def test_records_of_the_first_format_are_read():
    import base64
    import json
    old = base64.urlsafe_b64encode(json.dumps({'v': 1, 'jar_sha256': 'a' * 64, 'entry_class': 'org.example.Job',
                                               'args': ['--x', '1'], 'parallelism': 2,
                                               'config': {'pipeline.max-parallelism': '128'},
                                               'jar_name': 'old.jar'}).encode()).decode().rstrip('=')
    rec = ident.decode_record(old)
    assert rec.name is None and rec.jar_name == 'old.jar' and ident.same_spec(spec(), rec)


def test_unreadable_records_are_none():
    for text in (None, '', 'not base64!', 'e30', ident.decode_record):
        assert ident.decode_record(text if isinstance(text, (str, type(None))) else 'x') is None


def test_unicode_names():
    jid = ident.job_id('zählwerk ✓', 1)
    assert ident.belongs_to(jid, 'zählwerk ✓')
    assert ident.parse_job_id(jid).generation == 1


def test_parse_rejects_foreign_ids():
    assert ident.parse_job_id('not-an-id') is None
    assert ident.parse_job_id(None) is None
    assert ident.parse_job_id('A' * 32).generation == 0xAAAAAAAAAAAAAAAA


def test_generation_bounds():
    with pytest.raises(ValueError):
        ident.job_id('x', -1)
    with pytest.raises(ValueError):
        ident.job_id('x', 1 << 64)


def test_with_record_keeps_the_users_global_parameters():
    rec = ident.new_record('orders', spec())
    conf = ident.with_record({'pipeline.global-job-parameters': 'a:1'}, rec)
    assert conf['pipeline.global-job-parameters'] == 'a:1,flinkops.spec:' + rec.encode()


def test_sha256_file(tmp_path):
    p = tmp_path / 'x.jar'
    p.write_bytes(b'hello')
    assert ident.sha256_file(str(p)) == '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'


def test_with_record_joins_prefix_keys_when_the_user_gave_them_nested():
    rec = ident.new_record('orders', spec())
    conf = ident.with_record({'pipeline.global-job-parameters.region': 'eu'}, rec)
    assert conf == {'pipeline.global-job-parameters.region': 'eu',
                    'pipeline.global-job-parameters.flinkops.spec': rec.encode()}
