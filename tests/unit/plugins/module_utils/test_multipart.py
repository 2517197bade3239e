"""The streamed multipart body: exact bytes, framing, quoting, and that nothing is buffered."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import email.parser
import email.policy
import os
import threading
import tracemalloc

from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from urllib3 import encode_multipart_formdata

from ansible_collections.flinkops.flink.plugins.module_utils import _http
from ansible_collections.flinkops.flink.plugins.module_utils import _multipart as mp

MIB = 1024 * 1024


def write(path, data):
    with open(str(path), 'wb') as f:
        f.write(data)
    return str(path)


def sparse(path, size):
    """A file of ``size`` zero bytes that costs no disk space and no memory to create."""
    with open(str(path), 'wb') as f:
        f.truncate(size)
    return str(path)


def read_all(body, n):
    parts = []
    while True:
        block = body.read(n)
        assert len(block) <= n
        if not block:
            return b''.join(parts)
        parts.append(block)


def parse(body_bytes, content_type):
    """The parts of a multipart body, as the email package (an independent parser) sees them."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b'Content-Type: ' + content_type.encode('ascii') + b'\r\n\r\n' + body_bytes)
    assert msg.is_multipart() and not msg.defects
    return list(msg.iter_parts())


def test_same_bytes_as_urllib3_encoder(tmp_path):
    data = os.urandom(100000)
    path = write(tmp_path / 'job.jar', data)
    with mp.MultipartFileBody(path, filename='abc_job.jar', content_type='application/x-java-archive',
                              boundary='b0undary') as body:
        streamed = read_all(body, 8192)
        ctype = body.content_type
        length = len(body)
    expected, expected_ctype = encode_multipart_formdata(
        {'jarfile': ('abc_job.jar', data, 'application/x-java-archive')}, boundary='b0undary')
    assert streamed == expected
    assert ctype == expected_ctype
    assert length == len(expected)


@pytest.mark.parametrize('n', [1, 7, 100, 16384, 10 ** 9, -1])
def test_any_read_size_gives_the_same_body(tmp_path, n):
    data = os.urandom(50000)
    path = write(tmp_path / 'a.jar', data)
    with mp.MultipartFileBody(path, boundary='X') as ref:
        whole = ref.read()
    with mp.MultipartFileBody(path, boundary='X') as body:
        got = read_all(body, n) if n > 0 else body.read(n)
        assert body.read(10) == b''
        assert body.bytes_read == len(body) == len(whole)
    assert got == whole


def test_iteration_and_empty_file(tmp_path):
    path = write(tmp_path / 'empty.jar', b'')
    with mp.MultipartFileBody(path, boundary='X', chunk_size=3) as body:
        chunks = list(body)
        assert all(len(c) <= 3 for c in chunks)
        assert b''.join(chunks).endswith(b'\r\n\r\n\r\n--X--\r\n')
        assert sum(len(c) for c in chunks) == len(body)


def test_parts_parse_back_with_awkward_names(tmp_path):
    data = b'PK\x03\x04' + os.urandom(3000) + b'\r\n--X--\r\n'
    path = write(tmp_path / 'a.jar', data)
    name = u'j\u00f6b "v2"\r\nx.jar'
    with mp.MultipartFileBody(path, filename=name, content_type='application/x-java-archive') as body:
        raw = body.read()
        ctype = body.content_type
    parts = parse(raw, ctype)
    assert len(parts) == 1
    part = parts[0]
    assert part.get_content_disposition() == 'form-data'
    assert part.get_param('name', header='content-disposition') == 'jarfile'
    # RFC 7578 4.2 / HTML: '"', CR and LF percent-encoded, everything else UTF-8 as it is.
    assert part.get_filename() == u'j\u00f6b %22v2%22%0D%0Ax.jar'
    assert part.get_content_type() == 'application/x-java-archive'
    assert part.get_payload(decode=True) == data
    assert u'filename="j\u00f6b %22v2%22%0D%0Ax.jar"'.encode('utf-8') in raw
    assert b'filename*' not in raw


def test_quote_param():
    assert mp.quote_param('a"b\rc\nd') == b'a%22b%0Dc%0Ad'
    assert mp.quote_param(u'\u00e9.jar') == u'\u00e9.jar'.encode('utf-8')
    assert mp.quote_param(b'x.jar') == b'x.jar'


def test_boundaries_are_fresh():
    assert mp.new_boundary() != mp.new_boundary()


def test_missing_file_fails_at_once(tmp_path):
    with pytest.raises(IOError):
        mp.MultipartFileBody(str(tmp_path / 'nope.jar'))


def test_file_that_shrinks_or_grows_is_refused(tmp_path):
    path = write(tmp_path / 'a.jar', b'x' * 10000)
    with mp.MultipartFileBody(path) as body:
        body.read(200)
        with open(path, 'r+b') as f:
            f.truncate(5000)
        with pytest.raises(mp.SourceChanged) as err:
            read_all(body, 4096)
        assert not isinstance(err.value, (IOError, OSError))  # urllib3 would take an OSError for a broken socket
    path = write(tmp_path / 'b.jar', b'x' * 10000)
    with mp.MultipartFileBody(path) as body:
        body.read(200)
        with open(path, 'ab') as f:
            f.write(b'more')
        with pytest.raises(mp.SourceChanged):
            read_all(body, 4096)


def test_close(tmp_path):
    path = write(tmp_path / 'a.jar', b'x')
    body = mp.MultipartFileBody(path)
    assert not body.closed
    body.close()
    assert body.closed


# _http sends it as a stream ---------------------------------------------------

class _Sink(BaseHTTPRequestHandler):
    """Reads the request body in small blocks, keeps only its length and a digest of the head."""

    def do_POST(self):
        length = int(self.headers['Content-Length'])
        self.server.got_headers = dict(self.headers)
        head = self.rfile.read(min(length, 4096))
        left = length - len(head)
        while left:
            left -= len(self.rfile.read(min(left, 65536)))
        self.server.got = (length, head)
        answer = b'{"filename": "/tmp/x/abc_big.jar", "status": "success"}'
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def sink():
    server = HTTPServer(('127.0.0.1', 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_sent_over_a_socket_without_buffering(tmp_path, sink):
    """A 64 MiB body through the modules' HTTP transport allocates no more than a few blocks at a time."""
    size = 64 * MIB
    path = sparse(tmp_path / 'big.jar', size)
    url = 'http://127.0.0.1:%d/jars/upload' % sink.server_port
    session = _http.Session()
    session.request('POST', url, data=b'warm up', timeout=10)  # the connection outside the measurement
    tracemalloc.start()
    try:
        with mp.MultipartFileBody(path, filename='big.jar') as body:
            resp = session.request('POST', url, data=body, headers={'Content-Type': body.content_type}, timeout=30)
            sent = body.bytes_read
            expected_length = len(body)
        dummy, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert resp.status_code == 200
    assert sent == expected_length
    assert 'Transfer-Encoding' not in sink.got_headers
    length, head = sink.got
    assert length == expected_length
    assert head.startswith(b'--flinkops-') and b'filename="big.jar"' in head
    assert sink.got_headers['Content-Type'].startswith('multipart/form-data; boundary=flinkops-')
    # The server thread is traced too; both sides together stay far below the body's size.
    assert peak < 4 * MIB, 'peak %d bytes while sending %d' % (peak, size)
