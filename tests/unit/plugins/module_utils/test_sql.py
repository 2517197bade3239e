"""SQL jobs, pure logic: splitting and checking statements, the generated runner jar, SQL specs and records.

That the runner really runs (its bytecode verifies and executes the statements in a JobManager) is shown
by tests/integration/test_sql_job.py on real Flink.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import io
import os
import struct
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils import _model as model
from ansible_collections.flinkops.flink.plugins.module_utils import _sql
from ansible_collections.flinkops.flink.plugins.module_utils import _sql_runner as runner

SRC = "CREATE TABLE src (k INT, s STRING) WITH ('connector' = 'datagen')"
SNK = "CREATE TABLE snk (k INT, c BIGINT) WITH ('connector' = 'blackhole')"
INSERT = 'INSERT INTO snk SELECT k, COUNT(*) FROM src GROUP BY k'


# -- splitting ------------------------------------------------------------------------------------------------------

def test_statements_split_at_semicolons_outside_strings_identifiers_and_comments():
    text = """-- the source; with a comment
    CREATE TABLE src (`a;b` INT, "c;d" INT) WITH ('connector' = 'datagen', 'x' = 'it''s; fine'); /* a; b */
    INSERT INTO snk SELECT 1 -- trailing; comment
    ;"""
    assert _sql.split_statements(text) == [
        "CREATE TABLE src (`a;b` INT, \"c;d\" INT) WITH ('connector' = 'datagen', 'x' = 'it''s; fine')",
        'INSERT INTO snk SELECT 1']


def test_a_statement_set_is_one_statement_with_its_inner_semicolons():
    text = SRC + ';\nEXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT 1;\nINSERT INTO b SELECT 2;\nEND;'
    statements = _sql.split_statements(text)
    assert statements == [SRC, 'EXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT 1;\nINSERT INTO b SELECT 2;\nEND']
    assert _sql.split_statements('statement set begin insert into a select 1; end') == \
        ['statement set begin insert into a select 1;\nend']


def test_comments_do_not_enter_the_statements():
    plain = _sql.parse(SRC + ';' + SNK + ';' + INSERT)
    commented = _sql.parse('/* v2 */ ' + SRC + '; -- sink\n' + SNK + ';\n' + INSERT + ' -- the job\n;')
    assert plain == commented


@pytest.mark.parametrize('text, message', [
    ("INSERT INTO a SELECT 'x", 'string opened at character 22 is never closed'),
    ('INSERT INTO a SELECT 1 /* x', 'comment opened at character 24 is never closed'),
    ('INSERT INTO `a SELECT 1', 'quoted identifier opened'),
    ('EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 1;', 'has no END'),
])
def test_unclosed_quotes_comments_and_sets_are_refused(text, message):
    with pytest.raises(_sql.SqlError, match=message):
        _sql.parse(text)


# -- checking ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('text, message', [
    ('', 'there are no statements'),
    ('  ;  ; -- nothing\n', 'there are no statements'),
    (SRC, r'the last statement \(.CREATE TABLE src .*\) does not start a job'),
    (SRC + '; SELECT * FROM src', 'a SELECT is refused'),
    (INSERT + ';' + INSERT, r'statement 1 \(.*\) starts a job, but only the last statement may'),
    ('SELECT 1; ' + INSERT, 'statement 1 .* starts a job'),
    ("SET 'parallelism.default' = '2'; " + INSERT, 'with the config option of the job, not with SET'),
    ('SHOW TABLES; ' + INSERT, 'statement 1 .* is neither a statement that prepares the session'),
])
def test_scripts_that_are_not_one_job_are_refused_naming_the_statement(text, message):
    with pytest.raises(_sql.SqlError, match=message):
        _sql.parse(text)


def test_a_script_prepares_the_session_and_ends_with_the_job():
    for last in (INSERT, 'INSERT OVERWRITE snk SELECT 1, 2', 'EXECUTE STATEMENT SET BEGIN ' + INSERT + '; END',
                 'EXECUTE INSERT INTO snk SELECT 1, 2'):
        script = ';\n'.join([SRC, 'create temporary view v as select k from src', 'USE CATALOG default_catalog',
                             SNK, last])
        assert _sql.parse(script)[-1].split()[0].upper() in ('INSERT', 'EXECUTE')


# -- the runner jar ----------------------------------------------------------------------------------------------------

def _class_file():
    with zipfile.ZipFile(io.BytesIO(runner.jar_bytes())) as z:
        names = z.namelist()
        manifest = z.read('META-INF/MANIFEST.MF').decode('ascii')
        return names, manifest, z.read(runner.RUNNER_CLASS.replace('.', '/') + '.class')


def test_the_runner_jar_names_its_main_class_and_holds_one_class():
    names, manifest, data = _class_file()
    assert names == ['META-INF/MANIFEST.MF', 'org/flinkops/flink/sql/SqlRunner.class']
    assert 'Main-Class: %s\r\n' % runner.RUNNER_CLASS in manifest
    magic, minor, major = struct.unpack('>IHH', data[:8])
    assert (magic, major, minor) == (0xCAFEBABE, 49, 0)


def test_the_runner_class_calls_the_table_api_by_reflection_only():
    _names, _manifest, data = _class_file()
    for needed in (b'org.apache.flink.table.api.TableEnvironment', b'org.apache.flink.table.api.EnvironmentSettings',
                   b'inStreamingMode', b'executeSql', b'java/util/Base64', runner.VALIDATED.encode()):
        assert needed in data
    # No class of Flink is linked: the class loads on every Flink line whatever the Table API's jars are called.
    assert b'org/apache/flink' not in data


def test_branches_land_on_the_instructions_they_name():
    pool = runner._Pool()
    code = runner._main_code(pool)
    # The loop: if_icmpge jumps forward to the validate check; goto jumps back to the loop's first iload.
    at_if = code.index(bytes([0xa2]))
    target = at_if + struct.unpack('>h', code[at_if + 1:at_if + 3])[0]
    string = pool.entries[code[target + 1] - 1]                 # ldc #n: a CONSTANT_String naming a CONSTANT_Utf8
    assert code[target] == 0x12 and string[0] == 8
    assert pool.entries[struct.unpack('>H', string[1:3])[0] - 1].endswith(b'validate')
    at_goto = code.rindex(bytes([0xa7]))
    back = at_goto + struct.unpack('>h', code[at_goto + 1:at_goto + 3])[0]
    assert code[back] == 0x15 and back < at_if        # iload 7 (i), the loop's head
    assert code[-1] == 0xb1                            # return


def test_the_runner_jar_is_the_same_bytes_in_every_process():
    here = runner.jar_sha256()
    assert here == ident.sha256_file(runner.jar_path())
    src = os.path.dirname(os.path.abspath(runner.__file__))
    code = ('import importlib.util, sys; s = importlib.util.spec_from_file_location("r", %r); '
            'm = importlib.util.module_from_spec(s); s.loader.exec_module(m); print(m.jar_sha256())'
            % os.path.join(src, '_sql_runner.py'))
    env = dict(os.environ, PYTHONHASHSEED='7', TZ='Pacific/Kiritimati')
    other = subprocess.check_output([sys.executable, '-c', code], env=env)
    assert other.decode().strip() == here


# -- specs, records, the declaration ---------------------------------------------------------------------------

def sql_desired(text=None, **kw):
    return model.Desired('sql-job', kw.pop('state', 'present'), sql=text or ';'.join([SRC, SNK, INSERT]), **kw)


def test_a_sql_job_runs_the_runner_with_its_statements_as_arguments():
    d = sql_desired(parallelism=2, config={'execution.checkpointing.interval': '5 s'})
    assert d.spec.jar_sha256 == runner.jar_sha256() and d.spec.entry_class == runner.RUNNER_CLASS
    args = d.spec.program_args()
    assert args[0] == 'run'
    assert [base64.b64decode(a).decode('utf-8') for a in args[1:]] == [SRC, SNK, INSERT]
    version = d.version()
    assert version.jar_path and ident.sha256_file(version.jar_path) == runner.jar_sha256()
    assert version.jar_name == runner.JAR_NAME


def test_the_spec_of_a_sql_job_is_its_statements_config_and_parallelism():
    base = sql_desired()
    assert base.spec_hash == sql_desired('/* other comment */ ' + ';'.join([SRC, SNK, INSERT])).spec_hash
    assert base.spec_hash != sql_desired(';'.join([SRC, SNK, INSERT.replace('COUNT(*)', 'MAX(k)')])).spec_hash
    assert base.spec_hash != sql_desired(config={'pipeline.max-parallelism': '64'}).spec_hash
    assert base.spec_hash != sql_desired(parallelism=3).spec_hash
    assert base.spec.public()['sql'] == [SRC, SNK, INSERT]


def test_a_jar_spec_is_unchanged_by_sql_support():
    # Jobs deployed before SQL jobs existed must keep their spec (no upgrade after a collection update).
    spec = ident.Spec('a' * 64, 'org.example.Job', ['--x'], 2, {'k': 'v'})
    assert 'sql' not in spec.core()


def test_the_record_of_a_sql_job_round_trips_and_can_be_started_again():
    d = sql_desired()
    record = d.version().record(None)
    back = ident.decode_record(record.encode())
    assert back.spec.sql == [SRC, SNK, INSERT] and ident.same_spec(d.spec, back)
    previous = model.Version('sql-job', back.spec, jar_name=back.jar_name)
    assert previous.jar_path == runner.jar_path()      # a rollback needs no file from the user


def test_sql_file_is_read_on_the_module_host(tmp_path):
    f = tmp_path / 'job.sql'
    f.write_text(';\n'.join([SRC, SNK, INSERT]) + ';\n', encoding='utf-8')
    assert model.Desired('sql-job', 'present', sql_file=str(f)).spec.sql == [SRC, SNK, INSERT]
    with pytest.raises(model.InputError, match='sql_file .*missing.sql cannot be read'):
        model.Desired('sql-job', 'present', sql_file=str(tmp_path / 'missing.sql'))
    bad = tmp_path / 'bad.sql'
    bad.write_text(SRC + ';', encoding='utf-8')
    with pytest.raises(model.InputError, match='sql_file .*bad.sql: the last statement'):
        model.Desired('sql-job', 'present', sql_file=str(bad))


@pytest.mark.parametrize('kw, message', [
    (dict(jar='/x.jar'), 'a job runs one program: .* got jar and sql'),
    (dict(entry_class='a.B'), 'takes no entry_class, args or secret_args'),
    (dict(args=['--x']), 'takes no entry_class, args or secret_args'),
    (dict(secret_args=['s']), 'takes no entry_class, args or secret_args'),
])
def test_a_sql_job_refuses_jar_options(kw, message):
    with pytest.raises(model.InputError, match=message):
        sql_desired(**kw)
