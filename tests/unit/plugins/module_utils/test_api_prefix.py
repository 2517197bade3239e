"""FlinkClient with a url that has a path prefix (a YARN proxy, a Kubernetes ingress path).

The prefix must stay in front of every REST path, with exactly one slash between them,
whether or not the user wrote the trailing slash.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api

from .fakes import FakeClock, FakeResponse, FakeSession, refused


def rig(urls, handler=None):
    clock = FakeClock()
    session = FakeSession(handler or (lambda method, url, kwargs: FakeResponse(200, {})))
    return api.FlinkClient(list(urls), api.Deadline(30, clock=clock), session=session, sleep=clock.sleep), session


@pytest.mark.parametrize('url', [
    'http://proxy:8088/flink', 'http://proxy:8088/flink/', 'http://proxy:8088/flink//', ' http://proxy:8088/flink/ ',
])
def test_validate_url_keeps_the_prefix_without_trailing_slashes(url):
    assert api.validate_url(url) == 'http://proxy:8088/flink'


def test_validate_url_keeps_a_deep_prefix():
    url = 'https://rm.example.com:8090/proxy/application_1700000000000_0001/'
    assert api.validate_url(url) == url.rstrip('/')


@pytest.mark.parametrize('url', ['http://proxy:8088/flink', 'http://proxy:8088/flink/'])
def test_every_request_goes_under_the_prefix(url):
    client, session = rig([url])
    client.get('/jobs/overview', 'list jobs')
    client.request('PATCH', '/jobs/abc', 'cancel job abc', params={'mode': 'cancel'})
    assert [(m, u) for m, u, _kw in session.calls] == [('GET', 'http://proxy:8088/flink/jobs/overview'),
                                                       ('PATCH', 'http://proxy:8088/flink/jobs/abc')]
    assert session.calls[1][2]['params'] == {'mode': 'cancel'}


def test_upload_goes_under_the_prefix(tmp_path):
    jar = tmp_path / 'job.jar'
    jar.write_bytes(b'PK\x03\x04' + b'j' * 100)

    def handler(method, url, kwargs):
        while kwargs['data'].read(4096):
            pass
        return FakeResponse(200, {'filename': '/tmp/flink-web-upload/1_job.jar', 'status': 'success'})

    client, session = rig(['http://proxy:8088/flink/'], handler)
    client.upload(str(jar), 'job.jar')
    assert [(m, u) for m, u, _kw in session.calls] == [('POST', 'http://proxy:8088/flink/jars/upload')]


def test_failover_between_prefixed_urls_keeps_each_prefix():
    def handler(method, url, kwargs):
        return refused() if url.startswith('http://a:8088/') else FakeResponse(200, {'jobs': []})

    client, session = rig(['http://a:8088/one/', 'http://b:8088/two'], handler)
    assert client.get('/jobs/overview', 'list jobs') == {'jobs': []}
    assert [u for _m, u, _kw in session.calls] == ['http://a:8088/one/jobs/overview', 'http://b:8088/two/jobs/overview']
    assert client.url == 'http://b:8088/two'
