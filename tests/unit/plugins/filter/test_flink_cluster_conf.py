import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.flinkops.flink.plugins.filter.flink_cluster_conf import (
    FilterModule,
    flink_cluster_process_conf,
)
from ansible_collections.flinkops.flink.plugins.filter.flink_config import flink_flatten_config
from ansible_collections.flinkops.flink.plugins.module_utils import _cluster_conf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

# Resembles the config.yaml Flink 2.x ships (nested keys, env.java.opts.all).
DIST_CONFIG = """
# Flink's own configuration
env:
  java:
    opts:
      all: --add-exports=java.base/sun.net.util=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED
jobmanager:
  bind-host: localhost
  rpc:
    address: localhost
    port: 6123
  memory:
    process:
      size: 1600m
  execution:
    failover-strategy: region
taskmanager:
  bind-host: localhost
  host: localhost
  numberOfTaskSlots: 1
  memory:
    process:
      size: 1728m
parallelism:
  default: 1
rest:
  address: localhost
  bind-address: localhost
"""

JAVA_OPTS = '--add-exports=java.base/sun.net.util=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED'
ALGORITHMS = 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'


def settings(**overrides):
    """The settings the role passes with its defaults, on host flink1 (the first JobManager)."""
    out = {
        'ha': 'none',
        'instance_dir': '/opt/flink/instance',
        'savepoints_dir': 'file:///opt/flink/instance/savepoints',
        'checkpoints_dir': 'file:///opt/flink/instance/checkpoints',
        'advertised_address': 'flink1',
        'bind_address': '0.0.0.0',
        'rest_port': 8081,
        'jobmanager_memory': '1600m',
        'taskmanager_memory': '1728m',
        'taskmanager_slots': 2,
        'jm0': {'address': 'flink1', 'rest_port': 8081, 'rpc_port': 6123, 'zk_port': 2181, 'slots': 2},
        'rpc_port': 6123,
        'ha_storage_dir': 'file:///opt/flink/instance/ha',
        'ha_cluster_id': '/flinkops',
        'zookeeper_quorum': '',
        'rest_ssl': False,
        'rest_ssl_client_auth': False,
        'rest_keystore': '/opt/flink/instance/tls/keystore.p12',
        'rest_truststore': '',
        'rest_ssl_algorithms': ALGORITHMS,
        'user_config': {},
    }
    out.update(overrides)
    return out


def dist_base():
    return flink_flatten_config(yaml.safe_load(DIST_CONFIG))


def assert_same(actual, expected):
    """Equal, and every value of the same type (6123 is not '6123', True is not 1)."""
    assert actual == expected
    for key, value in expected.items():
        assert type(actual[key]) is type(value), key


COMMON = {
    'io.tmp.dirs': '/opt/flink/instance/tmp',
    'state.savepoints.dir': 'file:///opt/flink/instance/savepoints',
    'state.checkpoints.dir': 'file:///opt/flink/instance/checkpoints',
}
JM = {
    'jobmanager.bind-host': '0.0.0.0',
    'jobmanager.memory.process.size': '1600m',
    'rest.address': 'flink1',
    'rest.bind-address': '0.0.0.0',
    'rest.port': 8081,
    'web.tmpdir': '/opt/flink/instance/web',
    'web.upload.dir': '/opt/flink/instance/jars',
}
TM = {
    'taskmanager.bind-host': '0.0.0.0',
    'taskmanager.host': 'flink1',
    'taskmanager.numberOfTaskSlots': 2,
    'taskmanager.memory.process.size': '1728m',
}


# Without HA -------------------------------------------------------------------------


def test_no_ha_single_node():
    conf = flink_cluster_process_conf({}, settings())
    assert sorted(conf) == ['jobmanager', 'taskmanager', 'zookeeper']
    no_ha = {'jobmanager.rpc.address': 'flink1', 'jobmanager.rpc.port': 6123}
    assert_same(conf['jobmanager'], dict(COMMON, **dict(no_ha, **JM)))
    assert_same(conf['taskmanager'], dict(COMMON, **dict(no_ha, **TM)))
    assert conf['zookeeper'] == {}


def test_no_ha_rpc_address_is_the_first_jobmanager_not_this_host():
    conf = flink_cluster_process_conf({}, settings(advertised_address='flink2',
                                                   jm0={'address': 'flink1', 'rpc_port': 7000}))
    for process in ('jobmanager', 'taskmanager'):
        assert conf[process]['jobmanager.rpc.address'] == 'flink1'
        assert_same(conf[process], dict(conf[process], **{'jobmanager.rpc.port': 7000}))
    assert conf['jobmanager']['rest.address'] == 'flink2'
    assert conf['taskmanager']['taskmanager.host'] == 'flink2'
    assert not any(k.startswith('high-availability.') for k in conf['jobmanager'])


def test_ports_and_slots_from_strings_become_ints():
    # -e flink_cluster_rest_port=8082 gives a string; the Jinja's | int made it an int.
    conf = flink_cluster_process_conf({}, settings(rest_port='8082', taskmanager_slots='4',
                                                   jm0={'address': 'flink1', 'rpc_port': '6124'}))
    assert_same(conf['jobmanager'], dict(conf['jobmanager'], **{'rest.port': 8082, 'jobmanager.rpc.port': 6124}))
    assert_same(conf['taskmanager'], dict(conf['taskmanager'], **{'taskmanager.numberOfTaskSlots': 4}))


def test_settings_are_passed_on_as_given():
    conf = flink_cluster_process_conf({}, settings(jobmanager_memory='2g', taskmanager_memory=4294967296,
                                                   instance_dir='/srv/flink/',
                                                   savepoints_dir='s3://bucket/savepoints'))
    assert conf['jobmanager']['jobmanager.memory.process.size'] == '2g'
    assert_same(conf['taskmanager'], dict(conf['taskmanager'], **{'taskmanager.memory.process.size': 4294967296}))
    # Joined as the Jinja did ("{{ dir }}/tmp").
    assert conf['jobmanager']['io.tmp.dirs'] == '/srv/flink//tmp'
    assert conf['jobmanager']['web.upload.dir'] == '/srv/flink//jars'
    assert conf['taskmanager']['state.savepoints.dir'] == 's3://bucket/savepoints'


def test_settings_that_the_mode_does_not_use_are_not_needed():
    minimal = settings()
    for key in ('rpc_port', 'ha_storage_dir', 'ha_cluster_id', 'zookeeper_quorum', 'rest_ssl_client_auth',
                'rest_keystore', 'rest_truststore', 'rest_ssl_algorithms', 'user_config'):
        del minimal[key]
    assert flink_cluster_process_conf(None, minimal) == flink_cluster_process_conf({}, settings())


# ZooKeeper HA -----------------------------------------------------------------------


def test_ha_with_bundled_zookeeper():
    conf = flink_cluster_process_conf({}, settings(ha='zookeeper', advertised_address='flink2', rpc_port=6200,
                                                   jm0={'address': 'flink1', 'rpc_port': 6123, 'zk_port': 2182}))
    ha = {
        'high-availability.type': 'zookeeper',
        'high-availability.storageDir': 'file:///opt/flink/instance/ha',
        'high-availability.cluster-id': '/flinkops',
        'high-availability.zookeeper.quorum': 'flink1:2182',
    }
    jm = dict(JM, **{'rest.address': 'flink2'})
    jm_ha = {'jobmanager.rpc.address': 'flink2', 'high-availability.jobmanager.port': '6200'}
    assert_same(conf['jobmanager'], dict(COMMON, **dict(ha, **dict(jm, **jm_ha))))
    # TaskManagers find the leader through ZooKeeper: no jobmanager.rpc.* of their own.
    assert_same(conf['taskmanager'], dict(COMMON, **dict(ha, **dict(TM, **{'taskmanager.host': 'flink2'}))))
    assert conf['zookeeper'] == {}


def test_ha_jobmanager_port_is_a_string_also_from_a_string():
    conf = flink_cluster_process_conf({}, settings(ha='zookeeper', rpc_port='6123'))
    assert_same(conf['jobmanager'], dict(conf['jobmanager'], **{'high-availability.jobmanager.port': '6123'}))


def test_ha_with_external_quorum_needs_no_first_jobmanager():
    given = settings(ha='zookeeper', zookeeper_quorum='zk1:2181,zk2:2181,zk3:2181')
    del given['jm0']
    conf = flink_cluster_process_conf({}, given)
    for process in ('jobmanager', 'taskmanager'):
        assert conf[process]['high-availability.zookeeper.quorum'] == 'zk1:2181,zk2:2181,zk3:2181'
    assert 'jobmanager.rpc.port' not in conf['jobmanager']


def test_ha_settings_from_settings():
    conf = flink_cluster_process_conf({}, settings(ha='zookeeper', ha_storage_dir='hdfs:///flink/ha',
                                                   ha_cluster_id='/prod'))
    assert conf['taskmanager']['high-availability.storageDir'] == 'hdfs:///flink/ha'
    assert conf['jobmanager']['high-availability.cluster-id'] == '/prod'


# REST TLS ---------------------------------------------------------------------------


def test_rest_tls_with_truststore():
    conf = flink_cluster_process_conf({}, settings(rest_ssl=True, rest_ssl_client_auth=True,
                                                   rest_truststore='/opt/flink/instance/tls/truststore.p12'))
    tls = {
        'security.ssl.rest.enabled': True,
        'security.ssl.rest.authentication-enabled': True,
        'security.ssl.rest.keystore': '/opt/flink/instance/tls/keystore.p12',
        'security.ssl.rest.truststore': '/opt/flink/instance/tls/truststore.p12',
        'security.ssl.algorithms': ALGORITHMS,
    }
    no_ha = {'jobmanager.rpc.address': 'flink1', 'jobmanager.rpc.port': 6123}
    assert_same(conf['jobmanager'], dict(COMMON, **dict(no_ha, **dict(JM, **tls))))
    # TLS is the REST API's, on the JobManagers only; no passwords ever.
    assert not any(k.startswith('security.') for k in conf['taskmanager'])
    assert not any('password' in k for p in conf.values() for k in p)


def test_rest_tls_without_truststore():
    conf = flink_cluster_process_conf({}, settings(rest_ssl=True, rest_keystore='/etc/flink/ks.p12'))
    security = dict((k, v) for k, v in conf['jobmanager'].items() if k.startswith('security.'))
    assert_same(security, {
        'security.ssl.rest.enabled': True,
        'security.ssl.rest.authentication-enabled': False,
        'security.ssl.rest.keystore': '/etc/flink/ks.p12',
        'security.ssl.algorithms': ALGORITHMS,
    })


@pytest.mark.parametrize('on, off', [('true', 'no'), ('yes', 'false'), (1, 0), ('True', 'False')])
def test_rest_tls_booleans_as_the_bool_filter_reads_them(on, off):
    conf = flink_cluster_process_conf({}, settings(rest_ssl=on, rest_ssl_client_auth=off))
    assert conf['jobmanager']['security.ssl.rest.enabled'] is True
    assert conf['jobmanager']['security.ssl.rest.authentication-enabled'] is False
    assert 'security.ssl.rest.enabled' not in flink_cluster_process_conf({}, settings(rest_ssl=off))['jobmanager']


# The user's configuration -----------------------------------------------------------


def test_user_config_nested_wins_over_role_settings():
    user = {'rest': {'port': 9000}, 'taskmanager': {'numberOfTaskSlots': 8, 'host': 'tm.example'},
            'web': {'upload': {'dir': '/data/jars'}}, 'parallelism': {'default': 4}}
    conf = flink_cluster_process_conf({}, settings(user_config=user))
    assert conf['jobmanager']['rest.port'] == 9000
    assert conf['jobmanager']['web.upload.dir'] == '/data/jars'
    assert conf['taskmanager']['taskmanager.numberOfTaskSlots'] == 8
    assert conf['taskmanager']['taskmanager.host'] == 'tm.example'
    assert conf['jobmanager']['parallelism.default'] == conf['taskmanager']['parallelism.default'] == 4
    # Both processes get all of it (as before); no nested keys are left.
    assert conf['jobmanager']['taskmanager.numberOfTaskSlots'] == 8
    assert not any(isinstance(v, dict) for p in conf.values() for v in p.values())


def test_user_config_flat_wins_over_role_and_ha_and_tls_settings():
    user = {'jobmanager.rpc.address': 'jm.example', 'high-availability.jobmanager.port': '50000-50025',
            'security.ssl.rest.enabled': False, 'io.tmp.dirs': '/fast/tmp'}
    conf = flink_cluster_process_conf({}, settings(ha='zookeeper', rest_ssl=True, user_config=user))
    assert conf['jobmanager']['jobmanager.rpc.address'] == 'jm.example'
    assert conf['jobmanager']['high-availability.jobmanager.port'] == '50000-50025'
    assert conf['jobmanager']['security.ssl.rest.enabled'] is False
    assert conf['taskmanager']['io.tmp.dirs'] == '/fast/tmp'


def test_user_config_none_is_empty():
    assert flink_cluster_process_conf({}, settings(user_config=None)) == flink_cluster_process_conf({}, settings())


def test_zookeeper_gets_only_the_users_env_keys():
    user = {'env': {'java': {'opts': {'all': '-Duser=1'}}, 'log.max': 5}, 'env.pid.dir': '/run/flink',
            'rest.port': 9000, 'environment': 'x', 'state': {'backend': {'type': 'rocksdb'}}}
    conf = flink_cluster_process_conf(dist_base(), settings(ha='zookeeper', user_config=user))
    zk = conf['zookeeper']
    base = dist_base()
    assert zk == dict(base, **{'env.java.opts.all': '-Duser=1', 'env.log.max': 5, 'env.pid.dir': '/run/flink'})
    assert 'environment' not in zk and 'state.backend.type' not in zk
    assert 'rest.port' not in base and 'rest.port' not in zk
    assert not any(k.startswith(('high-availability.', 'io.tmp', 'web.')) for k in zk)
    assert conf['taskmanager']['environment'] == 'x'


# The distribution's configuration -----------------------------------------------------


def test_distribution_config_is_kept_under_the_role_settings():
    base = dist_base()
    assert base['env.java.opts.all'] == JAVA_OPTS
    conf = flink_cluster_process_conf(base, settings())
    for process in ('jobmanager', 'taskmanager', 'zookeeper'):
        assert conf[process]['env.java.opts.all'] == JAVA_OPTS
        assert conf[process]['jobmanager.execution.failover-strategy'] == 'region'
        assert conf[process]['parallelism.default'] == 1
    # The role's settings win over the distribution's.
    assert conf['jobmanager']['rest.bind-address'] == '0.0.0.0'
    assert conf['jobmanager']['jobmanager.rpc.address'] == 'flink1'
    assert conf['taskmanager']['taskmanager.numberOfTaskSlots'] == 2
    # ... each only in its own process: the TaskManager keeps the distribution's rest.* keys.
    assert conf['taskmanager']['rest.bind-address'] == 'localhost'
    assert conf['jobmanager']['taskmanager.bind-host'] == 'localhost'
    assert conf['zookeeper'] == base
    # The base is not changed.
    assert base == dist_base()


def test_nested_base_is_flattened_too():
    nested = yaml.safe_load(DIST_CONFIG)
    assert flink_cluster_process_conf(nested, settings()) == flink_cluster_process_conf(dist_base(), settings())


def test_user_env_java_opts_replace_the_distributions():
    conf = flink_cluster_process_conf(dist_base(), settings(user_config={'env.java.opts.all': JAVA_OPTS + ' -Dx=1'}))
    for process in ('jobmanager', 'taskmanager', 'zookeeper'):
        assert conf[process]['env.java.opts.all'] == JAVA_OPTS + ' -Dx=1'


# Errors -----------------------------------------------------------------------------


@pytest.mark.parametrize('given, message', [
    (dict(ha='kubernetes'), r"ha must be one of none, zookeeper, got 'kubernetes'"),
    (dict(ha=None), r'ha must be one of'),
    (dict(user_config=['rest.port: 1']), r'user_config must be a dictionary of Flink settings, got list'),
    (dict(user_config='rest.port: 1'), r'user_config must be a dictionary of Flink settings, got str'),
    (dict(user_config={'rest': {'port': 1}, 'rest.port': 2}), r'user_config: config key rest\.port is set twice'),
    (dict(taskmanager_slots=0), r'taskmanager_slots must be at least 1, got 0'),
    (dict(taskmanager_slots='two'), r"taskmanager_slots must be an integer, got 'two'"),
    (dict(taskmanager_slots=2.5), r'taskmanager_slots must be an integer, got float'),
    (dict(rest_port=True), r'rest_port must be an integer, got bool'),
    (dict(rest_port=70000), r'rest_port must be a port number \(1-65535\), got 70000'),
    (dict(rest_port='-1'), r"rest_port must be an integer, got '-1'"),
    (dict(jm0={'address': 'flink1', 'rpc_port': 0}), r'jm0\.rpc_port must be a port number'),
    (dict(jm0={'address': 'flink1'}), r'jm0\.rpc_port \(the first JobManager\) is missing \(needed with ha none\)'),
    (dict(jm0='flink1'), r'jm0 \(the first JobManager\) must be a dictionary, got str'),
    (dict(jm0={'address': '', 'rpc_port': 6123}), r'jm0\.address must not be empty'),
    (dict(ha='zookeeper', jm0={'address': 'flink1', 'rpc_port': 6123}),
     r'jm0\.zk_port \(the first JobManager\) is missing \(needed with ha zookeeper and an empty zookeeper_quorum\)'),
    (dict(ha='zookeeper', zookeeper_quorum=['zk1:2181']), r'zookeeper_quorum must be a string, got list'),
    (dict(ha='zookeeper', rpc_port='x'), r"rpc_port must be an integer, got 'x'"),
    (dict(ha='zookeeper', ha_storage_dir=''), r'ha_storage_dir must not be empty'),
    (dict(advertised_address=None), r'advertised_address must be a string, got NoneType'),
    (dict(bind_address=' '), r'bind_address must not be empty'),
    (dict(instance_dir=42), r'instance_dir must be a string, got int'),
    (dict(jobmanager_memory=''), r'jobmanager_memory must not be empty'),
    (dict(taskmanager_memory=0), r'taskmanager_memory must be a positive size, got 0'),
    (dict(rest_ssl='maybe'), r"rest_ssl must be a boolean, got 'maybe'"),
    (dict(rest_ssl=True, rest_ssl_client_auth='sometimes'), r"rest_ssl_client_auth must be a boolean"),
    (dict(rest_ssl=True, rest_keystore=''), r'rest_keystore must not be empty'),
    (dict(rest_ssl=True, rest_truststore=None), r'rest_truststore must be a string, got NoneType'),
    (dict(rest_tls=True), r'unknown setting\(s\) rest_tls; known: advertised_address, '),
])
def test_invalid_settings_are_clear_errors(given, message):
    with pytest.raises(AnsibleFilterError, match='^flink_cluster_process_conf: ' + message):
        flink_cluster_process_conf({}, settings(**given))


@pytest.mark.parametrize('key, when', [
    ('ha', {}),
    ('rest_ssl', {}),
    ('instance_dir', {}),
    ('savepoints_dir', {}),
    ('checkpoints_dir', {}),
    ('advertised_address', {}),
    ('bind_address', {}),
    ('rest_port', {}),
    ('jobmanager_memory', {}),
    ('taskmanager_memory', {}),
    ('taskmanager_slots', {}),
    ('jm0', {}),
    ('jm0', {'ha': 'zookeeper'}),
    ('rpc_port', {'ha': 'zookeeper'}),
    ('ha_storage_dir', {'ha': 'zookeeper'}),
    ('ha_cluster_id', {'ha': 'zookeeper'}),
    ('rest_ssl_client_auth', {'rest_ssl': True}),
    ('rest_keystore', {'rest_ssl': True}),
    ('rest_ssl_algorithms', {'rest_ssl': True}),
])
def test_missing_settings_are_named(key, when):
    given = settings(**when)
    del given[key]
    with pytest.raises(AnsibleFilterError, match=r'^flink_cluster_process_conf: setting %s is missing' % key):
        flink_cluster_process_conf({}, given)


def test_settings_and_base_must_be_dicts():
    with pytest.raises(AnsibleFilterError, match='settings must be a dictionary, got list'):
        flink_cluster_process_conf({}, [('ha', 'none')])
    with pytest.raises(AnsibleFilterError, match='the base configuration must be a dictionary of Flink settings, got str'):
        flink_cluster_process_conf('rest.port: 1', settings())


def test_inputs_are_not_changed():
    base, given = dist_base(), settings(user_config={'env': {'x': 1}})
    flink_cluster_process_conf(base, given)
    assert base == dist_base() and given == settings(user_config={'env': {'x': 1}})


# Plumbing ---------------------------------------------------------------------------


def test_filter_is_registered():
    assert FilterModule().filters()['flink_cluster_process_conf'] is flink_cluster_process_conf


def test_filter_and_module_utils_share_one_implementation():
    assert flink_cluster_process_conf(dist_base(), settings()) == _cluster_conf.process_conf(dist_base(), settings())
    with pytest.raises(_cluster_conf.SettingsError, match='ha must be one of'):
        _cluster_conf.process_conf({}, settings(ha='etcd'))


def test_documented_settings_are_the_known_settings():
    with open(os.path.join(ROOT, 'plugins', 'filter', 'flink_cluster_process_conf.yml')) as f:
        doc = yaml.safe_load(f)['DOCUMENTATION']
    assert doc['name'] == 'flink_cluster_process_conf'
    assert sorted(doc['options']['settings']['suboptions']) == sorted(_cluster_conf.SETTINGS)
    assert sorted(doc['options']['settings']['suboptions']['jm0']['suboptions']) == ['address', 'rpc_port', 'zk_port']


def test_filter_loads_by_file_path_outside_a_collection_path(tmp_path):
    # As the test harness loads flink_config.py: no ansible_collections on sys.path.
    script = (
        'import importlib.util, json, sys\n'
        'assert not any("build/collections" in p for p in sys.path)\n'
        'spec = importlib.util.spec_from_file_location("f", sys.argv[1])\n'
        'm = importlib.util.module_from_spec(spec)\n'
        'spec.loader.exec_module(m)\n'
        'assert m._impl().__name__ == "flinkops_flink_module_utils_cluster_conf"\n'
        'print(json.dumps(m.flink_cluster_process_conf({"env.java.opts.all": "-X"}, json.loads(sys.argv[2])),'
        ' sort_keys=True))\n'
    )
    given = settings(user_config={'env': {'log.dir': '/l'}})
    out = subprocess.run([sys.executable, '-c', script, os.path.join(ROOT, 'plugins', 'filter', 'flink_cluster_conf.py'),
                          json.dumps(given)], capture_output=True, text=True, cwd=str(tmp_path),
                         env=dict(os.environ, PYTHONPATH=''), check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == flink_cluster_process_conf({'env.java.opts.all': '-X'}, given)


def test_importing_a_filter_file_imports_no_module_utils():
    # Ansible imports every filter file of the collection to find any one filter (flink_jobs' flink_job_params):
    # the files whose module_utils are large import them on first use only.
    script = (
        'import sys\n'
        'import ansible_collections.flinkops.flink.plugins.filter.flink_cluster_conf as a\n'
        'import ansible_collections.flinkops.flink.plugins.filter.flink_config as b\n'
        'mu = "ansible_collections.flinkops.flink.plugins.module_utils."\n'
        'assert mu + "_cluster_conf" not in sys.modules and mu + "_config" not in sys.modules\n'
        'assert b.flink_flatten_config({"a": {"b": 1}}) == {"a.b": 1}\n'
        'assert mu + "_config" in sys.modules and mu + "_cluster_conf" not in sys.modules\n'
        'assert a.flink_from_legacy_conf("x: 1") == {"x": "1"}\n'
        'assert mu + "_cluster_conf" in sys.modules\n'
        'print("ok")\n'
    )
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, check=False, timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'ok'
