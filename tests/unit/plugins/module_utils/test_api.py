from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
from ansible_collections.flinkops.flink.plugins.module_utils import _http

from .fakes import (DUPLICATE_23, DUPLICATE_120, LEADER_ELECTION_503, RECIPIENT_UNREACHABLE_500, FakeClock,
                    FakeResponse, FakeSession, flink_error, read_timeout, refused, reset)


class Rig(object):
    """A FlinkClient on a scripted session and a fake clock."""

    def __init__(self, handler, urls=('http://jm1:8081',), timeout=30, **kw):
        self.clock = FakeClock()
        self.session = FakeSession(handler)
        self.c = api.FlinkClient(list(urls), api.Deadline(timeout, clock=self.clock), session=self.session,
                                 sleep=self.clock.sleep, **kw)


def client(handler, **kw):
    return Rig(handler, **kw)


def scripted(*answers):
    answers = list(answers)

    def handler(method, url, kwargs):
        return answers.pop(0) if len(answers) > 1 else answers[0]
    return handler


# classification -----------------------------------------------------------

def test_root_cause_takes_last_caused_by():
    assert api.root_cause(DUPLICATE_23.json()) == ('org.apache.flink.runtime.client.DuplicateApplicationSubmission'
                                                   'Exception: Application has already been submitted.')


def test_root_cause_of_sql_is_the_table_apis_reason_not_the_parsers_internals():
    # As Flink 2.3 answered /jars/<id>/plan for SQL that does not parse (trace lines shortened).
    trace = ('org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.\n'
             'Caused by: org.apache.flink.client.program.ProgramInvocationException: The main method caused an error: '
             'SQL parse failed. Non-query expression encountered in illegal context\n'
             'Caused by: org.apache.flink.table.api.SqlParserException: SQL parse failed. Non-query expression '
             'encountered in illegal context\n\tat org.apache.flink.table.planner.parse.CalciteParser.parseSqlList\n'
             'Caused by: org.apache.calcite.sql.parser.SqlParseException: Non-query expression encountered\n'
             'Caused by: org.apache.calcite.runtime.CalciteException: Non-query expression encountered\n')
    assert api.root_cause({'errors': [trace]}) == ('org.apache.flink.table.api.SqlParserException: SQL parse failed. '
                                                   'Non-query expression encountered in illegal context')


def test_root_cause_without_trace_and_html():
    assert api.root_cause({'errors': ['Not found: /jobs/x']}) == 'Not found: /jobs/x'
    assert api.root_cause('<html><body><h1>502 Bad Gateway</h1></body></html>') == '502 Bad Gateway'
    assert api.root_cause(None) == ''


@pytest.mark.parametrize('status,body,expected', [
    (503, LEADER_ELECTION_503.text, True),
    (500, RECIPIENT_UNREACHABLE_500.text, True),
    (502, '<html>bad gateway</html>', True),
    (504, '', True),
    (503, '{"errors": ["Rescaling is temporarily disabled. See FLINK-12312."]}', False),
    (500, DUPLICATE_23.text, False),
    (400, DUPLICATE_120.text, False),
    (500, '{"errors": ["java.lang.ClassNotFoundException: org.nope.Main"]}', False),
    (404, '{"errors": ["Job could not be found."]}', False),
])
def test_not_ready_classification(status, body, expected):
    assert api.is_not_ready(status, body) is expected


def test_duplicate_detection_both_versions():
    assert api.is_duplicate_submission(DUPLICATE_23.text)
    assert api.is_duplicate_submission(DUPLICATE_120.text)
    assert not api.is_duplicate_submission(RECIPIENT_UNREACHABLE_500.text)


@pytest.mark.parametrize('url', ['', 'flink:8081', 'ftp://flink:8081', 'http://', 'http://flink:port', 'http://f:8081/?a=1'])
def test_malformed_urls(url):
    with pytest.raises(api.FlinkConfigError) as err:
        api.validate_url(url)
    assert 'URL' in err.value.msg


def test_valid_url_is_normalised():
    assert api.validate_url(' https://flink.example.com:8443/ ') == 'https://flink.example.com:8443'


# client retry policy ----------------------------------------------------------

def test_not_ready_answers_are_waited_out():
    rig = client(scripted(LEADER_ELECTION_503, RECIPIENT_UNREACHABLE_500, refused(),
                          FakeResponse(200, {'jobs': []})))
    assert rig.c.get('/jobs/overview', 'list jobs') == {'jobs': []}
    assert len(rig.session.calls) == 4
    assert len(rig.clock.sleeps) == 3


def test_not_ready_until_deadline_fails_clearly():
    rig = client(scripted(LEADER_ELECTION_503), timeout=5)
    with pytest.raises(api.FlinkNotReadyTimeout) as err:
        rig.c.get('/jobs/overview', 'list jobs')
    assert 'within wait_timeout=5 s' in err.value.msg
    assert 'leader election' in err.value.msg
    assert rig.clock.now <= 5.5


def test_unreachable_cluster_is_bounded_by_deadline():
    rig = client(scripted(refused()), timeout=3)
    with pytest.raises(api.FlinkNotReadyTimeout) as err:
        rig.c.get('/overview', 'read the cluster overview')
    assert 'refused' in err.value.msg
    assert rig.clock.now <= 3.5


def test_failover_to_next_url_without_sleeping():
    def handler(method, url, kwargs):
        if url.startswith('http://dead'):
            return refused()
        return FakeResponse(200, {'ok': True})
    rig = client(handler, urls=('http://dead:8081', 'http://alive:8081'))
    assert rig.c.get('/overview', 'x') == {'ok': True}
    assert [call[1] for call in rig.session.calls] == ['http://dead:8081/overview', 'http://alive:8081/overview']
    assert rig.clock.sleeps == []
    assert rig.c.url == 'http://alive:8081'


def test_other_errors_fail_at_once_with_root_cause():
    rig = client(scripted(flink_error(500, 'x\nCaused by: java.lang.ClassNotFoundException: org.nope.Main')))
    with pytest.raises(api.FlinkApiError) as err:
        rig.c.request('POST', '/jars/j/run', "start job 'x'", json_body={})
    assert err.value.msg.startswith("Could not start job 'x': java.lang.ClassNotFoundException: org.nope.Main")
    assert len(rig.session.calls) == 1


def test_lost_answer_is_raised_when_asked():
    rig = client(scripted(read_timeout()))
    with pytest.raises(api.FlinkLostAnswer):
        rig.c.request('POST', '/jars/j/run', 'start', json_body={}, retry_lost=False)
    rig = client(scripted(reset()))
    with pytest.raises(api.FlinkLostAnswer):
        rig.c.request('POST', '/jars/j/run', 'start', json_body={}, retry_lost=False)


def test_lost_answer_is_retried_by_default():
    rig = client(scripted(read_timeout(), reset(), FakeResponse(202, {})))
    assert rig.c.request('PATCH', '/jobs/x', 'cancel', ok_statuses=(202,)) == {}
    assert len(rig.session.calls) == 3


def test_auth_and_tls_errors_are_not_retried():
    rig = client(scripted(FakeResponse(401, '<html>401 Authorization Required</html>')))
    with pytest.raises(api.FlinkConfigError) as err:
        rig.c.get('/overview', 'x')
    assert 'HTTP 401' in err.value.msg and 'url_username' in err.value.msg
    rig = client(scripted(_http.SSLError('[SSL: WRONG_VERSION_NUMBER] wrong version number')))
    with pytest.raises(api.FlinkConfigError) as err:
        rig.c.get('/overview', 'x')
    assert 'TLS handshake' in err.value.msg
    assert len(rig.session.calls) == 1


def test_404_allowed_returns_none():
    rig = client(scripted(flink_error(404, 'Job could not be found.')))
    assert rig.c.get('/jobs/x', 'read job', allow_404=True) is None


def test_non_json_answer_is_a_clear_error():
    rig = client(scripted(FakeResponse(200, '<html>hello</html>')))
    with pytest.raises(api.FlinkApiError) as err:
        rig.c.get('/overview', 'read the overview')
    assert 'not JSON' in err.value.msg


def test_session_settings():
    rig = client(scripted(FakeResponse(200, {})), ca_path='/ca.pem', client_cert='/c.pem',
                 client_key='/k.pem', username='u', password='p', headers={'X-T': 1})
    assert rig.session.verify == '/ca.pem'
    assert rig.session.cert == ('/c.pem', '/k.pem')
    assert rig.session.auth == ('u', 'p')
    assert rig.session.headers['X-T'] == '1'
    with pytest.raises(api.FlinkConfigError):
        client(scripted(FakeResponse(200, {})), client_key='/k.pem')


def test_tls_settings_go_with_every_request():
    rig = client(scripted(FakeResponse(200, {})), ca_path='/ca.pem', client_cert='/c.pem', client_key='/k.pem')
    rig.c.get('/overview', 'read the overview')
    kwargs = rig.session.calls[-1][2]
    assert kwargs['verify'] == '/ca.pem' and kwargs['cert'] == ('/c.pem', '/k.pem')
    rig = client(scripted(FakeResponse(200, {})), validate_certs=False)
    rig.c.get('/overview', 'read the overview')
    assert rig.session.calls[-1][2]['verify'] is False


# streamed uploads --------------------------------------------------------------

def unresolvable(host='nohost', reason='[Errno -2] Name or service not known'):
    """What ``_http`` raises for a host name that does not resolve (test_http.py checks it against a real lookup)."""
    return _http.ConnectionError("Failed to resolve '%s' (%s)" % (host, reason))


class Uploads(object):
    """A handler that reads every streamed body to its end, as the socket would, and records it."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.bodies = []
        self.streams = []

    def __call__(self, method, url, kwargs):
        stream = kwargs['data']
        self.streams.append(stream)
        assert kwargs['json'] is None
        assert kwargs['headers']['Content-Type'] == stream.content_type
        chunks = []
        while True:
            block = stream.read(16384)
            if not block:
                break
            chunks.append(block)
        self.bodies.append(b''.join(chunks))
        assert len(self.bodies[-1]) == len(stream)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


UPLOADED = FakeResponse(200, {'filename': '/tmp/flink-web/upload/1234_abc_job.jar', 'status': 'success'})


@pytest.fixture
def jar(tmp_path):
    path = tmp_path / 'job.jar'
    path.write_bytes(b'PK\x03\x04' + b'j' * 5000)
    return str(path)


def test_upload_streams_a_multipart_body(jar):
    handler = Uploads(UPLOADED)
    rig = client(handler)
    assert rig.c.upload(jar, 'abc_job.jar') == UPLOADED.json()
    method, url, kwargs = rig.session.calls[0]
    assert (method, url) == ('POST', 'http://jm1:8081/jars/upload')
    body = handler.bodies[0]
    assert b'Content-Disposition: form-data; name="jarfile"; filename="abc_job.jar"\r\n' in body
    assert b'Content-Type: application/x-java-archive\r\n\r\nPK\x03\x04' + b'j' * 5000 + b'\r\n--' in body
    assert handler.streams[0].closed


def test_upload_is_read_afresh_on_every_attempt(jar):
    handler = Uploads(refused(), LEADER_ELECTION_503, UPLOADED)
    rig = client(handler)
    rig.c.upload(jar, 'abc_job.jar', 'upload jar job.jar')
    assert len(handler.streams) == 3
    assert len(set(id(s) for s in handler.streams)) == 3         # a new stream per attempt
    assert all(s.closed for s in handler.streams)
    # Same payload each time (boundaries differ).
    payloads = [b.split(b'\r\n\r\n', 1)[1].rsplit(b'\r\n--', 1)[0] for b in handler.bodies]
    assert payloads[0] == payloads[1] == payloads[2]


def test_upload_lost_answer_is_raised_not_repeated(jar):
    for lost in (reset(), read_timeout(), FakeResponse(502, '<html>bad gateway</html>')):
        handler = Uploads(lost, UPLOADED)
        rig = client(handler)
        with pytest.raises(api.FlinkLostAnswer) as err:
            rig.c.upload(jar, 'abc_job.jar', 'upload jar job.jar')
        assert 'upload jar job.jar' in err.value.msg
        assert len(rig.session.calls) == 1
        assert handler.streams[0].closed


def test_upload_may_be_retried_when_asked(jar):
    rig = client(Uploads(reset(), UPLOADED))
    assert rig.c.upload(jar, 'abc_job.jar', retry_lost=True)['status'] == 'success'
    assert len(rig.session.calls) == 2


def test_upload_of_a_missing_file_fails_before_sending(tmp_path):
    rig = client(Uploads(UPLOADED))
    with pytest.raises(api.FlinkError) as err:
        rig.c.upload(str(tmp_path / 'nope.jar'), 'abc_nope.jar', 'upload jar nope.jar')
    assert err.value.msg.startswith('Could not upload jar nope.jar:') and 'No such file' in err.value.msg
    assert rig.session.calls == []


def test_upload_of_a_file_that_changes_is_an_error(jar):
    def handler(method, url, kwargs):
        stream = kwargs['data']
        stream.read(100)
        with open(jar, 'r+b') as f:
            f.truncate(1000)
        while stream.read(16384):
            pass
    rig = client(handler)
    with pytest.raises(api.FlinkError) as err:
        rig.c.upload(jar, 'abc_job.jar', 'upload jar job.jar')
    assert 'shrank' in err.value.msg and not isinstance(err.value, api.FlinkLostAnswer)
    assert len(rig.session.calls) == 1


def test_body_factory_and_json_do_not_mix(jar):
    rig = client(scripted(FakeResponse(200, {})))
    with pytest.raises(ValueError):
        rig.c.request('POST', '/jars/upload', 'x', json_body={'a': 1}, body_factory=lambda: (None, 'x'))


# per-request timeout --------------------------------------------------------------

def test_default_timeout_is_request_timeout_bounded_by_deadline():
    rig = client(scripted(FakeResponse(200, {})), timeout=4, request_timeout=10)
    rig.c.get('/overview', 'x')
    assert rig.session.calls[0][2]['timeout'] == 4
    rig.clock.now = 3.9
    rig.c.get('/overview', 'x')
    assert rig.session.calls[1][2]['timeout'] == 0.5


def test_explicit_timeout_is_the_read_timeout_and_not_cut_by_the_deadline():
    rig = client(scripted(FakeResponse(200, {})), timeout=60, request_timeout=10)
    rig.c.request('POST', '/jars/j/plan', 'plan', json_body={}, timeout=300)
    assert rig.session.calls[0][2]['timeout'] == (10, 300)
    rig.clock.now = 58
    rig.c.request('POST', '/jars/j/plan', 'plan', json_body={}, timeout=300)
    assert rig.session.calls[1][2]['timeout'] == (2, 300)       # connect: remaining; read: as given


def test_explicit_timeout_in_lost_answer_message():
    rig = client(scripted(read_timeout()))
    with pytest.raises(api.FlinkLostAnswer) as err:
        rig.c.request('POST', '/jars/j/run', 'start', json_body={}, retry_lost=False, timeout=120)
    assert 'within 120 s' in err.value.msg


# host names that do not resolve ----------------------------------------------------

def test_unresolvable_host_is_a_config_error_after_a_short_grace():
    rig = client(scripted(unresolvable('jm-typo')), urls=('http://jm-typo:8081',), timeout=120)
    with pytest.raises(api.FlinkConfigError) as err:
        rig.c.get('/overview', 'read the cluster overview')
    assert err.value.msg == ('Cannot resolve host jm-typo of url http://jm-typo:8081: [Errno -2] Name or service '
                             'not known. Check the url option.')
    assert len(rig.session.calls) == api.FlinkClient.DNS_GRACE_ATTEMPTS
    assert rig.clock.now < 2
    assert rig.c.log[-1][2] == 'unresolved'


def test_slow_failing_lookups_end_by_time():
    def handler(method, url, kwargs):
        rig.clock.now += 4          # a resolver that times out
        return unresolvable('jm', '[Errno -3] Temporary failure in name resolution')
    rig = client(handler, urls=('http://jm:8081',), timeout=120)
    with pytest.raises(api.FlinkConfigError) as err:
        rig.c.get('/overview', 'x')
    assert 'Temporary failure in name resolution' in err.value.msg
    assert len(rig.session.calls) == 2
    assert rig.clock.now < 10


def test_host_that_resolves_within_the_grace_is_fine():
    rig = client(scripted(unresolvable('jm'), unresolvable('jm'), FakeResponse(200, {'ok': 1})),
                 urls=('http://jm:8081',))
    assert rig.c.get('/overview', 'x') == {'ok': 1}
    assert rig.c._unresolved == {}


def test_every_unresolvable_url_is_named():
    def handler(method, url, kwargs):
        return unresolvable(url.split('//')[1].split(':')[0])
    rig = client(handler, urls=('http://jm-a:8081', 'http://jm-b:8081'), timeout=120)
    with pytest.raises(api.FlinkConfigError) as err:
        rig.c.get('/overview', 'x')
    assert err.value.msg == ('Cannot resolve host jm-a of url http://jm-a:8081: [Errno -2] Name or service not '
                             'known. Cannot resolve host jm-b of url http://jm-b:8081: [Errno -2] Name or service '
                             'not known. Check the url option.')
    assert len(rig.session.calls) == 2 * api.FlinkClient.DNS_GRACE_ATTEMPTS


def test_other_urls_are_still_tried_while_one_does_not_resolve():
    def handler(method, url, kwargs):
        if 'jm-typo' in url:
            return unresolvable('jm-typo')
        return FakeResponse(200, {'ok': 1})
    rig = client(handler, urls=('http://jm-typo:8081', 'http://jm-b:8081'))
    assert rig.c.get('/overview', 'x') == {'ok': 1}
    assert rig.clock.sleeps == []


def test_unresolvable_url_next_to_a_starting_one_waits_for_the_deadline():
    # One JobManager's name does not resolve (yet), the other refuses: the cluster may still come up.
    def handler(method, url, kwargs):
        if 'jm-a' in url:
            return unresolvable('jm-a')
        return refused()
    rig = client(handler, urls=('http://jm-a:8081', 'http://jm-b:8081'), timeout=10)
    with pytest.raises(api.FlinkNotReadyTimeout) as err:
        rig.c.get('/overview', 'x')
    assert 'cannot resolve jm-a (url http://jm-a:8081)' in err.value.msg
    urls = [call[1] for call in rig.session.calls]
    assert urls.count('http://jm-a:8081/overview') > api.FlinkClient.DNS_GRACE_ATTEMPTS   # still in rotation
    assert rig.clock.now >= 10


def test_refused_is_not_taken_for_unresolvable():
    rig = client(scripted(refused()), timeout=3)
    with pytest.raises(api.FlinkNotReadyTimeout):
        rig.c.get('/overview', 'x')
    assert rig.c._unresolved == {}
