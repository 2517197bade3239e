# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The modules' HTTP transport (``_http``) against real sockets on loopback.

Each failure the Flink client tells apart (nothing sent / maybe delivered) is produced here for real: a closed
port, a name that does not resolve, a server that reads the request and closes, one that never answers, a kept
connection the server closed while idle, TLS with a certificate made for the test, and a proxy from the
environment. The integration suite runs the same transport against Flink, nginx and the fault proxy.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
from ansible_collections.flinkops.flink.plugins.module_utils import _http


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def _answer(self):
        server = self.server
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        server.seen.append({'method': self.command, 'path': self.path, 'headers': dict(self.headers), 'body': body,
                            'client': self.client_address})
        mode = server.mode
        if mode == 'close-without-answer':
            self.close_connection = True
            return
        if mode == 'silent':
            server.release.wait(10)
            self.close_connection = True
            return
        answer = json.dumps({'path': self.path}).encode()
        status = 307 if mode == 'redirect' else 200
        self.send_response(status)
        if mode == 'redirect':
            self.send_header('Location', 'http://elsewhere/')
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer


class Server(object):
    def __init__(self, tls=None):
        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.seen = []
        self.httpd.mode = 'json'
        self.httpd.release = threading.Event()
        self.connections = 0
        original = self.httpd.get_request
        if tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(tls['cert'], tls['key'])
            if tls.get('client_ca'):
                ctx.load_verify_locations(tls['client_ca'])
                ctx.verify_mode = ssl.CERT_REQUIRED

            def get_request():
                sock, addr = original()
                self.connections += 1
                return ctx.wrap_socket(sock, server_side=True), addr
        else:
            def get_request():
                conn = original()
                self.connections += 1
                return conn
        self.httpd.get_request = get_request
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def seen(self):
        return self.httpd.seen

    def set_mode(self, mode):
        self.httpd.mode = mode

    def close(self):
        self.httpd.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for key in list(os.environ):
        if key.lower().endswith('_proxy'):
            monkeypatch.delenv(key)


def test_json_round_trip_headers_auth_params_and_keep_alive(server):
    session = _http.Session()
    session.headers.update({'Accept': 'application/json', 'X-Token': 'abc'})
    session.auth = ('user', 'pässword')
    base = 'http://127.0.0.1:%d' % server.port
    first = session.request('POST', base + '/jars/a b.jar/run', json={'x': 1}, params={'p': 'v w', 'none': None},
                            timeout=(2, 2))
    second = session.request('GET', base + '/jobs/overview', timeout=2)
    assert first.status_code == 200 and second.json() == {'path': '/jobs/overview'}
    post, get = server.seen
    assert post['path'] == '/jars/a%20b.jar/run?p=v+w'
    assert json.loads(post['body']) == {'x': 1} and post['headers']['Content-Type'] == 'application/json'
    assert post['headers']['X-Token'] == 'abc' and post['headers']['User-Agent'] == 'flinkops.flink'
    assert post['headers']['Authorization'] == 'Basic ' + base64.b64encode('user:pässword'.encode('latin-1')).decode()
    assert server.connections == 1, 'the second request reuses the kept-alive connection'
    assert get['client'] == post['client']


def test_empty_post_sends_content_length_zero(server):
    session = _http.Session()
    session.request('PATCH', 'http://127.0.0.1:%d/jobs/x' % server.port, timeout=2)
    assert server.seen[0]['headers']['Content-Length'] == '0'


def test_redirects_are_returned_not_followed(server):
    server.set_mode('redirect')
    resp = _http.Session().request('GET', 'http://127.0.0.1:%d/' % server.port, timeout=2)
    assert resp.status_code == 307 and resp.headers.get('location') == 'http://elsewhere/'


def test_refused_connection_is_a_connect_failure():
    with pytest.raises(_http.ConnectionError) as err:
        _http.Session().request('GET', 'http://127.0.0.1:%d/overview' % closed_port(), timeout=2)
    assert not isinstance(err.value, _http.SSLError)
    assert str(err.value).startswith('Failed to establish a new connection') and '[Errno 111]' in str(err.value)
    assert api._is_refused(err.value)


def test_unresolvable_host_is_named():
    with pytest.raises(_http.ConnectionError) as err:
        _http.Session().request('GET', 'http://no-such-host.invalid:8081/overview', timeout=5)
    assert "Failed to resolve 'no-such-host.invalid'" in str(err.value)
    assert api._name_resolution_failure(err.value) is not None


def test_answer_lost_after_the_request_was_read(server):
    server.set_mode('close-without-answer')
    with pytest.raises(_http.ConnectionError) as err:
        _http.Session().request('POST', 'http://127.0.0.1:%d/jars/x/run' % server.port, json={}, timeout=2)
    assert 'Connection aborted' in str(err.value) and not api._is_refused(err.value)
    assert len(server.seen) == 1, 'the request was delivered'


def test_no_answer_within_the_read_timeout(server):
    server.set_mode('silent')
    with pytest.raises(_http.ReadTimeout):
        _http.Session().request('GET', 'http://127.0.0.1:%d/overview' % server.port, timeout=(2, 0.3))


def test_a_kept_connection_the_server_closed_is_not_used(server):
    session = _http.Session()
    url = 'http://127.0.0.1:%d/overview' % server.port
    session.request('GET', url, timeout=2)
    # The server ends the idle connection (as an idle timeout or a restart does).
    for conns in session._idle.values():
        for conn in conns:
            conn.sock.shutdown(socket.SHUT_RD)
    server.httpd.shutdown()
    server.httpd.server_close()
    fresh = Server()
    try:
        moved = 'http://127.0.0.1:%d/overview' % fresh.port
        session.request('GET', moved, timeout=2)
        assert fresh.connections == 1
    finally:
        fresh.close()


def test_dropped_connection_is_detected():
    a, b = socket.socketpair()
    try:
        assert not _http._dropped(a)
        b.close()
        assert _http._dropped(a)
    finally:
        a.close()


def test_bad_urls():
    session = _http.Session()
    for url in ('ftp://h/x', 'http:///x', 'http://h:port/x'):
        with pytest.raises(_http.InvalidURL):
            session.request('GET', url, timeout=1)


# TLS -------------------------------------------------------------------------------

def openssl(*args):
    subprocess.run(('openssl',) + args, check=True, capture_output=True)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp('pki')
    names = ('ca.key', 'ca.pem', 'srv.key', 'srv.csr', 'srv.pem', 'ext', 'cli.key', 'cli.csr', 'cli.pem',
             'other.key', 'other.pem')
    p = dict((n, str(d / n)) for n in names)
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p['ca.key'], '-out', p['ca.pem'], '-days',
            '2', '-subj', '/CN=test-ca')
    with open(p['ext'], 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1,DNS:localhost\n')
    for who in ('srv', 'cli'):
        openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p[who + '.key'], '-out', p[who + '.csr'],
                '-subj', '/CN=%s' % who)
        openssl('x509', '-req', '-in', p[who + '.csr'], '-CA', p['ca.pem'], '-CAkey', p['ca.key'],
                '-CAcreateserial', '-out', p[who + '.pem'], '-days', '2', '-extfile', p['ext'])
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p['other.key'], '-out', p['other.pem'],
            '-days', '2', '-subj', '/CN=other')
    return p


def test_tls_with_the_ca_without_verification_and_with_the_wrong_ca(pki):
    srv = Server(tls={'cert': pki['srv.pem'], 'key': pki['srv.key']})
    try:
        url = 'https://127.0.0.1:%d/overview' % srv.port
        session = _http.Session()
        assert session.request('GET', url, timeout=5, verify=pki['ca.pem']).status_code == 200
        assert session.request('GET', url, timeout=5, verify=False).status_code == 200
        with pytest.raises(_http.SSLError) as err:
            session.request('GET', url, timeout=5, verify=pki['other.pem'])
        assert 'CERTIFICATE_VERIFY_FAILED' in str(err.value)
        plain = 'http://127.0.0.1:%d/overview' % srv.port
        with pytest.raises(_http.RequestException):
            session.request('GET', plain, timeout=2)
    finally:
        srv.close()


def test_https_against_plain_http_is_a_tls_error(server):
    with pytest.raises(_http.SSLError):
        _http.Session().request('GET', 'https://127.0.0.1:%d/overview' % server.port, timeout=2, verify=False)


def test_client_certificate(pki):
    srv = Server(tls={'cert': pki['srv.pem'], 'key': pki['srv.key'], 'client_ca': pki['ca.pem']})
    try:
        url = 'https://127.0.0.1:%d/overview' % srv.port
        ok = _http.Session().request('GET', url, timeout=5, verify=pki['ca.pem'], cert=(pki['cli.pem'], pki['cli.key']))
        assert ok.status_code == 200
        with pytest.raises(_http.SSLError):
            _http.Session().request('GET', url, timeout=5, verify=pki['ca.pem'])
        with pytest.raises(_http.SSLError) as err:
            _http.Session().request('GET', url, timeout=5, verify=pki['ca.pem'], cert=('/nonexistent.pem', None))
        assert 'Could not load the client certificate /nonexistent.pem' in str(err.value)
    finally:
        srv.close()


# proxies from the environment ----------------------------------------------------

def test_http_proxy_from_the_environment_and_no_proxy(server, monkeypatch):
    proxy = Server()    # a plain server sees what a forward proxy would be asked
    try:
        monkeypatch.setenv('http_proxy', 'http://u:p%%40ss@127.0.0.1:%d' % proxy.port)
        target = 'http://flink.example:8081/jobs/overview'
        _http.Session().request('GET', target, timeout=2)
        asked = proxy.seen[-1]
        assert asked['path'] == target
        assert asked['headers']['Proxy-Authorization'] == 'Basic ' + base64.b64encode(b'u:p@ss').decode()
        monkeypatch.setenv('no_proxy', '127.0.0.1')
        _http.Session().request('GET', 'http://127.0.0.1:%d/direct' % server.port, timeout=2)
        assert server.seen[-1]['path'] == '/direct' and len(proxy.seen) == 1
    finally:
        proxy.close()
