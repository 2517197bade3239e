from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _config as cfg


# A test-only re-implementation of Flink's StructuredOptionsSplitter.splitEscaped as shipped in
# 1.20.3 and 2.3.0 (token based; a quote inside an unquoted item is a literal character there,
# older releases rejected it), to check that what render_value writes is read back unchanged.
# Cross-checked against the real class of both releases on random strings.
def split_escaped(text, delimiter):
    tokens = []  # (kind, string)
    i = 0
    while i < len(text):
        c = text[i]
        if c in ("'", '"'):
            buf, j = [], i + 1
            while True:
                if j >= len(text):
                    raise ValueError('Quoting was not closed properly.')
                if text[j] == c:
                    if j + 1 < len(text) and text[j + 1] == c:
                        buf.append(c)
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            tokens.append(('quoted', ''.join(buf)))
            i = j + 1
        elif c == delimiter:
            tokens.append(('delim', c))
            i += 1
        elif not c.isspace():
            buf, j = [], i
            while j < len(text) and text[j] != delimiter:
                buf.append(text[j])
                j += 1
            tokens.append(('plain', ''.join(buf).strip()))
            i = j
        else:
            i += 1
    out = []
    for n, (kind, s) in enumerate(tokens):
        nxt = tokens[n + 1][0] if n + 1 < len(tokens) else None
        if kind == 'quoted':
            if nxt not in (None, 'delim'):
                raise ValueError('Illegal quoting')
            out.append(s)
        elif kind == 'plain':
            out.append(s)
        elif nxt == 'delim':
            out.append('')
    return out


def parse_list(text):
    return split_escaped(text, ';')


def parse_map(text):
    out = {}
    for entry in split_escaped(text, ','):
        pair = split_escaped(entry, ':')
        if len(pair) != 2:
            raise ValueError('Map item is not a key-value pair')
        out[pair[0]] = pair[1]
    return out


# The splitter itself, against cases from Flink's StructuredOptionsSplitterTest.
@pytest.mark.parametrize('text, want', [
    ("'A;B';C", ['A;B', 'C']),
    ('"AB\'D";B;C', ["AB'D", 'B', 'C']),
    ('"AB\'""D;B";C', ['AB\'"D;B', 'C']),
    ("A;B;C", ['A', 'B', 'C']),
    ("A; B ;C", ['A', 'B', 'C']),
    ("A;;C", ['A', '', 'C']),
    ("A;''", ['A', '']),
    ("", []),
    ("a'b;c", ["a'b", 'c']),
])
def test_reference_splitter(text, want):
    assert split_escaped(text, ';') == want


@pytest.mark.parametrize('text', ["'a'b;c", "'a", "'a' x;b"])
def test_reference_splitter_rejects_bad_quoting(text):
    with pytest.raises(ValueError):
        split_escaped(text, ';')


# flatten -----------------------------------------------------------------------


def test_flatten_nested_and_flat_mixed():
    data = {'env': {'java': {'opts': {'all': '--add-opens=x'}}}, 'rest.port': 8081,
            'taskmanager': {'numberOfTaskSlots': 2, 'memory.process.size': '1728m'},
            'state.backend': {'type': 'rocksdb'}, 'state.backend.incremental': True}
    assert cfg.flatten(data) == {
        'env.java.opts.all': '--add-opens=x',
        'rest.port': 8081,
        'taskmanager.numberOfTaskSlots': 2,
        'taskmanager.memory.process.size': '1728m',
        'state.backend.type': 'rocksdb',
        'state.backend.incremental': True,
    }


def test_flatten_keeps_values_and_stringifies_keys():
    assert cfg.flatten({'a': {1: [1, 2], 'n': None}}) == {'a.1': [1, 2], 'a.n': None}
    assert cfg.flatten({'x': 1}, prefix='p') == {'p.x': 1}
    assert cfg.flatten({}) == {}
    assert cfg.flatten({'a': {}}) == {}


@pytest.mark.parametrize('data', [
    {'a': {'b': 1}, 'a.b': 2},
    {'a.b': 2, 'a': {'b': 1}},
    {'a': {'b.c': 'x'}, 'a.b': {'c': 'y'}},
    {'a': {'b': True}, 'a.b': 1},   # True == 1 in Python, but Flink reads 'true' and '1' differently
    {'a': {'b': 1}, 'a.b': '1'},
])
def test_flatten_conflicting_spellings_are_an_error_naming_the_key(data):
    with pytest.raises(cfg.ConfigError, match=r'config key a\.b(\.c)? is set twice'):
        cfg.flatten(data)


def test_flatten_conflict_message_does_not_show_values():
    with pytest.raises(cfg.ConfigError) as exc:
        cfg.flatten({'s3': {'secret-key': 'hunter2'}, 's3.secret-key': 'other'})
    assert 'hunter2' not in str(exc.value) and 'other' not in str(exc.value)


def test_flatten_equal_spellings_are_fine():
    assert cfg.flatten({'a': {'b': 1}, 'a.b': 1}) == {'a.b': 1}
    assert cfg.flatten({'a': {'b': [1, 'x']}, 'a.b': [1, 'x']}) == {'a.b': [1, 'x']}


@pytest.mark.parametrize('bad', [None, ['rest.port'], 'rest.port: 1', 3])
def test_flatten_needs_a_dict(bad):
    with pytest.raises(cfg.ConfigError, match='must be a dictionary'):
        cfg.flatten(bad)


def test_config_error_is_a_value_error():
    assert issubclass(cfg.ConfigError, ValueError)


# render_value -----------------------------------------------------------------


@pytest.mark.parametrize('value, want', [
    (True, 'true'),
    (False, 'false'),
    (0, '0'),
    (128, '128'),
    (-3, '-3'),
    (0.5, '0.5'),
    (1e20, '1e+20'),
    (float('inf'), 'Infinity'),
    ('already;a:string', 'already;a:string'),
    ('', ''),
    (['a', 'b', 'c'], 'a;b;c'),
    ((1, True, 0.5), '1;true;0.5'),
    ([], ''),
    ({'b': 2, 'a': 'x'}, 'a:x,b:2'),
    ({}, ''),
])
def test_render_plain_values(value, want):
    assert cfg.render_value('k', value) == want


# Expected strings from the examples in Flink's StructuredOptionsSplitter.escapeWithSingleQuote
# javadoc and ConfigurationUtilsTest / StructuredOptionsSplitterTest.
@pytest.mark.parametrize('value, want', [
    (["A'B'C'D"], "'A''B''C''D'"),
    (['A;BCD'], "'A;BCD'"),
    (['AB"C"D'], "'AB\"C\"D'"),
    (['A,B,C,D'], 'A,B,C,D'),
    (['a;b', "it's", 'x'], "'a;b';'it''s';x"),
    ({'k1': 'v1', 'k2': 'v2'}, 'k1:v1,k2:v2'),
    ({'a:b': 'c'}, "'''a:b'':c'"),
    ({'k': 'x,y'}, "'k:x,y'"),
    ({'k': 'x:y'}, "'k:''x:y'''"),
    ({"it's": 'v'}, "'''it''''s'':v'"),
])
def test_render_quotes_like_flink(value, want):
    assert cfg.render_value('k', value) == want


@pytest.mark.parametrize('value, want', [
    (['a', ''], "a;''"),             # Flink would write 'a;' and read back ['a']
    ([' a ', 'b'], "' a ';b"),       # unquoted items are trimmed
    (['[a]'], "'[a]'"),              # 1.19+/2.x read list values as YAML first: [a] -> ['a']
    (['- a', 'b'], "'- a';b"),       # YAML block list
    (['-5', '-x'], '-5;-x'),         # a plain leading '-' is fine
    (['x\ny'], "'x\ny'"),
    ({'k': ''}, "'k:'''''"),         # 'k:' is "not a key-value pair" in Flink
    ({'{k': 'v'}, "'''{k'':v'"),
])
def test_render_quotes_what_flink_would_not_read_back(value, want):
    assert cfg.render_value('k', value) == want


TRICKY = ['', ' ', 'a', 'a b', ' lead', 'trail ', 'a;b', 'a,b', 'a:b', "it's", 'say "hi"', "'", '"', "''", ';',
          ':', ',', 'k:v,k2:v2', "'a;b'", '[x]', '{x: y}', '- y', '#c', 'x\ty', 'caf\u00e9', 'a=b', 'C:\\dir;D:\\x']


@pytest.mark.parametrize('item', TRICKY)
def test_list_round_trip(item):
    for items in ([item], [item, 'z'], ['z', item, item]):
        assert parse_list(cfg.render_value('k', items)) == items


@pytest.mark.parametrize('text', TRICKY)
def test_map_round_trip(text):
    for data in ({'k': text}, {text: 'v'}, {text: text, 'zz': text}):
        assert parse_map(cfg.render_value('k', data)) == data


def test_map_values_are_rendered_and_nested_maps_flattened():
    assert parse_map(cfg.render_value('k', {'n': 1, 'b': False, 'l': ['a', 'b;c'], 'd': {'e': 'f'}})) == {
        'n': '1', 'b': 'false', 'l': "a;'b;c'", 'd.e': 'f'}


def test_list_of_maps_round_trip():
    data = [{'name': 'f1', 'path': 'hdfs:///a;b'}, {"x'": 'y:z'}]
    text = cfg.render_value('pipeline.cached-files', data)
    assert [parse_map(item) for item in parse_list(text)] == data


@pytest.mark.parametrize('value, where', [
    (None, 'k'),
    ([1, None], r'k\[1\]'),
    ({'a': None}, r'k\.a'),
    ({'a': {'b': None}}, r'k\.a\.b'),
])
def test_none_is_an_error_naming_the_key(value, where):
    with pytest.raises(cfg.ConfigError, match=r'^config key %s has no value \(null\); remove it or give a value$'
                       % where):
        cfg.render_value('k', value)


# normalize_config --------------------------------------------------------------


def test_normalize_flattens_renders_and_sorts():
    out = cfg.normalize_config({'pipeline': {'max-parallelism': 128, 'object-reuse': True},
                                'pipeline.global-job-parameters': {'env': 'prod', 'url': 'http://h:1/x'},
                                'a.list': ['x', 'y;z']})
    assert out == {
        'a.list': "x;'y;z'",
        'pipeline.global-job-parameters.env': 'prod',
        'pipeline.global-job-parameters.url': 'http://h:1/x',
        'pipeline.max-parallelism': '128',
        'pipeline.object-reuse': 'true',
    }
    assert list(out) == sorted(out)
    assert all(isinstance(v, str) for v in out.values())


def test_normalize_empty_and_errors():
    assert cfg.normalize_config(None) == {}
    assert cfg.normalize_config({}) == {}
    with pytest.raises(cfg.ConfigError, match='config key a.b has no value'):
        cfg.normalize_config({'a': {'b': None}})
    with pytest.raises(cfg.ConfigError, match='must be a dictionary'):
        cfg.normalize_config(['a'])
    with pytest.raises(cfg.ConfigError, match='must be a dictionary'):
        cfg.normalize_config('')


# Sensitive keys ---------------------------------------------------------------


def test_sensitive_key_list_is_flinks_union():
    assert set(cfg.SENSITIVE_KEYS) == {
        'password', 'secret', 'fs.azure.account.key', 'apikey', 'api-key', 'auth-params', 'service-key',
        'token', 'basic-auth', 'jaas.config', 'http-headers'}


@pytest.mark.parametrize('key', [
    'password', 'my.password', 'ssl.truststore-PASSWORD', 's3.secret-key', 'fs.azure.account.key.acct.blob',
    'metrics.reporter.dghttp.apikey', 'metrics.reporter.x.api-key', 'pulsar.client.auth-params',
    'gcp.service-key', 'security.delegation.tokens.enabled', 'Basic-Auth', 'security.kerberos.jaas.config',
    'metrics.reporter.otel.http-headers', 'pipeline.global-job-parameters.db.password',
])
def test_is_sensitive(key):
    assert cfg.is_sensitive(key)


@pytest.mark.parametrize('key', ['rest.port', 'pipeline.name', 'fs.azure.account', 'api.key', 'auth.params',
                                 'pass-word', 'tok-en', '', None])
def test_is_not_sensitive(key):
    assert not cfg.is_sensitive(key)


def test_mask_config():
    config = {'a': {'password': 's3cr3t'}, 'rest.port': 8081, 'x.Token': 't'}
    masked = cfg.mask_config(config)
    assert masked == {'a.password': cfg.HIDDEN, 'rest.port': 8081, 'x.Token': cfg.HIDDEN}
    assert cfg.HIDDEN == '******'
    assert config == {'a': {'password': 's3cr3t'}, 'rest.port': 8081, 'x.Token': 't'}   # a copy
    assert cfg.mask_config(None) == {}


def test_split_sensitive():
    flat = cfg.normalize_config({'my.password': 's3cr3t', 'rest.port': 1, 's3': {'secret-key': 'k'}})
    public, sensitive = cfg.split_sensitive(flat)
    assert public == {'rest.port': '1'}
    assert sensitive == {'my.password': 's3cr3t', 's3.secret-key': 'k'}
    assert cfg.split_sensitive({}) == ({}, {})
    assert cfg.split_sensitive(None) == ({}, {})


# Digests ----------------------------------------------------------------------


def test_new_salt_is_16_random_hex():
    a, b = cfg.new_salt(), cfg.new_salt()
    assert re.match(r'^[0-9a-f]{16}$', a) and re.match(r'^[0-9a-f]{16}$', b)
    assert a != b


def test_secret_digest_is_deterministic_and_salted():
    d = cfg.secret_digest('s3cr3t', 'aaaa')
    assert re.match(r'^[0-9a-f]{64}$', d)
    assert d == cfg.secret_digest('s3cr3t', 'aaaa')
    assert d == cfg.secret_digest(b's3cr3t', b'aaaa')
    assert d != cfg.secret_digest('s3cr3t', 'aaab')
    assert d != cfg.secret_digest('s3cr3T', 'aaaa')
    assert 's3cr3t' not in d


def test_secret_digest_separates_salt_from_value():
    # Plain concatenation would make these equal.
    assert cfg.secret_digest('bc', 'a') != cfg.secret_digest('c', 'ab')
    assert cfg.secret_digest('', 'ab') != cfg.secret_digest('b', 'a')


def test_secret_digest_renders_non_strings():
    assert cfg.secret_digest(1, 's') == cfg.secret_digest('1', 's')
    assert cfg.secret_digest(True, 's') == cfg.secret_digest('true', 's')
