"""FLINK_HOME for tests: the flink_cluster role's own PyPI assembler, cached per version.

    python -m tests.harness.flinkdist --version 2.3.0     # prints FLINK_HOME
"""

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SCRIPT = os.path.join(ROOT, 'roles', 'flink_cluster', 'files', 'flink_home_from_pypi.py')
_spec = importlib.util.spec_from_file_location('flink_home_from_pypi', _SCRIPT)
_impl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_impl)

cache_root = _impl.cache_root
ensure_flink_home = _impl.ensure_flink_home
ensure_python_env = _impl.ensure_python_env

if __name__ == '__main__':
    sys.exit(_impl.main())
