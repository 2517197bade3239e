"""extensions/awx/flink_credential_type.yml: accepted by AWX, and what it injects is what the modules read.

AWX is not installed here. The rules below are the ones AWX applies to a custom
credential type (awx/main/fields.py) and when it injects a credential into a job
(CredentialType.inject_credential in awx/main/models/credential/__init__.py):

* inputs: fields with id/label, type string or boolean, secret/multiline only on strings,
  a default of the field's type; injectors: only file/env/extra_vars, env names that do
  not start with ANSIBLE_, file names ``template`` or ``template.<name>``, and every
  template must render with only the defined fields (StrictUndefined);
* injection: a field left empty is undefined in the templates, a boolean missing from a
  credential's inputs is False, every file template is written (to a fresh file in the
  job's private ``env/`` directory) before the env templates render, and everything
  renders in jinja2's ImmutableSandboxedEnvironment.

The rendered environment is then fed to the modules' own argument spec (the env
fallbacks in module_utils/_common.py) and to client_from_module(), as a module run does.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import jinja2
import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.flinkops.flink.plugins.module_utils import _common

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CREDENTIAL_TYPE = os.path.join(ROOT, 'extensions', 'awx', 'flink_credential_type.yml')

FIELD_KEYS = {'id', 'label', 'type', 'help_text', 'format', 'choices', 'multiline', 'secret', 'ask_at_runtime',
              'default'}
ENV_NAME = re.compile(r'^[a-zA-Z_]+[a-zA-Z0-9_]*$')
FILE_NAME = re.compile(r'^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$')

CA = '-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n'
CERT = '-----BEGIN CERTIFICATE-----\nMIIBfakeClient\n-----END CERTIFICATE-----\n'
KEY = '-----BEGIN PRIVATE KEY-----\nMIIEfakeKey\n-----END PRIVATE KEY-----\n'


@pytest.fixture(scope='module')
def ctype():
    with open(CREDENTIAL_TYPE) as f:
        return yaml.safe_load(f)


def fields(ctype):
    return dict((f['id'], f) for f in ctype['inputs']['fields'])


def env_fallbacks():
    """{FLINK_*: option} for every option of the shared connection spec that falls back to the environment."""
    names = {}
    for option, spec in _common.connection_argument_spec().items():
        fallback = spec.get('fallback')
        if fallback:
            func, args = fallback[0], fallback[1]
            assert func is env_fallback
            for name in args:
                names[name] = option
    return names


class _Namespace(object):
    pass


def awx_inject(ctype, inputs, private_data_dir):
    """Render the injectors for a credential with ``inputs`` the way AWX does; returns (env, files)."""
    tower = _Namespace()
    namespace = {'tower': tower}
    for key, value in inputs.items():
        if isinstance(value, bool) or len(value):
            namespace[key] = value
    for field in ctype['inputs']['fields']:
        if field.get('type', 'string') == 'boolean' and field['id'] not in inputs:
            namespace[field['id']] = False
    sandbox = ImmutableSandboxedEnvironment()
    env_dir = os.path.join(private_data_dir, 'env')
    os.makedirs(env_dir, exist_ok=True)
    files = {}
    for label, template in ctype['injectors'].get('file', {}).items():
        fd, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(fd, 'w') as f:
            f.write(sandbox.from_string(template).render(**namespace))
        if '.' in label:
            if not hasattr(tower, 'filename'):
                tower.filename = _Namespace()
            setattr(tower.filename, label.split('.', 1)[1], path)
        else:
            tower.filename = path
        files[label] = path
    env = dict((name, sandbox.from_string(template).render(**namespace))
               for name, template in ctype['injectors'].get('env', {}).items())
    return env, files


def module_params(env, monkeypatch):
    """The connection options a module gets with ``env`` as its only source (no option set in the task)."""
    for name in env_fallbacks():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = ArgumentSpecValidator(_common.connection_argument_spec()).validate({})
    assert result.error_messages == []
    return result.validated_parameters


class FakeModule(object):
    def __init__(self, params):
        self.params = params

    def fail_json(self, **kwargs):
        raise AssertionError('module failed: %s' % kwargs)


# What AWX accepts ------------------------------------------------------------------

def test_awx_accepts_the_inputs(ctype):
    assert ctype['kind'] in ('cloud', 'net'), 'AWX only lets custom credential types be cloud or net'
    assert ctype['name'] and ctype['description']
    assert set(ctype) == {'name', 'description', 'kind', 'inputs', 'injectors'}
    assert set(ctype['inputs']) <= {'fields', 'required'}
    ids = [f['id'] for f in ctype['inputs']['fields']]
    assert len(ids) == len(set(ids)) and 'tower' not in ids
    for field in ctype['inputs']['fields']:
        assert set(field) <= FIELD_KEYS, field
        assert ENV_NAME.match(field['id']) and field['label']
        kind = field.get('type', 'string')
        assert kind in ('string', 'boolean')
        if kind != 'string':
            assert not set(field) & {'choices', 'multiline', 'format', 'secret'}, field
        if 'default' in field:
            assert isinstance(field['default'], {'string': str, 'boolean': bool}[kind]), field
    assert set(ctype['inputs']['required']) <= set(ids)


def test_awx_accepts_the_injectors(ctype):
    injectors = ctype['injectors']
    assert set(injectors) <= {'file', 'env', 'extra_vars'}
    labels = list(injectors['file'])
    assert all(FILE_NAME.match(label) for label in labels)
    assert 'template' not in labels, 'single- and multi-file syntax cannot be mixed'
    for name, template in injectors['env'].items():
        assert ENV_NAME.match(name) and not name.startswith('ANSIBLE_'), name
        assert template.isascii(), name
    # AWX renders every template with each defined field set, StrictUndefined, and
    # tower.filename.<name> for each declared file: anything else is refused.
    tower = _Namespace()
    tower.filename = _Namespace()
    for label in labels:
        setattr(tower.filename, label.split('.', 1)[1], 'EXAMPLE_FILENAME')
    namespace = dict((f, 'EXAMPLE') for f in fields(ctype))
    namespace['tower'] = tower
    strict = jinja2.Environment(undefined=jinja2.StrictUndefined)
    for kind in ('file', 'env', 'extra_vars'):
        for template in injectors.get(kind, {}).values():
            strict.from_string(template).render(namespace)


# What it injects ------------------------------------------------------------------

def test_every_injected_variable_is_one_the_modules_fall_back_to(ctype):
    fallbacks = env_fallbacks()
    injected = set(ctype['injectors']['env'])
    assert injected <= set(fallbacks), 'not read by any module: %s' % sorted(injected - set(fallbacks))
    # ...and the credential covers every connection option the modules read from the environment.
    assert injected == set(fallbacks)
    assert set(fallbacks) == {'FLINK_URL', 'FLINK_VALIDATE_CERTS', 'FLINK_CA_PATH', 'FLINK_CLIENT_CERT',
                              'FLINK_CLIENT_KEY', 'FLINK_USERNAME', 'FLINK_PASSWORD'}


def test_secrets_are_secret_and_certificates_multiline(ctype):
    f = fields(ctype)
    assert f['password'].get('secret') is True
    assert f['client_key'].get('secret') is True
    assert [i for i, v in f.items() if v.get('secret')] == ['password', 'client_key']
    for name in ('ca_cert', 'client_cert', 'client_key'):
        assert f[name].get('multiline') is True, name
    assert f['validate_certs']['type'] == 'boolean' and f['validate_certs']['default'] is True
    assert ctype['inputs']['required'] == ['url']
    # The options these secrets reach are no_log in the module.
    spec = _common.connection_argument_spec()
    assert spec['url_password']['no_log'] is True


def test_full_credential_gives_the_modules_every_option(ctype, tmp_path, monkeypatch):
    inputs = {'url': 'https://jm-1:8081, https://jm-2:8081', 'username': 'deployer', 'password': 's3cr3t',
              'validate_certs': True, 'ca_cert': CA, 'client_cert': CERT, 'client_key': KEY}
    env, files = awx_inject(ctype, inputs, str(tmp_path))

    assert env == {
        'FLINK_URL': 'https://jm-1:8081,https://jm-2:8081',
        'FLINK_USERNAME': 'deployer',
        'FLINK_PASSWORD': 's3cr3t',
        'FLINK_VALIDATE_CERTS': 'True',
        'FLINK_CA_PATH': files['template.ca_cert'],
        'FLINK_CLIENT_CERT': files['template.client_cert'],
        'FLINK_CLIENT_KEY': files['template.client_key'],
    }
    for label, content in (('template.ca_cert', CA), ('template.client_cert', CERT), ('template.client_key', KEY)):
        with open(files[label]) as f:
            assert f.read() == content
        assert os.path.dirname(files[label]) == str(tmp_path / 'env')

    params = module_params(env, monkeypatch)
    assert params['url'] == ['https://jm-1:8081', 'https://jm-2:8081']
    assert params['url_username'] == 'deployer' and params['url_password'] == 's3cr3t'
    assert params['validate_certs'] is True
    assert params['ca_path'] == files['template.ca_cert']
    assert params['client_cert'] == files['template.client_cert']
    assert params['client_key'] == files['template.client_key']

    client = _common.client_from_module(FakeModule(params))
    assert client.urls == ['https://jm-1:8081', 'https://jm-2:8081']
    assert client.session.verify == files['template.ca_cert']
    assert client.session.cert == (files['template.client_cert'], files['template.client_key'])
    assert client.session.auth == ('deployer', 's3cr3t')


def test_url_only_credential_sets_nothing_else(ctype, tmp_path, monkeypatch):
    env, files = awx_inject(ctype, {'url': 'http://flink-jobmanager:8081', 'validate_certs': True}, str(tmp_path))

    # AWX still writes the (empty) files, but no variable points at them.
    assert all(os.path.getsize(p) == 0 for p in files.values())
    assert env == {'FLINK_URL': 'http://flink-jobmanager:8081', 'FLINK_USERNAME': '', 'FLINK_PASSWORD': '',
                   'FLINK_VALIDATE_CERTS': 'True', 'FLINK_CA_PATH': '', 'FLINK_CLIENT_CERT': '',
                   'FLINK_CLIENT_KEY': ''}

    params = module_params(env, monkeypatch)
    assert params['url'] == ['http://flink-jobmanager:8081']
    assert params['validate_certs'] is True
    client = _common.client_from_module(FakeModule(params))
    # Empty variables are "not set": system CAs, no client certificate, no basic auth.
    assert client.session.verify is True
    assert client.session.cert is None
    assert client.session.auth is None


def test_validate_certs_off_and_missing(ctype, tmp_path, monkeypatch):
    env = awx_inject(ctype, {'url': 'https://jm:8081', 'validate_certs': False}, str(tmp_path))[0]
    assert env['FLINK_VALIDATE_CERTS'] == 'False'
    params = module_params(env, monkeypatch)
    assert params['validate_certs'] is False
    assert _common.client_from_module(FakeModule(params)).session.verify is False

    # AWX injects a boolean that is missing from a credential's inputs as False (its UI
    # pre-ticks the box from the type's default; API, CLI and awx.awx.credential do not).
    # extensions/awx/README.md tells users to set validate_certs explicitly for that reason.
    env = awx_inject(ctype, {'url': 'https://jm:8081'}, str(tmp_path))[0]
    assert env['FLINK_VALIDATE_CERTS'] == 'False'


def test_a_ca_certificate_verifies_even_with_validate_certs_off(ctype, tmp_path, monkeypatch):
    env, files = awx_inject(ctype, {'url': 'https://jm:8081', 'validate_certs': False, 'ca_cert': CA}, str(tmp_path))
    params = module_params(env, monkeypatch)
    assert _common.client_from_module(FakeModule(params)).session.verify == files['template.ca_cert']


def test_secrets_stay_out_of_the_stored_job_environment(ctype, tmp_path):
    """AWX stores the job's env with secret fields rendered as '**********'."""
    inputs = {'url': 'https://jm:8081', 'username': 'deployer', 'password': 's3cr3t', 'validate_certs': True,
              'client_cert': CERT, 'client_key': KEY}
    secret = set(i for i, f in fields(ctype).items() if f.get('secret'))
    safe_inputs = dict((k, '**********' if k in secret else v) for k, v in inputs.items())
    env, files = awx_inject(ctype, safe_inputs, str(tmp_path))
    assert env['FLINK_PASSWORD'] == '**********'
    assert 's3cr3t' not in ''.join(env.values())
    # The key reaches the job only as a file path, never as a variable's value.
    assert all('PRIVATE KEY' not in v for v in awx_inject(ctype, inputs, str(tmp_path))[0].values())


def test_loading_the_file_in_a_playbook_keeps_the_injector_templates(ctype, tmp_path):
    """extensions/awx/README.md passes the file to awx.awx.credential_type through
    ``lookup('ansible.builtin.file', ...) | from_yaml``: Ansible must hand the ``{{ ... }}``
    of the injectors to the module as they are, not render them in the playbook."""
    shutil.copy(CREDENTIAL_TYPE, str(tmp_path))
    out = tmp_path / 'module_args.json'
    play = [{
        'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
        'vars': {'ansible_python_interpreter': '{{ ansible_playbook_python }}',
                 'flink_credential_type': "{{ lookup('ansible.builtin.file', 'flink_credential_type.yml')"
                                          " | ansible.builtin.from_yaml }}"},
        'tasks': [{'name': 'what a module gets as its inputs and injectors options',
                   'ansible.builtin.copy': {'dest': str(out), 'content': "{{ {'inputs': flink_credential_type.inputs,"
                                                                         " 'injectors': flink_credential_type.injectors}"
                                                                         " | ansible.builtin.to_json }}"}}],
    }]
    (tmp_path / 'play.yml').write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
                           'play.yml'], cwd=str(tmp_path), env=env, capture_output=True, text=True, check=False,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(str(out)) as f:
        assert json.load(f) == {'inputs': ctype['inputs'], 'injectors': ctype['injectors']}
