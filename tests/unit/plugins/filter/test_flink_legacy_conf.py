"""Flink 1.18's flink-conf.yaml: the legacy flat format the flink_cluster role writes for Flink before 1.19.

Flink's parser (GlobalConfiguration.loadYAMLResource in 1.18): per line, everything from the
first '#' on is a comment; the rest, trimmed, is split at the first ': '; key and value are
trimmed and taken verbatim; lines without ': ' or with an empty key or value are skipped; a
later line wins. parse_legacy mirrors it, legacy_text writes what it reads back.
"""

import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.flinkops.flink.plugins.filter.flink_cluster_conf import (
    FilterModule,
    flink_cluster_process_conf,
    flink_from_legacy_conf,
    flink_to_legacy_conf,
)
from ansible_collections.flinkops.flink.plugins.module_utils import _cluster_conf

from .test_flink_cluster_conf import ROOT, settings

JAVA_OPTS = '--add-exports=java.base/sun.net.util=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED'

# Resembles the flink-conf.yaml Flink 1.18.1 ships (flat keys, comments, blank lines).
DIST_FLINK_CONF = """################################################################################
#  Licensed to the Apache Software Foundation (ASF) under one
################################################################################

# These parameters are required for Java 17 support.
# They can be safely removed when using Java 8/11.
env.java.opts.all: %s

#==============================================================================
# Common
#==============================================================================

jobmanager.rpc.address: localhost

# The RPC port where the JobManager is reachable.

jobmanager.rpc.port: 6123
jobmanager.bind-host: localhost
jobmanager.memory.process.size: 1600m
taskmanager.bind-host: localhost
taskmanager.host: localhost
taskmanager.memory.process.size: 1728m
taskmanager.numberOfTaskSlots: 1
parallelism.default: 1

# high-availability.type: zookeeper
# high-availability.storageDir: hdfs:///flink/ha/

jobmanager.execution.failover-strategy: region
rest.address: localhost
rest.bind-address: localhost
""" % JAVA_OPTS

DIST = {
    'env.java.opts.all': JAVA_OPTS,
    'jobmanager.rpc.address': 'localhost',
    'jobmanager.rpc.port': '6123',
    'jobmanager.bind-host': 'localhost',
    'jobmanager.memory.process.size': '1600m',
    'taskmanager.bind-host': 'localhost',
    'taskmanager.host': 'localhost',
    'taskmanager.memory.process.size': '1728m',
    'taskmanager.numberOfTaskSlots': '1',
    'parallelism.default': '1',
    'jobmanager.execution.failover-strategy': 'region',
    'rest.address': 'localhost',
    'rest.bind-address': 'localhost',
}


def lines(text):
    assert text.endswith('\n')
    return text[:-1].split('\n')


# Reading, as Flink reads -------------------------------------------------------------


def test_the_shipped_file_reads_as_flink_reads_it():
    conf = flink_from_legacy_conf(DIST_FLINK_CONF)
    assert conf == DIST
    # Strings only, in the order of the file; commented-out settings are not settings.
    assert all(isinstance(v, str) for v in conf.values())
    assert list(conf) == list(DIST)


@pytest.mark.parametrize('line, expected', [
    ('rest.port: 8081', {'rest.port': '8081'}),
    # Not YAML: quotes are part of the value, ': ' after the first is too.
    ("rest.port: '8081'", {'rest.port': "'8081'"}),
    ('a.b: "x y"', {'a.b': '"x y"'}),
    ('env.java.opts.all: -Da=b: c -Dd=e', {'env.java.opts.all': '-Da=b: c -Dd=e'}),
    ('pipeline.jars: a.jar;b.jar', {'pipeline.jars': 'a.jar;b.jar'}),
    ('k: [a, b]', {'k': '[a, b]'}),
    ('k: yes', {'k': 'yes'}),
    # A '#' anywhere starts a comment, even inside a value.
    ('security.ssl.rest.keystore-password: abc#def', {'security.ssl.rest.keystore-password': 'abc'}),
    ('\t rest.port: 8081 \t', {'rest.port': '8081'}),
    ('rest.port:   8081', {'rest.port': '8081'}),
    # Without ': ' or with an empty side, Flink skips the line.
    ('rest.port:8081', {}),
    ('rest.port:', {}),
    ('rest.port: ', {}),
    (': 8081', {}),
    ('# rest.port: 8081', {}),
    ('', {}),
    ('a:b: c', {'a:b': 'c'}),
])
def test_lines_as_flink_reads_them(line, expected):
    assert flink_from_legacy_conf(line + '\n') == expected


def test_spaces_around_key_and_value_are_trimmed():
    # Flink: 'rest.port  :   8081'.split(': ', 2) -> ['rest.port  ', '  8081'], both trimmed.
    assert flink_from_legacy_conf('  rest.port  :   8081   # the REST port') == {'rest.port': '8081'}


def test_later_lines_win_and_line_ends_of_any_kind():
    text = 'rest.port: 1\r\nrest.address: a\rrest.port: 2\nparallelism.default: 3'
    assert flink_from_legacy_conf(text) == {'rest.port': '2', 'rest.address': 'a', 'parallelism.default': '3'}


def test_empty_input():
    assert flink_from_legacy_conf(None) == {}
    assert flink_from_legacy_conf('') == {}
    assert flink_from_legacy_conf(b'rest.port: 1\n') == {'rest.port': '1'}


def test_not_text_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match='^flink_from_legacy_conf: flink-conf.yaml must be text, got dict'):
        flink_from_legacy_conf({'rest.port': 1})


# Writing, for Flink to read back ---------------------------------------------------------


def test_one_key_value_a_line_sorted_never_quoted():
    text = flink_to_legacy_conf({'rest.port': 8081, 'rest.address': 'flink1', 'a.quoted': "'8081'",
                                 'env.java.opts.all': JAVA_OPTS})
    assert lines(text) == [
        "a.quoted: '8081'",
        'env.java.opts.all: ' + JAVA_OPTS,
        'rest.address: flink1',
        'rest.port: 8081',
    ]


@pytest.mark.parametrize('value, written', [
    (True, 'true'),
    (False, 'false'),
    (6123, '6123'),
    (0, '0'),
    (2.5, '2.5'),
    ('1600m', '1600m'),
    ('yes', 'yes'),
    ('null', 'null'),
    ('a: b', 'a: b'),
    ('[a, b]', '[a, b]'),
    ('x;y', 'x;y'),
    # Lists and maps as Flink's ConfigurationUtils.convertToString writes them for this format.
    (['a.jar', 'b.jar'], 'a.jar;b.jar'),
    ([1, True], '1;true'),
    (['x;y', "it's"], "'x;y';'it''s'"),
    # Flink trims values: white space around one means nothing (a folded YAML scalar's newline).
    ('  -Xmx1g -Dx=1\n', '-Xmx1g -Dx=1'),
])
def test_values_as_flink_reads_them_back(value, written):
    text = flink_to_legacy_conf({'some.key': value})
    assert text == 'some.key: %s\n' % written
    assert flink_from_legacy_conf(text) == {'some.key': written}


def test_nested_keys_are_flattened():
    # As in config.yaml: a nested dict is dotted keys (a map option is given as its string, k1:v1,k2:v2).
    assert flink_to_legacy_conf({'rest': {'port': 8081, 'address': 'a'}, 'env.log.max': 5}) == (
        'env.log.max: 5\nrest.address: a\nrest.port: 8081\n')


def test_an_empty_value_leaves_its_key_out():
    # Flink skips 'key: ' (empty value): the key keeps Flink's default, as an empty config.yaml value would.
    text = flink_to_legacy_conf({'env.java.opts.all': '', 'env.java.opts.jobmanager': '  ', 'rest.port': 8081})
    assert text == 'rest.port: 8081\n'


def test_empty_configuration():
    assert flink_to_legacy_conf({}) == ''
    assert flink_to_legacy_conf(None) == ''


SECRET = 's3cr#t\nt3rc3s'


@pytest.mark.parametrize('conf, message', [
    ({'security.ssl.rest.keystore-password': 'abc#def'},
     r"config key security\.ssl\.rest\.keystore-password: its value holds '#', where Flink 1\.18's flink-conf\.yaml "
     r"starts a comment"),
    ({'env.java.opts.all': '-Da=1\n-Db=2'},
     r'config key env\.java\.opts\.all: its value holds a line break, which Flink 1\.18 cannot read'),
    ({'env.java.opts.all': '-Da=1\r-Db=2'}, r'config key env\.java\.opts\.all: its value holds a line break'),
    ({'pipeline.jars': ['a#b.jar']}, r"config key pipeline\.jars: its value holds '#'"),
    ({'rest.port': None}, r'config key rest\.port has no value \(null\)'),
    ({'pipeline.jars': ['a', None]}, r'config key pipeline\.jars\[1\] has no value \(null\)'),
    ({'a: b': 1}, r"config key 'a: b' holds ': ', where Flink's flink-conf\.yaml ends the key"),
    ({'a#b': 1}, r"config key 'a#b' holds '#'"),
    ({' rest.port': 1}, r"config key ' rest\.port' starts or ends with white space"),
    ({'rest.port\n': 1}, r"config key 'rest\.port\\n' starts or ends with white space"),
    ({'a\nb': 1}, r"config key 'a\\nb' holds a line break"),
    ({'': 1}, r"config key '' is empty"),
    ({'rest': {'port': 1}, 'rest.port': 2}, r'config key rest\.port is set twice'),
    (['rest.port'], r'the configuration must be a dictionary, got list'),
])
def test_what_the_format_cannot_hold_is_a_clear_error(conf, message):
    with pytest.raises(AnsibleFilterError, match='^flink_to_legacy_conf: ' + message):
        flink_to_legacy_conf(conf)


def test_errors_never_show_the_value():
    for value in (SECRET, 's3cr#t', 's3cr\rt', ['s3cr', None]):
        with pytest.raises(AnsibleFilterError) as info:
            flink_to_legacy_conf({'security.ssl.rest.keystore-password': value})
        assert 's3cr' not in str(info.value) and 'keystore-password' in str(info.value)


def test_the_input_is_not_changed():
    conf = {'rest': {'port': 8081}, 'pipeline.jars': ['a', 'b']}
    flink_to_legacy_conf(conf)
    assert conf == {'rest': {'port': 8081}, 'pipeline.jars': ['a', 'b']}


# Round trips ----------------------------------------------------------------------------


def test_the_shipped_file_round_trips():
    conf = flink_from_legacy_conf(DIST_FLINK_CONF)
    assert flink_from_legacy_conf(flink_to_legacy_conf(conf)) == conf


def test_the_roles_configuration_of_each_process_on_flink_118():
    """The role's path for Flink 1.18: shipped flink-conf.yaml -> process_conf -> flink-conf.yaml -> Flink."""
    user = {'env.java.opts.all': JAVA_OPTS + ' -Dx=1', 'pipeline.jars': ['a.jar', 'b.jar'],
            'heartbeat.timeout': 10000, 'execution.checkpointing.interval': '2s'}
    conf = flink_cluster_process_conf(flink_from_legacy_conf(DIST_FLINK_CONF),
                                      settings(ha='zookeeper', rest_ssl=True, user_config=user))
    for process in ('jobmanager', 'taskmanager', 'zookeeper'):
        read = flink_from_legacy_conf(flink_to_legacy_conf(conf[process]))
        # Every key is there, and Flink reads each value as its legacy string form.
        assert sorted(read) == sorted(conf[process])
        assert read['env.java.opts.all'] == JAVA_OPTS + ' -Dx=1'
    jm = flink_from_legacy_conf(flink_to_legacy_conf(conf['jobmanager']))
    assert jm['rest.port'] == '8081'
    assert jm['security.ssl.rest.enabled'] == 'true'
    assert jm['security.ssl.rest.authentication-enabled'] == 'false'
    assert jm['high-availability.jobmanager.port'] == '6123'
    assert jm['high-availability.zookeeper.quorum'] == 'flink1:2181'
    assert jm['pipeline.jars'] == 'a.jar;b.jar'
    assert jm['parallelism.default'] == '1'
    assert jm['jobmanager.execution.failover-strategy'] == 'region'
    tm = flink_from_legacy_conf(flink_to_legacy_conf(conf['taskmanager']))
    assert tm['taskmanager.numberOfTaskSlots'] == '2'
    assert tm['taskmanager.bind-host'] == '0.0.0.0'
    # The distribution's keys the role does not set stay as shipped.
    assert tm['rest.bind-address'] == 'localhost'


def test_the_passwords_the_role_adds_are_written_like_any_value():
    conf = flink_cluster_process_conf(flink_from_legacy_conf(DIST_FLINK_CONF), settings(rest_ssl=True))['jobmanager']
    text = flink_to_legacy_conf(dict({'security.ssl.rest.keystore-password': 'f00ba4'}, **conf))
    assert 'security.ssl.rest.keystore-password: f00ba4\n' in text


# Plumbing ---------------------------------------------------------------------------


def test_filters_are_registered():
    filters = FilterModule().filters()
    assert filters['flink_to_legacy_conf'] is flink_to_legacy_conf
    assert filters['flink_from_legacy_conf'] is flink_from_legacy_conf


def test_filters_and_module_utils_share_one_implementation():
    assert flink_to_legacy_conf(DIST) == _cluster_conf.legacy_text(DIST)
    assert flink_from_legacy_conf(DIST_FLINK_CONF) == _cluster_conf.parse_legacy(DIST_FLINK_CONF)
    with pytest.raises(_cluster_conf.LegacyConfError):
        _cluster_conf.legacy_text({'a': 'b#c'})


@pytest.mark.parametrize('name', ['flink_to_legacy_conf', 'flink_from_legacy_conf'])
def test_each_filter_is_documented(name):
    with open(os.path.join(ROOT, 'plugins', 'filter', name + '.yml')) as f:
        doc = yaml.safe_load(f)
    assert doc['DOCUMENTATION']['name'] == name
    assert list(doc['DOCUMENTATION']['options']) == ['_input']
    yaml.safe_load(doc['EXAMPLES'])
