"""Each role's meta/argument_specs.yml documents exactly the variables of its defaults/main.yml."""

import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = sorted(d for d in os.listdir(os.path.join(ROOT, 'roles'))
               if os.path.exists(os.path.join(ROOT, 'roles', d, 'meta', 'argument_specs.yml')))


def load(role, *path):
    with open(os.path.join(ROOT, 'roles', role, *path)) as f:
        return yaml.safe_load(f)


def test_every_role_has_a_spec():
    assert set(ROLES) == {'flink_cluster', 'flink_jobs'}


@pytest.mark.parametrize('role', ROLES)
def test_spec_and_defaults_name_the_same_variables(role):
    defaults = load(role, 'defaults', 'main.yml')
    options = load(role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
    assert sorted(defaults) == sorted(options)
    assert all(name.startswith(role + '_') for name in defaults)


@pytest.mark.parametrize('role', ROLES)
def test_literal_defaults_match(role):
    defaults = load(role, 'defaults', 'main.yml')
    options = load(role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
    for name, value in defaults.items():
        spec = options[name]
        assert spec.get('description'), name
        if isinstance(value, str) and '{{' in value:
            # A templated default is documented in words; it must not pretend to be a literal.
            assert 'default' in spec, name
            continue
        assert spec.get('default') == value, name
        if 'choices' in spec:
            assert value in spec['choices'], name
