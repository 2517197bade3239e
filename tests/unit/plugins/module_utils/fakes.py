"""Test doubles for the HTTP layer: a scripted ``_http.Session`` and a fake clock."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import json as jsonlib

from ansible_collections.flinkops.flink.plugins.module_utils import _http


class FakeClock(object):
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.001)


class FakeResponse(object):
    def __init__(self, status, body=None, reason='', headers=None):
        self.status_code = status
        if body is None:
            self.content = b''
        elif isinstance(body, (dict, list)):
            self.content = jsonlib.dumps(body).encode()
        else:
            self.content = body.encode() if isinstance(body, str) else body
        self.reason = reason
        self.headers = headers or {}

    @property
    def text(self):
        return self.content.decode('utf-8', 'replace')

    def json(self):
        return jsonlib.loads(self.text)


class FakeSession(object):
    """Answers requests from a handler ``f(method, url, kwargs) -> FakeResponse or exception``."""

    def __init__(self, handler):
        self.handler = handler
        self.calls = []
        self.headers = {}
        self.verify = True
        self.cert = None
        self.auth = None

    def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs))
        answer = self.handler(method, url, kwargs)
        if isinstance(answer, Exception):
            raise answer
        return answer


def refused():
    return _http.ConnectionError('Failed to establish a new connection to jm: [Errno 111] Connection refused')


def reset():
    return _http.ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end closed connection without "
                                 "response'))")


def read_timeout():
    return _http.ReadTimeout('Read timed out. (read timeout=10)')


def flink_error(status, *errors):
    return FakeResponse(status, {'errors': list(errors)})


LEADER_ELECTION_503 = flink_error(503, 'Service temporarily unavailable due to an ongoing leader election. Please '
                                       'refresh.')
RECIPIENT_UNREACHABLE_500 = flink_error(
    500, 'Internal server error.',
    '<Exception on server side:\norg.apache.flink.runtime.rpc.exceptions.RecipientUnreachableException: Could not send '
    'message [LocalFencedMessage(...)] from sender [unknown] to recipient [pekko.tcp://flink@127.0.0.1:6123/user/rpc/'
    'dispatcher_1], because the recipient is unreachable.\n\tat org.apache...\nEnd of exception on server side>')
DUPLICATE_23 = flink_error(
    500, 'org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.\n\tat org.apache'
         '.flink...\nCaused by: java.util.concurrent.CompletionException: org.apache.flink.runtime.client.'
         'DuplicateApplicationSubmissionException: Application has already been submitted.\n\tat java.base/...\n'
         'Caused by: org.apache.flink.runtime.client.DuplicateApplicationSubmissionException: Application has already '
         'been submitted.\n\tat org.apache...')
DUPLICATE_120 = flink_error(
    400, 'org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.\n\tat ...\n'
         'Caused by: org.apache.flink.runtime.client.DuplicateJobSubmissionException: Job has already been submitted.'
         '\n\tat ...')
