import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api

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
    import requests
    rig = client(scripted(FakeResponse(401, '<html>401 Authorization Required</html>')))
    with pytest.raises(api.FlinkConfigError) as err:
        rig.c.get('/overview', 'x')
    assert 'HTTP 401' in err.value.msg and 'url_username' in err.value.msg
    rig = client(scripted(requests.exceptions.SSLError('[SSL: WRONG_VERSION_NUMBER] wrong version number')))
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
    # A Session's verify/cert lose against REQUESTS_CA_BUNDLE in the environment; a request's win.
    rig = client(scripted(FakeResponse(200, {})), ca_path='/ca.pem', client_cert='/c.pem', client_key='/k.pem')
    rig.c.get('/overview', 'read the overview')
    kwargs = rig.session.calls[-1][2]
    assert kwargs['verify'] == '/ca.pem' and kwargs['cert'] == ('/c.pem', '/k.pem')
    rig = client(scripted(FakeResponse(200, {})), validate_certs=False)
    rig.c.get('/overview', 'read the overview')
    assert rig.session.calls[-1][2]['verify'] is False
