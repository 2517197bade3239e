import zipfile

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils import _job as jobmod

from .fake_flink import FakeFlink
from .fakes import FakeClock, FakeResponse, FakeSession, LEADER_ELECTION_503, flink_error, read_timeout, refused


@pytest.fixture
def jar(tmp_path):
    p = tmp_path / 'job.jar'
    with zipfile.ZipFile(str(p), 'w') as z:
        z.writestr('META-INF/MANIFEST.MF', 'Manifest-Version: 1.0\nMain-Class: org.example.Job\n')
    return str(p)


def desired(jar, state='present', name='orders', **kw):
    return jobmod.Desired(name=name, state=state, jar=jar if state != 'absent' else None, **kw)


def reconcile(flink, d, check_mode=False, diff=True, timeout=60):
    clock = FakeClock()
    session = FakeSession(flink)
    client = api.FlinkClient(['http://jm:8081'], api.Deadline(timeout, clock=clock), session=session,
                             sleep=clock.sleep)
    warnings = []
    r = jobmod.JobReconciler(client, d, check_mode=check_mode, diff=diff, warn=warnings.append, sleep=clock.sleep)
    result = r.run()
    result['_warnings'] = warnings
    result['_requests'] = client.requests_made
    return result


# input validation -------------------------------------------------------------

def test_bad_inputs(tmp_path, jar):
    with pytest.raises(jobmod.InputError, match='name must not be empty'):
        jobmod.Desired(name='  ', state='present', jar=jar)
    with pytest.raises(jobmod.InputError, match='does not exist'):
        jobmod.Desired(name='x', state='present', jar=str(tmp_path / 'nope.jar'))
    notjar = tmp_path / 'notes.jar'
    notjar.write_text('hello')
    with pytest.raises(jobmod.InputError, match='not a jar file'):
        jobmod.Desired(name='x', state='present', jar=str(notjar))
    with pytest.raises(jobmod.InputError, match='parallelism must be 1 or more'):
        jobmod.Desired(name='x', state='present', jar=jar, parallelism=0)
    with pytest.raises(jobmod.InputError, match='jar is required'):
        jobmod.Desired(name='x', state='present')


# present ------------------------------------------------------------------------

def test_present_submits_once_then_noop_with_one_request(jar):
    flink = FakeFlink()
    flink.job_name_of = lambda body: 'orders'
    d = desired(jar, args=['--a', 'b c', 'grüße'])
    first = reconcile(flink, d)
    assert first['changed'] and first['action'] == 'submitted'
    assert first['job_id'] == d.job_id(0)
    assert first['job']['state'] == 'RUNNING'
    assert len(flink.live()) == 1
    flink.requests.clear()
    second = reconcile(flink, desired(jar, args=['--a', 'b c', 'grüße']))
    assert not second['changed'] and second['action'] == 'none'
    assert second['_requests'] == 1 and flink.requests == [('GET', '/jobs/overview')]


def test_present_reuses_uploaded_jar_by_content(jar):
    flink = FakeFlink()
    reconcile(flink, desired(jar))
    flink.jobs.clear()
    reconcile(flink, desired(jar))
    assert len(flink.jars) == 1


def test_check_mode_sends_only_gets_and_predicts_id(jar):
    flink = FakeFlink()
    d = desired(jar)
    result = reconcile(flink, d, check_mode=True)
    assert result['changed'] and result['action'] == 'submitted'
    assert result['job_id'] == d.job_id(0)
    assert result['diff'] == {'before': {'state': 'absent'},
                              'after': {'state': 'running', 'job_id': d.job_id(0), 'spec': d.spec_hash[:8],
                                        'generation': 0, 'name': 'orders'}}
    assert flink.mutating() == []


def test_adopts_same_named_job_started_by_hand(jar):
    flink = FakeFlink()
    flink.add_job('ab' * 16, 'orders')
    result = reconcile(flink, desired(jar))
    assert not result['changed'] and result['adopted'] and result['job_id'] == 'ab' * 16
    assert flink.mutating() == []


def test_two_live_claims_fail_clearly(jar):
    flink = FakeFlink()
    flink.add_job('ab' * 16, 'orders')
    flink.add_job('cd' * 16, 'orders')
    with pytest.raises(jobmod.PlanError, match='More than one live job claims the name'):
        reconcile(flink, desired(jar))
    assert flink.mutating() == []


def test_ended_job_is_submitted_again_with_next_generation(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders', state='CANCELED')
    result = reconcile(flink, d)
    assert result['changed'] and result['generation'] == 1 and result['job_id'] == d.job_id(1)


def test_id_remembered_but_no_longer_listed_moves_to_next_generation(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.hooks.append(lambda m, p, b: flink_error(
        400, 'Caused by: org.apache.flink.runtime.client.DuplicateJobSubmissionException: Job has already been '
             'submitted.') if m == 'POST' and p.endswith('/run') and b['jobId'] == d.job_id(0) else None)
    result = reconcile(flink, d)
    assert result['changed'] and result['job_id'] == d.job_id(1)
    assert len(flink.live()) == 1


def test_concurrent_submission_that_lost_the_race_is_not_a_change(jar):
    flink = FakeFlink()
    d = desired(jar)

    def other_run_gets_there_first(method, path, body):
        if method == 'POST' and path.endswith('/run'):
            flink.add_job(body['jobId'], 'orders')   # the other agent's submission lands first
            return None                              # ... then ours reaches Flink: duplicate
    flink.hooks.append(other_run_gets_there_first)
    result = reconcile(flink, d)
    assert not result['changed'] and result['action'] == 'none'
    assert result['job_id'] == d.job_id(0)
    assert len(flink.live()) == 1


def test_lost_answer_is_retried_with_the_same_id(jar):
    flink = FakeFlink()
    d = desired(jar)

    def deliver_then_drop(method, path, body):
        if method == 'POST' and path.endswith('/run'):
            flink.route(method, path, body, {})   # Flink runs it ...
            return read_timeout()                 # ... but the answer never arrives
    flink.hooks.append(deliver_then_drop)
    result = reconcile(flink, d)
    assert result['changed'] and result['job_id'] == d.job_id(0)
    assert len(flink.live()) == 1
    runs = [r for r in flink.requests if r[0] == 'POST' and r[1].endswith('/run')]
    assert len(runs) == 2


def test_leader_election_during_observe_is_waited_out_not_read_as_empty(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders')
    for unused in range(3):
        flink.hooks.append(lambda m, p, b: LEADER_ELECTION_503 if p == '/jobs/overview' else None)
    result = reconcile(flink, d)
    assert not result['changed']
    assert flink.mutating() == []


def test_job_that_fails_on_start_reports_flinks_reason(jar):
    flink = FakeFlink()

    def fails(method, path, body):
        if method == 'POST' and path.endswith('/run'):
            flink.add_job(body['jobId'], 'orders', state='FAILED')
            return FakeResponse(200, {'jobid': body['jobId']})
    flink.hooks.append(fails)
    with pytest.raises(api.FlinkApiError, match='ended as FAILED: java.lang.RuntimeException: boom'):
        reconcile(flink, desired(jar))


def test_start_error_names_the_job_and_the_cause(jar):
    flink = FakeFlink()
    flink.hooks.append(lambda m, p, b: flink_error(
        500, 'x\nCaused by: java.lang.ClassNotFoundException: org.nope.Main') if p.endswith('/run') else None)
    with pytest.raises(api.FlinkApiError) as err:
        reconcile(flink, desired(jar, entry_class='org.nope.Main'))
    assert err.value.msg == "Could not start job 'orders': java.lang.ClassNotFoundException: org.nope.Main"
    assert flink.live() == []


def test_vanished_jar_is_uploaded_again(jar):
    flink = FakeFlink()
    reconcile(flink, desired(jar))
    flink.jobs.clear()
    stale, stale_name = list(flink.jars.items())[0]
    # Flink still lists the jar, but the file is gone (a restarted JobManager with a new web.tmpdir).
    flink.hooks.append(lambda m, p, b: FakeResponse(200, {'files': [{'id': stale, 'name': stale_name}]})
                       if p == '/jars' else None)
    del flink.jars[stale]
    result = reconcile(flink, desired(jar))
    assert result['changed'] and len(flink.live()) == 1


def test_drift_is_reported_not_touched(jar):
    flink = FakeFlink()
    old = desired(jar, args=['--v', '1'])
    flink.add_job(old.job_id(0), 'orders')
    result = reconcile(flink, desired(jar, args=['--v', '2']))
    assert not result['changed'] and result['drift']
    assert 'state=upgraded' in result['_warnings'][0]
    assert flink.mutating() == []


def test_run_body_carries_args_config_and_restore(jar):
    flink = FakeFlink()
    seen = []
    flink.hooks.append(lambda m, p, b: seen.append(b) if p.endswith('/run') else None)
    reconcile(flink, desired(jar, args=['a b', 'ü'], parallelism=2, entry_class='org.example.Job',
                             config={'pipeline.auto-watermark-interval': '1s', 'x.enabled': True},
                             restore_from='file:/sp/1'))
    body = seen[0]
    assert body['programArgsList'] == ['a b', 'ü']
    assert body['parallelism'] == 2 and body['entryClass'] == 'org.example.Job'
    config = dict(body['flinkConfiguration'])
    recorded = config.pop('pipeline.global-job-parameters')
    assert config == {'pipeline.auto-watermark-interval': '1s', 'x.enabled': 'true'}
    # The declared spec travels with the job, for upgrades and rollbacks.
    assert recorded.startswith('flinkops.spec:')
    spec, jar_name = ident.decode_spec(recorded.split(':', 1)[1])
    assert spec['args'] == ['a b', 'ü'] and spec['parallelism'] == 2 and jar_name == 'job.jar'
    assert body['savepointPath'] == 'file:/sp/1' and body['allowNonRestoredState'] is False
    assert 'programArgs' not in body


# absent -------------------------------------------------------------------------

def test_absent_cancels_every_live_instance(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders')
    flink.add_job('ab' * 16, 'orders')
    flink.add_job('cd' * 16, 'other')
    result = reconcile(flink, jobmod.Desired(name='orders', state='absent'))
    assert result['changed'] and result['action'] == 'cancelled'
    assert sorted(result['job_ids']) == sorted([d.job_id(0), 'ab' * 16])
    assert [j['name'] for j in flink.live()] == ['other']
    again = reconcile(flink, jobmod.Desired(name='orders', state='absent'))
    assert not again['changed'] and again['action'] == 'none'


def test_absent_with_savepoint_returns_path(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders')
    result = reconcile(flink, jobmod.Desired(name='orders', state='absent', savepoint=True, savepoint_dir='file:/sp'))
    assert result['action'] == 'stopped' and result['savepoint'].startswith('file:/sp/savepoint-')
    assert result['job']['state'] == 'FINISHED'


def test_a_recovering_job_that_declines_the_savepoint_is_stopped_once_it_runs(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders')
    flink.declined_stops = ['Checkpoint triggering task Source (1/1) is not being executed at the moment. '
                            'Failure reason: Not all required tasks are currently running.'] * 2
    result = reconcile(flink, jobmod.Desired(name='orders', state='absent', savepoint=True, savepoint_dir='file:/sp'))
    assert result['action'] == 'stopped' and result['savepoint'].startswith('file:/sp/savepoint-')
    stops = [r for r in flink.requests if r[0] == 'POST' and r[1].endswith('/stop')]
    assert len(stops) == 3


def test_a_savepoint_that_cannot_be_taken_fails_at_once_and_the_job_keeps_running(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders')
    flink.declined_stops = ['Failed to trigger savepoint: no savepoint directory configured'] * 5
    with pytest.raises(api.FlinkApiError, match='no savepoint directory configured'):
        reconcile(flink, jobmod.Desired(name='orders', state='absent', savepoint=True))
    stops = [r for r in flink.requests if r[0] == 'POST' and r[1].endswith('/stop')]
    assert len(stops) == 1 and len(flink.live()) == 1


def test_absent_check_mode_touches_nothing(jar):
    flink = FakeFlink()
    flink.add_job('ab' * 16, 'orders')
    result = reconcile(flink, jobmod.Desired(name='orders', state='absent'), check_mode=True)
    assert result['changed'] and result['action'] == 'cancelled'
    assert flink.mutating() == [] and len(flink.live()) == 1


def test_unreachable_cluster_fails_within_deadline(jar):
    clock = FakeClock()
    session = FakeSession(lambda m, u, k: refused())
    client = api.FlinkClient(['http://jm:8081'], api.Deadline(5, clock=clock), session=session, sleep=clock.sleep)
    with pytest.raises(api.FlinkNotReadyTimeout, match='refused'):
        jobmod.JobReconciler(client, desired(jar), sleep=clock.sleep).run()
    assert clock.now <= 5.5


# upgraded -----------------------------------------------------------------------

def run_body(flink, jid):
    return flink.bodies[jid]


def test_upgraded_with_same_spec_is_a_noop(jar):
    flink = FakeFlink()
    first = reconcile(flink, desired(jar, state='upgraded'))
    assert first['changed'] and first['action'] == 'submitted'
    flink.requests.clear()
    again = reconcile(flink, desired(jar, state='upgraded'))
    assert not again['changed'] and flink.requests == [('GET', '/jobs/overview')]


def test_upgrade_goes_through_a_savepoint_and_removes_the_old_jar(jar, tmp_path):
    flink = FakeFlink()
    old = reconcile(flink, desired(jar, args=['--v', '1']))
    old_jar_ids = set(flink.jars)
    new_jar = tmp_path / 'job-v2.jar'
    with zipfile.ZipFile(str(new_jar), 'w') as z:
        z.writestr('v2.txt', 'another version')
    check = reconcile(flink, desired(str(new_jar), state='upgraded', args=['--v', '2']), check_mode=True)
    assert check['changed'] and check['action'] == 'upgraded'
    assert check['diff']['before']['args'] == ['--v', '1'] and check['diff']['after']['args'] == ['--v', '2']
    assert len(flink.live()) == 1 and flink.live()[0]['jid'] == old['job_id']

    result = reconcile(flink, desired(str(new_jar), state='upgraded', args=['--v', '2']))
    assert result['changed'] and result['action'] == 'upgraded'
    assert result['previous_job_id'] == old['job_id']
    assert result['savepoint'].startswith('file:/sp/savepoint-')
    assert run_body(flink, result['job_id'])['savepointPath'] == result['savepoint']
    assert [j['jid'] for j in flink.live()] == [result['job_id']]
    assert not old_jar_ids & set(flink.jars), 'the previous version\'s jar was kept'


def test_new_version_whose_main_throws_never_touches_the_running_job(jar):
    flink = FakeFlink()
    old = reconcile(flink, desired(jar, args=['--v', '1']))
    flink.reject_plan = lambda body: flink_error(
        500, 'x\nCaused by: java.lang.IllegalStateException: boom in main') if '--fail' in body['programArgsList'] \
        else None
    flink.requests.clear()
    with pytest.raises(api.FlinkApiError) as err:
        reconcile(flink, desired(jar, state='upgraded', args=['--v', '1', '--fail']))
    assert 'boom in main' in err.value.msg and 'was not touched' in err.value.msg
    assert [j['jid'] for j in flink.live()] == [old['job_id']]
    assert not [r for r in flink.mutating() if '/stop' in r[1] or r[0] == 'PATCH']


def test_failed_upgrade_rolls_back_from_the_same_savepoint(jar):
    flink = FakeFlink()
    old = reconcile(flink, desired(jar, args=['--v', '1']))
    flink.reject_run = lambda body: flink_error(
        400, 'x\nCaused by: java.lang.IllegalStateException: Failed to rollback to checkpoint/savepoint. Cannot map '
             'checkpoint/savepoint state for operator abc to the new program') if '--v2' in body['programArgsList'] \
        else None
    with pytest.raises(jobmod.UpgradeError) as err:
        reconcile(flink, desired(jar, state='upgraded', args=['--v2']))
    msg = err.value.msg
    assert 'Cannot map checkpoint/savepoint state' in msg and 'previous version was restored' in msg
    result = err.value.result
    assert result['action'] == 'rolled_back' and result['previous_job_id'] == old['job_id']
    live = flink.live()
    assert len(live) == 1 and live[0]['jid'] == result['job_id'] != old['job_id']
    assert live[0]['jid'][:24] == old['job_id'][:24], 'the previous spec runs again'
    assert run_body(flink, live[0]['jid'])['savepointPath'] == result['savepoint']
    # The previous spec is now declared again: nothing to do.
    again = reconcile(flink, desired(jar, state='upgraded', args=['--v', '1']))
    assert not again['changed']


def test_failed_upgrade_of_a_job_with_unknown_spec_starts_nothing_unknown(jar):
    flink = FakeFlink()
    flink.add_job('ab' * 16, 'orders')  # started by hand: no recorded spec
    flink.reject_run = lambda body: flink_error(400, 'x\nCaused by: java.lang.Exception: cannot restore')
    with pytest.raises(jobmod.UpgradeError) as err:
        reconcile(flink, desired(jar, state='upgraded'))
    assert 'could not be restarted' in err.value.msg and err.value.result['savepoint'] in err.value.msg
    assert flink.live() == []


def test_last_state_needs_retained_checkpoints_before_touching_the_job(jar):
    flink = FakeFlink()
    old = reconcile(flink, desired(jar, args=['--v', '1']))
    with pytest.raises(api.FlinkApiError, match='RETAIN_ON_CANCELLATION'):
        reconcile(flink, desired(jar, state='upgraded', args=['--v', '2'], upgrade_mode='last-state'))
    assert [j['jid'] for j in flink.live()] == [old['job_id']]
    flink.retain_on_cancel = True
    flink.checkpoint_paths[old['job_id']] = 'file:/cp/%s/chk-7' % old['job_id']
    result = reconcile(flink, desired(jar, state='upgraded', args=['--v', '2'], upgrade_mode='last-state'))
    assert result['action'] == 'upgraded'
    assert run_body(flink, result['job_id'])['savepointPath'] == 'file:/cp/%s/chk-7' % old['job_id']
    assert not [r for r in flink.requests if r[1].endswith('/stop')]


def test_stateless_upgrade_starts_empty(jar):
    flink = FakeFlink()
    reconcile(flink, desired(jar, args=['--v', '1']))
    result = reconcile(flink, desired(jar, state='upgraded', args=['--v', '2'], upgrade_mode='stateless'))
    assert result['action'] == 'upgraded' and 'savepointPath' not in run_body(flink, result['job_id'])


def test_ended_job_resumes_from_its_savepoint_or_starts_empty_with_a_warning(jar):
    flink = FakeFlink()
    first = reconcile(flink, desired(jar))
    reconcile(flink, jobmod.Desired(name='orders', state='absent', savepoint=True))
    resumed = reconcile(flink, desired(jar))
    assert resumed['restored_from']['kind'] == 'savepoint'
    assert resumed['restored_from']['job_id'] == first['job_id']
    assert run_body(flink, resumed['job_id'])['savepointPath'] == resumed['restored_from']['path']
    # Cancelled without a retained checkpoint: empty start, and the user is told.
    reconcile(flink, jobmod.Desired(name='orders', state='absent'))
    flink.savepoints.clear()
    empty = reconcile(flink, desired(jar))
    assert 'restored_from' not in empty and 'starting without state' in empty['_warnings'][0]
    # restore_from wins; none forces an empty start.
    reconcile(flink, jobmod.Desired(name='orders', state='absent', savepoint=True))
    explicit = reconcile(flink, desired(jar, restore_from='none'))
    assert 'savepointPath' not in run_body(flink, explicit['job_id']) and explicit['_warnings'] == []


def test_each_savepoint_gets_a_directory_of_its_own():
    assert jobmod.savepoint_target('s3://b/sp/', 'abc') == 's3://b/sp/flinkops-abc'
    assert jobmod.savepoint_target(None, 'abc') is None


def test_a_lost_savepoint_is_found_in_its_own_directory_only_when_unambiguous(tmp_path):
    target = tmp_path / 'flinkops-abc'
    assert jobmod.find_local_savepoint('file://%s' % target) is None          # not there (yet)
    (target / 'savepoint-123456-aaaa').mkdir(parents=True)
    assert jobmod.find_local_savepoint('file://%s' % target) is None          # no _metadata: incomplete
    (target / 'savepoint-123456-aaaa' / '_metadata').write_bytes(b'x')
    expected = 'file:%s' % (target / 'savepoint-123456-aaaa')
    assert jobmod.find_local_savepoint('file://%s' % target) == expected
    assert jobmod.find_local_savepoint('file:%s' % target) == expected
    assert jobmod.find_local_savepoint(str(target)) == expected
    assert jobmod.find_local_savepoint('s3://bucket/flinkops-abc') is None    # not this host's to read
    (target / 'savepoint-123456-bbbb').mkdir()
    (target / 'savepoint-123456-bbbb' / '_metadata').write_bytes(b'x')
    assert jobmod.find_local_savepoint('file://%s' % target) is None          # two: never guess
