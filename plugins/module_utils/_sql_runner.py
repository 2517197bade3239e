# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the flinkops.flink collection. It may change
# without notice; do not import it from other collections.

"""The SQL runner: the jar a SQL job runs, generated here, byte for byte the same on every host.

A SQL job is submitted like any jar job, through ``POST /jars/<id>/run`` with
the job id flinkops.flink chose, so it shares the jar path's identity,
duplicate protection, savepoints and rollback. Its program is one small class,
``org.flinkops.flink.sql.SqlRunner``, whose ``main`` does, in Java terms::

    public static void main(String[] a) throws Exception {
        Base64.Decoder d = Base64.getDecoder();
        Class<?> s = Class.forName("org.apache.flink.table.api.EnvironmentSettings");
        Object settings = s.getMethod("inStreamingMode").invoke(null);
        Class<?> t = Class.forName("org.apache.flink.table.api.TableEnvironment");
        Object env = t.getMethod("create", s).invoke(null, settings);
        Method executeSql = t.getMethod("executeSql", String.class);
        for (int i = 1; i < a.length; i++)
            executeSql.invoke(env, new String(d.decode(a[i]), "UTF-8"));
        if ("validate".equals(a[0]))
            throw new IllegalStateException(VALIDATED);
    }

``a[0]`` is the mode; each further argument is one statement, base64
(UTF-8), in order. The module always sends ``run``: it has Flink plan new
statements with ``POST /jars/<id>/plan`` (as for any jar) before an upgrade
stops the running job. ``validate`` (the last statement given as ``EXPLAIN
...``; the runner then throws, submitting nothing) plans statements through
``/jars/<id>/run`` by hand, on a cluster whose ``/plan`` is not reachable. The Table API is reached by reflection, so the class
needs no Flink jar to be built and links against every supported Flink line,
whose ``lib/`` always holds the Table API.

Why generated, not compiled: the module runs on the controller or in an
execution environment, which have Python but rarely a JDK. The class file
below is assembled from this source (class file version 49, which the JVM
verifies by type inference, so no stack map frames are needed), and the jar
is written with fixed timestamps: the same bytes, and so the same SHA-256, on
every host, which keeps a SQL job's spec stable whatever machine declares it.
Nothing binary is committed; tests/unit checks the bytes' structure and the
integration tests run it on every Flink line.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import atexit
import hashlib
import io
import os
import shutil
import struct
import tempfile
import threading
import zipfile

RUNNER_CLASS = 'org.flinkops.flink.sql.SqlRunner'
VALIDATED = 'flinkops-sql-runner: every statement was planned; validation submits nothing'
JAR_NAME = 'flinkops-sql-runner.jar'

_CLASS_VERSION = (0, 49)

# Opcodes used by main().
_OP = dict(
    aconst_null=0x01, iconst_0=0x03, iconst_1=0x04, ldc=0x12, ldc_w=0x13, iload=0x15, aload=0x19, aload_0=0x2a,
    aload_1=0x2b, aload_2=0x2c, aload_3=0x2d, aaload=0x32, istore=0x36, astore=0x3a, astore_1=0x4c, astore_2=0x4d,
    astore_3=0x4e, aastore=0x53, pop=0x57, dup=0x59, iinc=0x84, ifeq=0x99, if_icmpge=0xa2, goto=0xa7, return_=0xb1,
    invokevirtual=0xb6, invokespecial=0xb7, invokestatic=0xb8, new=0xbb, anewarray=0xbd, arraylength=0xbe,
    athrow=0xbf)


class _Pool(object):
    """A class file's constant pool: entries added once, indexed from 1."""

    def __init__(self):
        self.entries = []
        self.index = {}

    def _add(self, key, data):
        if key not in self.index:
            self.entries.append(data)
            self.index[key] = len(self.entries)
        return self.index[key]

    def utf8(self, text):
        raw = text.encode('utf-8')
        return self._add(('utf8', text), struct.pack('>BH', 1, len(raw)) + raw)

    def cls(self, name):
        return self._add(('class', name), struct.pack('>BH', 7, self.utf8(name)))

    def string(self, text):
        return self._add(('string', text), struct.pack('>BH', 8, self.utf8(text)))

    def name_type(self, name, desc):
        return self._add(('nt', name, desc), struct.pack('>BHH', 12, self.utf8(name), self.utf8(desc)))

    def method(self, owner, name, desc):
        return self._add(('method', owner, name, desc),
                         struct.pack('>BHH', 10, self.cls(owner), self.name_type(name, desc)))

    def encode(self):
        return struct.pack('>H', len(self.entries) + 1) + b''.join(self.entries)


class _Code(object):
    """Bytecode with forward and backward labels (16-bit branch offsets)."""

    def __init__(self, pool):
        self.pool = pool
        self.out = bytearray()
        self.labels = {}
        self.fixups = []

    def op(self, name, *operands):
        self.out.append(_OP[name])
        for fmt, value in operands:
            self.out += struct.pack('>' + fmt, value)
        return self

    def const(self, text):
        i = self.pool.string(text)
        return self.op('ldc', ('B', i)) if i < 256 else self.op('ldc_w', ('H', i))

    def const_class(self, name):
        i = self.pool.cls(name)
        return self.op('ldc', ('B', i)) if i < 256 else self.op('ldc_w', ('H', i))

    def call(self, kind, owner, name, desc):
        return self.op(kind, ('H', self.pool.method(owner, name, desc)))

    def label(self, name):
        self.labels[name] = len(self.out)
        return self

    def branch(self, name, target):
        self.fixups.append((len(self.out), target))
        return self.op(name, ('h', 0))

    def encode(self):
        for at, target in self.fixups:
            struct.pack_into('>h', self.out, at + 1, self.labels[target] - at)
        return bytes(self.out)


_CLASS = 'java/lang/Class'
_METHOD = 'java/lang/reflect/Method'
_OBJECT = 'java/lang/Object'
_STRING = 'java/lang/String'
_GET_METHOD = '(Ljava/lang/String;[Ljava/lang/Class;)Ljava/lang/reflect/Method;'
_INVOKE = '(Ljava/lang/Object;[Ljava/lang/Object;)Ljava/lang/Object;'
_FOR_NAME = '(Ljava/lang/String;)Ljava/lang/Class;'


def _main_code(pool):
    """main's bytecode. Locals: 0 args, 1 decoder, 2 EnvironmentSettings class, 3 settings, 4 TableEnvironment
    class, 5 the TableEnvironment, 6 executeSql, 7 i."""
    c = _Code(pool)
    c.call('invokestatic', 'java/util/Base64', 'getDecoder', '()Ljava/util/Base64$Decoder;').op('astore_1')
    # settings = EnvironmentSettings.inStreamingMode()
    c.const('org.apache.flink.table.api.EnvironmentSettings').call('invokestatic', _CLASS, 'forName', _FOR_NAME)
    c.op('astore_2').op('aload_2').const('inStreamingMode').op('iconst_0').op('anewarray', ('H', pool.cls(_CLASS)))
    c.call('invokevirtual', _CLASS, 'getMethod', _GET_METHOD)
    c.op('aconst_null').op('iconst_0').op('anewarray', ('H', pool.cls(_OBJECT)))
    c.call('invokevirtual', _METHOD, 'invoke', _INVOKE).op('astore_3')
    # env = TableEnvironment.create(settings)
    c.const('org.apache.flink.table.api.TableEnvironment').call('invokestatic', _CLASS, 'forName', _FOR_NAME)
    c.op('astore', ('B', 4)).op('aload', ('B', 4)).const('create')
    c.op('iconst_1').op('anewarray', ('H', pool.cls(_CLASS))).op('dup').op('iconst_0').op('aload_2').op('aastore')
    c.call('invokevirtual', _CLASS, 'getMethod', _GET_METHOD)
    c.op('aconst_null').op('iconst_1').op('anewarray', ('H', pool.cls(_OBJECT)))
    c.op('dup').op('iconst_0').op('aload_3').op('aastore')
    c.call('invokevirtual', _METHOD, 'invoke', _INVOKE).op('astore', ('B', 5))
    # executeSql = TableEnvironment.class.getMethod("executeSql", String.class)
    c.op('aload', ('B', 4)).const('executeSql')
    c.op('iconst_1').op('anewarray', ('H', pool.cls(_CLASS))).op('dup').op('iconst_0').const_class(_STRING)
    c.op('aastore').call('invokevirtual', _CLASS, 'getMethod', _GET_METHOD).op('astore', ('B', 6))
    # for (i = 1; i < args.length; i++) executeSql.invoke(env, new String(decoder.decode(args[i]), "UTF-8"))
    c.op('iconst_1').op('istore', ('B', 7))
    c.label('loop').op('iload', ('B', 7)).op('aload_0').op('arraylength').branch('if_icmpge', 'done')
    c.op('aload', ('B', 6)).op('aload', ('B', 5)).op('iconst_1').op('anewarray', ('H', pool.cls(_OBJECT)))
    c.op('dup').op('iconst_0').op('new', ('H', pool.cls(_STRING))).op('dup')
    c.op('aload_1').op('aload_0').op('iload', ('B', 7)).op('aaload')
    c.call('invokevirtual', 'java/util/Base64$Decoder', 'decode', '(Ljava/lang/String;)[B')
    c.const('UTF-8').call('invokespecial', _STRING, '<init>', '([BLjava/lang/String;)V')
    c.op('aastore').call('invokevirtual', _METHOD, 'invoke', _INVOKE).op('pop')
    c.op('iinc', ('B', 7), ('b', 1)).branch('goto', 'loop')
    # if ("validate".equals(args[0])) throw new IllegalStateException(VALIDATED)
    c.label('done').const('validate').op('aload_0').op('iconst_0').op('aaload')
    c.call('invokevirtual', _STRING, 'equals', '(Ljava/lang/Object;)Z').branch('ifeq', 'end')
    c.op('new', ('H', pool.cls('java/lang/IllegalStateException'))).op('dup').const(VALIDATED)
    c.call('invokespecial', 'java/lang/IllegalStateException', '<init>', '(Ljava/lang/String;)V').op('athrow')
    c.label('end').op('return_')
    return c.encode()


def class_bytes():
    """The runner's class file."""
    pool = _Pool()
    this = pool.cls(RUNNER_CLASS.replace('.', '/'))
    parent = pool.cls(_OBJECT)
    name, desc, code_attr = pool.utf8('main'), pool.utf8('([Ljava/lang/String;)V'), pool.utf8('Code')
    code = _main_code(pool)
    max_stack, max_locals = 10, 8
    code_body = struct.pack('>HHI', max_stack, max_locals, len(code)) + code + struct.pack('>HH', 0, 0)
    method = struct.pack('>HHHH', 0x0009, name, desc, 1) + struct.pack('>HI', code_attr, len(code_body)) + code_body
    head = struct.pack('>IHH', 0xCAFEBABE, _CLASS_VERSION[0], _CLASS_VERSION[1])
    # ACC_PUBLIC | ACC_FINAL | ACC_SUPER; no interfaces, no fields, one method, no attributes.
    return head + pool.encode() + struct.pack('>HHHHHH', 0x0031, this, parent, 0, 0, 1) + method + b'\x00\x00'


def build_jar(files, main_class=None):
    """A jar of ``files`` ((path in the jar, bytes), in this order) after its manifest. Fixed timestamps and
    modes: the same files give the same bytes on any host, at any time."""
    buf = io.BytesIO()
    stamp = (1980, 1, 1, 0, 0, 0)
    manifest = 'Manifest-Version: 1.0\r\nCreated-By: flinkops.flink\r\n'
    if main_class:
        manifest += 'Main-Class: %s\r\n' % main_class
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
        for path, data in [('META-INF/MANIFEST.MF', (manifest + '\r\n').encode('ascii'))] + list(files):
            info = zipfile.ZipInfo(path, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


def jar_bytes():
    """The runner jar: a manifest naming the main class, and the class."""
    return build_jar([(RUNNER_CLASS.replace('.', '/') + '.class', class_bytes())], main_class=RUNNER_CLASS)


_LOCK = threading.Lock()
_CACHE = {}


def jar_sha256():
    with _LOCK:
        if 'sha' not in _CACHE:
            _CACHE['sha'] = hashlib.sha256(jar_bytes()).hexdigest()
        return _CACHE['sha']


def jar_path():
    """The runner jar as a file (to upload it like any jar): written once per process into a temporary directory
    that is removed when the process exits."""
    with _LOCK:
        if 'path' not in _CACHE:
            work = tempfile.mkdtemp(prefix='flinkops-sql-runner-')
            atexit.register(shutil.rmtree, work, True)
            path = os.path.join(work, JAR_NAME)
            with open(path, 'wb') as f:
                f.write(jar_bytes())
            _CACHE['path'] = path
        return _CACHE['path']


def is_runner(sha256):
    return sha256 == jar_sha256()
