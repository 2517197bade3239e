import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident


def spec(**kw):
    base = dict(jar_sha256='a' * 64, entry_class='org.example.Job', args=['--x', '1'], parallelism=2,
                config={'pipeline.max-parallelism': 128})
    base.update(kw)
    return ident.canonical_spec(**base)


def test_job_id_is_deterministic_and_32_hex():
    h = ident.spec_hash(spec())
    a = ident.job_id('orders', h, 0)
    assert a == ident.job_id('orders', h, 0)
    assert len(a) == 32 and int(a, 16) >= 0
    assert a.endswith('00000000')


def test_job_id_layout_name_spec_generation():
    h = ident.spec_hash(spec())
    jid = ident.job_id('orders', h, 7)
    parsed = ident.parse_job_id(jid)
    assert parsed.name_hash == ident.name_hash('orders')
    assert parsed.spec_prefix == h[:8]
    assert parsed.generation == 7
    assert ident.belongs_to(jid, 'orders')
    assert not ident.belongs_to(jid, 'orders2')
    assert ident.runs_spec(jid, h)


@pytest.mark.parametrize('change', [
    dict(jar_sha256='b' * 64),
    dict(entry_class='org.example.Other'),
    dict(args=['--x', '2']),
    dict(args=['--x 1']),
    dict(parallelism=3),
    dict(config={'pipeline.max-parallelism': 256}),
])
def test_every_spec_field_changes_the_hash(change):
    assert ident.spec_hash(spec()) != ident.spec_hash(spec(**change))


def test_spec_hash_ignores_config_order_and_normalises_values():
    a = spec(config={'a': True, 'b': 1})
    b = spec(config={'b': '1', 'a': 'true'})
    assert ident.spec_hash(a) == ident.spec_hash(b)


def test_unicode_names_and_args():
    h = ident.spec_hash(spec(args=['--greeting', 'grüße aus Köln', '日本']))
    jid = ident.job_id('zählwerk ✓', h, 1)
    assert ident.belongs_to(jid, 'zählwerk ✓')
    assert ident.parse_job_id(jid).generation == 1


def test_parse_rejects_foreign_ids():
    assert ident.parse_job_id('not-an-id') is None
    assert ident.parse_job_id(None) is None
    assert ident.parse_job_id('A' * 32).generation == 0xAAAAAAAA


def test_generation_bounds():
    with pytest.raises(ValueError):
        ident.job_id('x', 'f' * 64, -1)
    with pytest.raises(ValueError):
        ident.job_id('x', 'f' * 64, 1 << 32)


def test_sha256_file(tmp_path):
    p = tmp_path / 'x.jar'
    p.write_bytes(b'hello')
    assert ident.sha256_file(str(p)) == '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'
