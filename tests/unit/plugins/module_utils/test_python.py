"""PyFlink jobs, pure logic: the program jar, its entry module, the spec, and PythonDriver's arguments.

That PythonDriver runs the packed program from the uploaded jar is shown by
tests/integration/test_python_job.py on real Flink.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import os
import re
import zipfile

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
from ansible_collections.flinkops.flink.plugins.module_utils import _capabilities as caps
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils import _model as model
from ansible_collections.flinkops.flink.plugins.module_utils import _python as py
from ansible_collections.flinkops.flink.plugins.module_utils import _service as service
from ansible_collections.flinkops.flink.plugins.module_utils._job import JobReconciler

from .fake_flink import FakeFlink
from .fakes import FakeClock, FakeSession
from .test_job import gen_id, record_of

MAIN = 'from pyflink.table import TableEnvironment\n\nprint("job")\n'


@pytest.fixture
def script(tmp_path):
    p = tmp_path / 'counts.py'
    p.write_text(MAIN)
    return str(p)


@pytest.fixture
def package(tmp_path):
    root = tmp_path / 'prog'
    (root / 'etl' / '__pycache__').mkdir(parents=True)
    (root / 'etl' / '__init__.py').write_text('')
    (root / 'etl' / 'main.py').write_text(MAIN)
    (root / 'etl' / 'udfs.py').write_text('def f(x):\n    return x\n')
    (root / 'etl' / '__pycache__' / 'main.cpython-311.pyc').write_bytes(b'\x00')
    (root / 'etl' / 'lookup.csv').write_text('a,1\n')
    (root / '.git').mkdir()
    (root / '.git' / 'HEAD').write_text('ref')
    return str(root)


def names_in(program):
    with zipfile.ZipFile(io.BytesIO(program.jar)) as z:
        return z.namelist()


def test_a_script_is_its_own_module(script):
    program = py.Program(script)
    assert program.module == 'counts' and names_in(program) == ['META-INF/MANIFEST.MF', 'counts.py']
    assert program.jar_name == 'pyflink-counts.jar'


def test_a_directory_is_packed_whole_but_caches_and_version_control(package):
    program = py.Program(package, 'etl.main')
    assert names_in(program) == ['META-INF/MANIFEST.MF', 'etl/__init__.py', 'etl/lookup.csv', 'etl/main.py',
                                 'etl/udfs.py']


def test_the_program_jar_is_its_content_only(package, tmp_path):
    first = py.Program(package, 'etl.main')
    os.utime(os.path.join(package, 'etl', 'main.py'), (1, 1))          # times and places do not count
    copy = tmp_path / 'elsewhere'
    import shutil
    shutil.copytree(package, str(copy))
    assert py.Program(str(copy), 'etl.main').sha256 == first.sha256
    (copy / 'etl' / 'udfs.py').write_text('def f(x):\n    return x + 1\n')
    assert py.Program(str(copy), 'etl.main').sha256 != first.sha256


@pytest.mark.parametrize('module, message', [
    (None, 'is a directory: python_module must name the module'),
    ('etl.nothere', 'python_module etl.nothere is not in'),
    ('etl-main', 'is not a dotted Python module name'),
])
def test_a_directory_needs_a_module_that_is_in_it(package, module, message):
    with pytest.raises(py.PythonProgramError, match=message):
        py.Program(package, module)


def test_files_that_cannot_be_the_program_are_refused(tmp_path, script):
    with pytest.raises(py.PythonProgramError, match='does not exist on the host where the module runs'):
        py.Program(str(tmp_path / 'missing.py'))
    other = tmp_path / 'job.txt'
    other.write_text('x')
    with pytest.raises(py.PythonProgramError, match='is not a .py file'):
        py.Program(str(other))
    with pytest.raises(py.PythonProgramError, match='does not name the script'):
        py.Program(script, 'other')
    dashed = tmp_path / 'my-job.py'
    dashed.write_text(MAIN)
    with pytest.raises(py.PythonProgramError, match='is not a Python module name'):
        py.Program(str(dashed))


def test_the_jar_path_is_filled_in_from_the_jobmanagers_configuration():
    args = py.driver_args('etl.main', ['--x', '1'])
    assert args == ['-pyfs', py.JAR_PATH, '-pym', 'etl.main', '--x', '1']
    assert py.resolve(args, 'abc_prog.jar', {'web.tmpdir': '/tmp/flink-web-1/'}) == \
        ['-pyfs', '/tmp/flink-web-1/flink-web-upload/abc_prog.jar', '-pym', 'etl.main', '--x', '1']
    assert py.resolve(args, 'j', {'web.tmpdir': '/t', 'web.upload.dir': '/srv/up'})[1] == '/srv/up/flink-web-upload/j'
    with pytest.raises(py.PythonProgramError, match='names neither web.upload.dir nor web.tmpdir'):
        py.resolve(args, 'j', {})
    assert py.resolve(['--plain'], 'j', {}) == ['--plain']


def test_a_pyflink_declaration_and_its_spec(package):
    d = model.Desired('clicks', 'present', python=package, python_module='etl.main', args=['--w', '1'],
                      parallelism=2)
    assert d.spec.entry_class == py.DRIVER_CLASS and d.spec.jar_sha256 == d.program.sha256
    assert d.spec.args == ['-pyfs', py.JAR_PATH, '-pym', 'etl.main', '--w', '1']
    version = d.version()
    assert ident.sha256_file(version.jar_path) == d.program.sha256 and version.jar_name == 'pyflink-prog.jar'
    with pytest.raises(model.InputError, match='a job runs one program: .* got jar and python'):
        model.Desired('clicks', 'present', python=package, python_module='etl.main', jar='/x.jar')
    with pytest.raises(model.InputError, match='takes no entry_class'):
        model.Desired('clicks', 'present', python=package, python_module='etl.main', entry_class='a.B')
    with pytest.raises(model.InputError, match='python_module needs python'):
        model.Desired('clicks', 'present', jar='/x.jar', python_module='etl.main')
    # state=absent needs no program on this host.
    assert model.Desired('clicks', 'absent', python='/not/here.py').spec is None


def _fake():
    flink = FakeFlink()
    flink.cluster_config['web.tmpdir'] = '/tmp/flink-web-42'
    clock = FakeClock()
    flink.now = clock
    client = api.FlinkClient(['http://jm:8081'], api.Deadline(300, clock=clock), session=FakeSession(flink),
                             sleep=clock.sleep)
    return client, flink, clock


def test_the_reconciler_submits_the_program_jar_through_pythondriver(script):
    client, flink, clock = _fake()
    d = model.Desired('clicks', 'present', python=script, args=['--w', '1'], healthy_for=0)
    result = JobReconciler(client, d, sleep=clock.sleep).run()
    assert result['changed'] and result['action'] == 'submitted'
    body = flink.bodies[gen_id('clicks', 0)]
    jar_id = [k for k, v in flink.jars.items() if v.endswith('pyflink-counts.jar')][0]
    assert body['entryClass'] == py.DRIVER_CLASS
    assert body['programArgsList'] == ['-pyfs', '/tmp/flink-web-42/flink-web-upload/' + jar_id, '-pym', 'counts',
                                       '--w', '1']
    assert record_of(flink, gen_id('clicks', 0)).spec.args[1] == py.JAR_PATH    # the record keeps the placeholder
    again = JobReconciler(client, model.Desired('clicks', 'present', python=script, args=['--w', '1']),
                          sleep=clock.sleep).run()
    assert not again['changed']


@pytest.mark.parametrize('version', ['1.18.1', '1.19.3'])
@pytest.mark.parametrize('state', ['present', 'upgraded'])
def test_a_pyflink_job_is_refused_before_flink_1_20_before_anything_is_sent(script, version, state):
    # Flink 1.19's PythonDriver cannot parse -pyfs and calls System.exit in the JobManager (seen on 1.19.3).
    client, flink, clock = _fake()
    flink.version = version
    for check in (True, False):
        d = model.Desired('clicks', state, python=script, healthy_for=0)
        with pytest.raises(service.FlinkUnsupportedVersion, match='runs Flink %s' % re.escape(version)) as exc:
            JobReconciler(client, d, sleep=clock.sleep, check_mode=check).run()
        assert 'Flink 1.20 and later' in str(exc.value) and 'Nothing was changed' in str(exc.value)
    assert flink.mutating() == [] and flink.jars == {}
    # absent runs no program: a PyFlink job can still be removed there.
    assert not JobReconciler(client, model.Desired('clicks', 'absent', python=script),
                             sleep=clock.sleep).run()['changed']


def test_a_pyflink_job_runs_from_flink_1_20():
    for version, ok in (('1.18.1', False), ('1.19.3', False), ('1.20.0', True), ('2.0.2', True), ('2.3.0', True)):
        assert caps.for_version(version).pyflink_jobs is ok
        assert (caps.for_version(version).pyflink_refusal('clicks') is None) is ok


LOG = '''2026-12-04 15:31:12,300 INFO  org.apache.flink.runtime.dispatcher.StandaloneDispatcher [] - Received JobGraph
2026-12-04 15:31:12,317 INFO  org.apache.flink.client.python.PythonDriver []  - Traceback (most recent call last):
2026-12-04 15:31:12,317 INFO  org.apache.flink.client.python.PythonDriver []  -   File "<frozen runpy>", line 198, in _run_module_as_main
2026-12-04 15:31:12,317 INFO  org.apache.flink.client.python.PythonDriver []  -   File "/tmp/pyflink/u1/u2/OTHER_prog/clicks/main.py", line 5, in <module>
2026-12-04 15:31:12,317 INFO  org.apache.flink.client.python.PythonDriver []  - KeyError: 'other run'
2026-12-04 15:31:44,208 INFO  org.apache.flink.client.python.PythonDriver []  - Traceback (most recent call last):
2026-12-04 15:31:44,208 INFO  org.apache.flink.client.python.PythonDriver []  -   File "<frozen runpy>", line 198, in _run_module_as_main
2026-12-04 15:31:44,208 INFO  org.apache.flink.client.python.PythonDriver []  -   File "/tmp/pyflink/a/b/MINE_prog/clicks/udfs.py", line 1, in <module>
2026-12-04 15:31:44,208 INFO  org.apache.flink.client.python.PythonDriver []  -     raise ValueError("no bucket for you")
2026-12-04 15:31:44,208 INFO  org.apache.flink.client.python.PythonDriver []  - ValueError: no bucket for you
2026-12-04 15:31:44,209 ERROR org.apache.flink.client.python.PythonDriver []  - Run python process failed
2026-12-04 15:31:44,300 INFO  org.apache.flink.runtime.rest.handler.job.JobSubmitHandler [] - done
'''


def test_the_python_reason_is_read_from_what_pythondriver_logged():
    assert py.last_traceback(LOG, 'MINE_prog.jar') == \
        'ValueError: no bucket for you (File "/tmp/pyflink/a/b/<program>/clicks/udfs.py", line 1, in <module>)'
    assert py.last_traceback(LOG, 'OTHER_prog.jar').startswith("KeyError: 'other run'")
    assert py.last_traceback(LOG, 'unknown').startswith('ValueError: no bucket for you')    # the last one
    assert py.last_traceback('nothing logged by PythonDriver\n', 'x') is None


def test_a_pyflink_job_that_flink_gave_another_calls_settings_fails_loudly(script, tmp_path):
    # Another host's program call at the same moment: Flink builds this run's program with that call's settings,
    # so the job carries the other run's record (same name, same id). This run must not report a clean start.
    other_client, other_flink, other_clock = _fake()
    other = tmp_path / 'other.py'
    other.write_text(open(script).read() + '\n# another version\n')
    JobReconciler(other_client, model.Desired('clicks', 'present', python=str(other), healthy_for=0),
                  sleep=other_clock.sleep).run()
    their_conf = other_flink.bodies[gen_id('clicks', 0)]['flinkConfiguration']
    client, flink, clock = _fake()

    def swap(body):
        body['flinkConfiguration'] = dict(their_conf)
        return False
    flink.on_run.append((swap, ()))
    d = model.Desired('clicks', 'present', python=script, healthy_for=0)
    with pytest.raises(api.FlinkError, match='with the settings of another program call') as failed:
        JobReconciler(client, d, sleep=clock.sleep).run()
    assert 'One instance runs; nothing was stopped' in failed.value.msg
    assert [j for j in flink.jobs if flink.jobs[j]['state'] == 'RUNNING'] == [gen_id('clicks', 0)]
