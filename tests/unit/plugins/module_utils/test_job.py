from __future__ import absolute_import, division, print_function

__metaclass__ = type

import zipfile

import pytest

from ansible_collections.flinkops.flink.plugins.module_utils import _api as api
from ansible_collections.flinkops.flink.plugins.module_utils import _identity as ident
from ansible_collections.flinkops.flink.plugins.module_utils import _job as jobmod
from ansible_collections.flinkops.flink.plugins.module_utils import _model as model
from ansible_collections.flinkops.flink.plugins.module_utils import _service as service

from .fake_flink import FakeFlink
from .fakes import FakeClock, FakeResponse, FakeSession, LEADER_ELECTION_503, flink_error, read_timeout, refused


@pytest.fixture
def jar(tmp_path):
    p = tmp_path / 'job.jar'
    with zipfile.ZipFile(str(p), 'w') as z:
        z.writestr('META-INF/MANIFEST.MF', 'Manifest-Version: 1.0\nMain-Class: org.example.Job\n')
    return str(p)


def desired(jar, state='present', name='orders', **kw):
    return model.Desired(name=name, state=state, jar=jar if state != 'absent' else None, **kw)


def reconcile(flink, d, check_mode=False, diff=True, timeout=300, clock=None):
    """One module run against ``flink``. Pass ``clock`` to share fake time with the fake's job scripts."""
    if clock is None:
        clock = FakeClock()
    else:
        flink.now = clock
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
    with pytest.raises(model.InputError, match='name must not be empty'):
        model.Desired(name='  ', state='present', jar=jar)
    with pytest.raises(model.InputError, match='does not exist'):
        model.Desired(name='x', state='present', jar=str(tmp_path / 'nope.jar'))
    notjar = tmp_path / 'notes.jar'
    notjar.write_text('hello')
    with pytest.raises(model.InputError, match='not a jar file'):
        model.Desired(name='x', state='present', jar=str(notjar))
    with pytest.raises(model.InputError, match='parallelism must be 1 or more'):
        model.Desired(name='x', state='present', jar=jar, parallelism=0)
    with pytest.raises(model.InputError, match='a program is required when state=present: jar, sql'):
        model.Desired(name='x', state='present')


# present ------------------------------------------------------------------------

def gen_id(name, g):
    return ident.job_id(name, g)


def record_of(flink, jid):
    params = flink.bodies[jid]['flinkConfiguration']['pipeline.global-job-parameters']
    entry = [kv for kv in params.split(',') if kv.startswith(ident.SPEC_PARAM + ':')][0]
    return ident.decode_record(entry.split(':', 1)[1])


def start(flink, jar, name='orders', **kw):
    """A job as an earlier flink_job run left it (with its record)."""
    return reconcile(flink, desired(jar, name=name, **kw))


# identity -------------------------------------------------------------------------

def test_job_id_depends_on_name_and_generation_only(jar, tmp_path):
    other = tmp_path / 'other.jar'
    with zipfile.ZipFile(str(other), 'w') as z:
        z.writestr('x', 'y')
    a = desired(jar, args=['--v', '1'])
    b = desired(str(other), args=['--v', '2'], parallelism=3, config={'a.b': 1})
    assert a.job_id(0) == b.job_id(0) and a.job_id(1) != a.job_id(0)
    assert a.spec_hash != b.spec_hash
    assert ident.parse_job_id(a.job_id(7)).generation == 7
    assert ident.belongs_to(a.job_id(3), 'orders') and not ident.belongs_to(a.job_id(3), 'orders-backfill')


# present ------------------------------------------------------------------------

def test_present_submits_once_then_noop_with_three_requests(jar):
    flink = FakeFlink()
    flink.job_name_of = lambda body: 'orders'
    d = desired(jar, args=['--a', 'b c', 'grüße'])
    first = reconcile(flink, d)
    assert first['changed'] and first['action'] == 'submitted'
    assert first['job_id'] == d.job_id(0)
    assert first['job']['state'] == 'RUNNING' and first['health'] == 'healthy'
    assert len(flink.live()) == 1
    flink.requests.clear()
    second = reconcile(flink, desired(jar, args=['--a', 'b c', 'grüße']))
    assert not second['changed'] and second['action'] == 'none' and not second['drift']
    assert flink.requests == [('GET', '/config'), ('GET', '/jobs/overview'), ('GET', '/jobs/%s/config' % d.job_id(0))]


def test_present_reuses_uploaded_jar_by_content(jar):
    flink = FakeFlink()
    reconcile(flink, desired(jar))
    flink.jobs.clear()
    reconcile(flink, desired(jar, restore_from='none'))
    assert len(flink.jars) == 1


def test_check_mode_sends_only_gets_and_predicts_id(jar):
    flink = FakeFlink()
    d = desired(jar)
    result = reconcile(flink, d, check_mode=True)
    assert result['changed'] and result['action'] == 'submitted'
    assert result['job_id'] == d.job_id(0)
    after = result['diff']['after']
    assert result['diff']['before'] == {'state': 'absent'}
    assert after['job_id'] == d.job_id(0) and after['generation'] == 0 and after['spec_hash'] == d.spec_hash
    assert flink.mutating() == []


def test_adopts_same_named_job_started_by_hand(jar):
    flink = FakeFlink()
    flink.add_job('ab' * 16, 'orders')
    result = reconcile(flink, desired(jar))
    assert not result['changed'] and result['adopted'] and result['job_id'] == 'ab' * 16
    assert flink.mutating() == []


def test_never_adopts_a_job_another_declaration_owns(jar):
    # enrich and enrich-backfill run the same program, which calls execute("enrich").
    flink = FakeFlink()
    flink.job_name_of = lambda body: 'enrich'
    backfill = start(flink, jar, name='enrich-backfill', args=['--mode', 'backfill'])
    assert backfill['changed']
    enrich = reconcile(flink, desired(jar, name='enrich'))
    assert enrich['changed'] and enrich['action'] == 'submitted' and not enrich['adopted']
    assert enrich['job_id'] == gen_id('enrich', 0)
    assert len(flink.live('enrich')) == 2
    gone = reconcile(flink, model.Desired(name='enrich', state='absent'))
    assert gone['job_ids'] == [enrich['job_id']]
    assert [j['jid'] for j in flink.live()] == [backfill['job_id']]
    # upgrading "enrich" never touches the backfill job either
    again = reconcile(flink, desired(jar, name='enrich', state='upgraded', restore_from='none'))
    assert again['action'] == 'submitted' and flink.jobs[backfill['job_id']]['state'] == 'RUNNING'


def test_two_live_claims_fail_clearly(jar):
    flink = FakeFlink()
    flink.add_job('ab' * 16, 'orders')
    flink.add_job('cd' * 16, 'orders')
    with pytest.raises(model.PlanError, match='More than one live job claims the name'):
        reconcile(flink, desired(jar))
    assert flink.mutating() == []


def test_ended_job_is_submitted_again_with_next_generation_from_its_state(jar):
    flink = FakeFlink()
    d = desired(jar)
    first = start(flink, jar)
    flink.checkpoint_paths[first['job_id']] = 'file:/cp/chk-3'
    flink.end(first['job_id'], 'FAILED')
    result = reconcile(flink, d)
    assert result['changed'] and result['generation'] == 1 and result['job_id'] == d.job_id(1)
    assert result['restored_from'] == {'path': 'file:/cp/chk-3', 'kind': 'checkpoint', 'job_id': first['job_id']}


def test_forgotten_history_costs_logarithmic_refusals(jar):
    flink = FakeFlink()
    for g in range(100):
        flink.forgotten.add(gen_id('orders', g))
    result = reconcile(flink, desired(jar, restore_from='file:/sp/known'))
    refused = [r for r in flink.requests if r[1].endswith('/run')]
    assert result['changed'] and result['generation'] >= 100
    assert result['refused_submissions'] == len(refused) - 1 <= 7   # log2(100) ~ 6.6
    assert len(flink.live()) == 1


def test_a_refused_forgotten_id_without_known_state_fails_before_starting_anything(jar):
    flink = FakeFlink()
    flink.forgotten.add(gen_id('orders', 0))
    with pytest.raises(model.PlanError) as err:
        reconcile(flink, desired(jar))
    assert 'restore_from' in err.value.msg and gen_id('orders', 0) in err.value.msg
    assert flink.live() == []
    empty = reconcile(flink, desired(jar, restore_from='none'))
    assert empty['changed'] and empty['job_id'] == gen_id('orders', 1)


def test_ended_instance_without_state_is_evidence_not_an_empty_start(jar):
    flink = FakeFlink()
    first = start(flink, jar)
    flink.end(first['job_id'], 'CANCELED')
    flink.requests.clear()
    with pytest.raises(model.PlanError) as check_error:
        reconcile(flink, desired(jar), check_mode=True)
    with pytest.raises(model.PlanError) as err:
        reconcile(flink, desired(jar))
    assert err.value.msg == check_error.value.msg and first['job_id'] in err.value.msg
    assert flink.live() == [] and flink.mutating() == []


def test_resume_uses_the_restore_source_of_an_instance_that_never_checkpointed(jar):
    flink = FakeFlink()
    first = start(flink, jar, restore_from='file:/sp/original')
    flink.end(first['job_id'], 'FAILED')          # died before its first checkpoint
    result = reconcile(flink, desired(jar))
    assert result['restored_from'] == {'path': 'file:/sp/original', 'kind': 'restored_from',
                                       'job_id': first['job_id']}


def test_resume_walks_back_to_an_older_instance_with_state(jar):
    flink = FakeFlink()
    first = start(flink, jar)
    flink.checkpoint_paths[first['job_id']] = 'file:/cp/first/chk-9'
    flink.end(first['job_id'], 'FAILED')
    # A second instance was started by hand from nothing (no record) and died before a checkpoint.
    flink.add_job('ab' * 16, 'orders')
    flink.end('ab' * 16, 'FAILED')
    result = reconcile(flink, desired(jar))
    assert result['restored_from']['path'] == 'file:/cp/first/chk-9'
    assert result['job_id'] == gen_id('orders', 1)


def test_a_cancelling_instance_is_waited_out_before_its_state_is_chosen(jar):
    flink = FakeFlink()
    first = start(flink, jar)
    flink.jobs[first['job_id']]['state'] = 'CANCELLING'
    polls = []

    def finish_cancel(method, path, body):
        if method == 'GET' and path == '/jobs/%s' % first['job_id']:
            polls.append(path)
            if len(polls) == 2:
                flink.checkpoint_paths[first['job_id']] = 'file:/cp/final/chk-12'
                flink.end(first['job_id'], 'CANCELED')
    flink.hooks.append(finish_cancel)
    check = reconcile(flink, desired(jar), check_mode=True)
    assert check['action'] == 'submitted' and check['job_id'] == gen_id('orders', 1)
    assert any('still cancelling' in w for w in check['_warnings'])
    result = reconcile(flink, desired(jar))
    assert result['restored_from']['path'] == 'file:/cp/final/chk-12'
    assert result['job_id'] == gen_id('orders', 1)


def test_concurrent_identical_submission_that_lost_the_race_is_not_a_change(jar):
    flink = FakeFlink()
    d = desired(jar)

    def other_run_gets_there_first(method, path, body):
        if method == 'POST' and path.endswith('/run'):
            flink.add_job(body['jobId'], 'orders')   # the other agent's submission lands first
            flink.bodies[body['jobId']] = body
            return None                              # ... then ours reaches Flink: duplicate
    flink.hooks.append(other_run_gets_there_first)
    result = reconcile(flink, d)
    assert not result['changed'] and result['action'] == 'none'
    assert result['job_id'] == d.job_id(0)
    assert len(flink.live()) == 1


def test_a_run_for_another_spec_in_the_window_serialises_on_the_same_id(jar):
    flink = FakeFlink()
    v1, v2 = desired(jar, args=['--v', '1']), desired(jar, args=['--v', '2'])
    fired = []

    def v2_lands_first(method, path, body):
        if method == 'POST' and path.endswith('/run') and not fired:
            fired.append(1)
            reconcile(flink, v2)
    flink.hooks.append(v2_lands_first)
    result = reconcile(flink, v1)
    assert len(flink.live()) == 1 and flink.live()[0]['jid'] == v1.job_id(0)
    assert record_of(flink, v1.job_id(0)).spec.args == ['--v', '2']
    assert not result['changed'] and result['drift']
    assert any('another version' in w for w in result['_warnings'])


def test_two_runs_with_different_histories_agree_on_the_survivor(jar):
    flink = FakeFlink()
    # Run B (saw no history) started generation 0 empty; run A (saw generation 4 end) started 5 from its savepoint.
    reconcile(flink, desired(jar, restore_from='none'))
    b_id = gen_id('orders', 0)
    fired = []

    def b_is_already_live(method, path, body):
        if method == 'POST' and path.endswith('/run') and not fired:
            fired.append(1)
    flink.hooks.append(b_is_already_live)
    clock = FakeClock()
    client = api.FlinkClient(['http://jm:8081'], api.Deadline(60, clock=clock), session=FakeSession(flink),
                             sleep=clock.sleep)
    a = jobmod.JobReconciler(client, desired(jar), warn=lambda m: None, sleep=clock.sleep)
    sub = a._submit(a.desired.version(), 5, 'file:/sp/gen4', known_state=True)
    assert sub.outcome == 'accepted' and len(flink.live()) == 2
    job, survivor = a._settle(sub.job_id)
    assert survivor is None and [j['jid'] for j in flink.live()] == [gen_id('orders', 5)]
    assert flink.jobs[b_id]['state'] == 'CANCELED'
    # B, looking now, keeps the same survivor and starts nothing.
    b_again = reconcile(flink, desired(jar, restore_from='none'))
    assert not b_again['changed'] and b_again['job_id'] == gen_id('orders', 5)


def test_the_later_empty_start_loses_and_reports_the_survivor(jar):
    flink = FakeFlink()
    a = start(flink, jar, restore_from='file:/sp/gen4')     # live, started from state
    clock = FakeClock()
    client = api.FlinkClient(['http://jm:8081'], api.Deadline(60, clock=clock), session=FakeSession(flink),
                             sleep=clock.sleep)
    warnings = []
    b = jobmod.JobReconciler(client, desired(jar, restore_from='none'), warn=warnings.append, sleep=clock.sleep)
    sub = b._submit(b.desired.version(), 7, None, known_state=False, explicit_empty=True)
    job, survivor = b._settle(sub.job_id)
    assert survivor['id'] == a['job_id']
    assert [j['jid'] for j in flink.live()] == [a['job_id']]


def test_duplicates_found_at_observation_are_removed_keeping_the_one_with_state(jar):
    flink = FakeFlink()
    flink.add_job(gen_id('orders', 0), 'orders')
    keep = start(flink, jar, restore_from='file:/sp/x')  # goes to generation 1 ... while 0 is live? no: adopt path
    assert not keep['changed']  # gen 0 (no record) is ours by id: nothing submitted
    flink.jobs.clear()
    # two live instances with records: gen 3 empty (older), gen 4 from state (newer)
    for g, restore in ((3, 'none'), (4, 'file:/sp/y')):
        c = FakeClock()
        cl = api.FlinkClient(['http://jm:8081'], api.Deadline(60, clock=c), session=FakeSession(flink), sleep=c.sleep)
        r = jobmod.JobReconciler(cl, desired(jar, restore_from=restore), sleep=c.sleep)
        r._submit(r.desired.version(), g, None if restore == 'none' else restore, known_state=True)
    check = reconcile(flink, desired(jar), check_mode=True)
    assert check['action'] == 'deduplicated' and check['job_ids'] == [gen_id('orders', 3)]
    result = reconcile(flink, desired(jar))
    assert result['changed'] and result['action'] == 'deduplicated'
    assert [j['jid'] for j in flink.live()] == [gen_id('orders', 4)]


def test_a_lost_answer_of_a_submission_that_landed_is_not_sent_again(jar):
    flink = FakeFlink()
    d = desired(jar)

    def deliver_then_drop(method, path, body):
        if method == 'POST' and path.endswith('/run'):
            flink.route(method, path, body, {})   # Flink runs it ...
            return read_timeout()                 # ... but the answer never arrives
    flink.hooks.append(deliver_then_drop)
    result = reconcile(flink, d)
    assert result['changed'] and result['action'] == 'submitted' and result['job_id'] == d.job_id(0)
    assert len(flink.live()) == 1
    runs = [r for r in flink.requests if r[0] == 'POST' and r[1].endswith('/run')]
    assert len(runs) == 1, 'a submission that landed was sent again'
    # The id was looked up right after the lost answer, and the instance found there is recognised as this
    # run's own by the salt of its record.
    after = flink.requests[flink.requests.index(runs[0]) + 1:]
    assert after[0] == ('GET', '/jobs/%s' % d.job_id(0))
    assert ('GET', '/jobs/%s/config' % d.job_id(0)) in after


def test_a_lost_submission_that_did_not_land_is_sent_again_once_under_the_same_id(jar):
    flink = FakeFlink()
    d = desired(jar)
    clock = FakeClock()
    sent = []

    def record_runs(method, path, body):
        if method == 'POST' and path.endswith('/run'):
            sent.append((clock.now, body))
        return None                               # stays, sees every submission

    def drop_before_flink(method, path, body):
        if method == 'POST' and path.endswith('/run'):
            return read_timeout()                 # lost on the way: Flink never saw it
        return None
    flink.hooks.extend([record_runs, drop_before_flink])
    result = reconcile(flink, d, clock=clock)
    assert result['changed'] and result['job_id'] == d.job_id(0) and len(flink.live()) == 1
    assert len(sent) == 2, 'sent once, looked up, sent once more'
    (first_at, first), (second_at, second) = sent
    assert first == second and first['jobId'] == d.job_id(0), 'the same id and the same record'
    assert flink.bodies[d.job_id(0)] == first
    # In between, only the job id was looked up, for LOST_ANSWER_GRACE_S of fake time.
    runs = [i for i, r in enumerate(flink.requests) if r[0] == 'POST' and r[1].endswith('/run')]
    assert set(flink.requests[runs[0] + 1:runs[1]]) == {('GET', '/jobs/%s' % d.job_id(0))}
    assert second_at - first_at >= jobmod.LOST_ANSWER_GRACE_S


def test_leader_election_during_observe_is_waited_out_not_read_as_empty(jar):
    flink = FakeFlink()
    d = desired(jar)
    start(flink, jar)
    flink.requests.clear()
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
    result = reconcile(flink, desired(jar, restore_from='none'))
    assert result['changed'] and len(flink.live()) == 1


def test_a_lost_upload_answer_never_leaves_a_second_copy(jar):
    flink = FakeFlink()

    def store_then_drop(method, path, body):
        if method == 'POST' and path == '/jars/upload':
            flink.route(method, path, body, {'data': type('B', (), {'filename': 'flinkops-x-job.jar'})()})
            name = list(flink.jars.values())[0]
            flink.jars[list(flink.jars)[0]] = 'flinkops-%s-job.jar' % desired(jar).spec.jar_sha256[:16]
            del name
            return read_timeout()
    flink.hooks.append(store_then_drop)
    result = reconcile(flink, desired(jar))
    assert result['changed'] and len(flink.jars) == 1
    assert len([r for r in flink.requests if r[1] == '/jars/upload']) == 1


def test_drift_is_reported_not_touched(jar):
    flink = FakeFlink()
    start(flink, jar, args=['--v', '1'])
    flink.requests.clear()
    result = reconcile(flink, desired(jar, args=['--v', '2']))
    assert not result['changed'] and result['drift']
    assert 'state=upgraded' in result['_warnings'][0]
    assert flink.mutating() == []


def test_unhealthy_live_job_is_reported(jar):
    flink = FakeFlink()
    first = start(flink, jar)
    flink.jobs[first['job_id']]['state'] = 'RESTARTING'
    r = reconcile(flink, desired(jar))
    assert not r['changed'] and r['health'] == 'restarting'
    assert any('not healthy' in w for w in r['_warnings'])
    flink.jobs[first['job_id']].update(state='RUNNING', tasks={'running': 1, 'scheduled': 1, 'total': 2})
    r = reconcile(flink, desired(jar))
    assert r['health'] == 'starting' and any('not healthy' in w for w in r['_warnings'])


def split_record(body):
    """(the body without its flinkops record entry, the decoded record) of a /plan or /run body."""
    body = dict(body)
    conf = dict(body.pop('flinkConfiguration'))
    entries = conf.pop('pipeline.global-job-parameters').split(',')
    mine = [e for e in entries if e.startswith(ident.SPEC_PARAM + ':')]
    assert len(mine) == 1
    rest = [e for e in entries if e not in mine]
    if rest:
        conf['pipeline.global-job-parameters'] = ','.join(rest)
    body['flinkConfiguration'] = conf
    return body, ident.decode_record(mine[0].split(':', 1)[1])


def assert_plan_is_the_run(plan_body, run):
    """/plan validated the program /run started: the same body but for what only a start can carry.

    A start adds the restore fields (savepointPath, allowNonRestoredState), and its record names where it was
    restored from (not known before the state was taken). The plan carries the predicted job id; a start may take
    a later generation when another run came first. Everything else is equal, the record's salt (and so the
    per-instance checkpoint directory) included.
    """
    assert 'savepointPath' not in plan_body and 'allowNonRestoredState' not in plan_body
    assert plan_body.get('jobId') in (None, run.get('jobId'))
    plan_rest, plan_record = split_record(dict((k, v) for k, v in plan_body.items() if k != 'jobId'))
    run_rest, run_record = split_record(dict((k, v) for k, v in run.items()
                                             if k not in ('savepointPath', 'allowNonRestoredState', 'jobId')))
    assert plan_rest == run_rest
    assert plan_record.salt == run_record.salt and plan_record.salt
    assert plan_record.restored_from is None
    assert run_record.restored_from == run.get('savepointPath', run_record.restored_from)
    plan_record.restored_from = run_record.restored_from
    assert plan_record.encode() == run_record.encode()


def test_run_body_carries_args_config_and_restore_and_the_record(jar):
    flink = FakeFlink()
    seen = []
    flink.hooks.append(lambda m, p, b: seen.append(b) if p.endswith('/run') else None)
    reconcile(flink, desired(jar, args=['a b', 'ü'], parallelism=2, entry_class='org.example.Job',
                             config={'pipeline': {'auto-watermark-interval': '1s'}, 'x.enabled': True},
                             restore_from='file:/sp/1'))
    body = seen[0]
    assert body['programArgsList'] == ['a b', 'ü']
    assert body['parallelism'] == 2 and body['entryClass'] == 'org.example.Job'
    config = dict(body['flinkConfiguration'])
    recorded = config.pop('pipeline.global-job-parameters')
    assert config == {'pipeline.auto-watermark-interval': '1s', 'x.enabled': 'true'}
    assert recorded.startswith('flinkops.spec:')
    record = ident.decode_record(recorded.split(':', 1)[1])
    assert record.name == 'orders' and record.restored_from == 'file:/sp/1'
    assert record.spec.args == ['a b', 'ü'] and record.spec.parallelism == 2 and record.jar_name == 'job.jar'
    assert body['savepointPath'] == 'file:/sp/1' and body['allowNonRestoredState'] is False
    assert 'programArgs' not in body
    # /plan validates exactly the program /run starts.
    flink.plans.clear()
    up = reconcile(flink, desired(jar, state='upgraded', args=['a b', 'ü', '--v2'], parallelism=2,
                                  entry_class='org.example.Job', config={'x.enabled': True}))
    plan_body, run = flink.plans[0], flink.bodies[up['job_id']]
    assert run['savepointPath'] == up['savepoint']
    assert_plan_is_the_run(plan_body, run)


def test_secrets_are_sent_but_never_recorded(jar):
    flink = FakeFlink()
    r = reconcile(flink, desired(jar, config={'s3.secret-key': 'hunter2', 'my.password': 'pw'},
                                 secret_args=['--token', 'tok123']))
    body = flink.bodies[r['job_id']]
    assert body['flinkConfiguration']['s3.secret-key'] == 'hunter2'
    assert body['programArgsList'][-2:] == ['--token', 'tok123']
    recorded = body['flinkConfiguration']['pipeline.global-job-parameters']
    for secret in ('hunter2', 'pw', 'tok123'):
        assert secret not in recorded and secret not in ident.decode_record(recorded.split(':', 1)[1]).encode()
        assert secret not in repr(r['diff'])
    record = record_of(flink, r['job_id'])
    assert sorted(record.secrets['config']) == ['my.password', 's3.secret-key'] and record.secrets['args']
    # The same secrets: no-op. Another secret value: drift.
    same = reconcile(flink, desired(jar, config={'s3.secret-key': 'hunter2', 'my.password': 'pw'},
                                    secret_args=['--token', 'tok123']))
    assert not same['drift']
    other = reconcile(flink, desired(jar, config={'s3.secret-key': 'changed', 'my.password': 'pw'},
                                     secret_args=['--token', 'tok123']))
    assert other['drift']


def test_upgrade_whose_previous_secret_is_no_longer_declared_fails_before_touching(jar):
    flink = FakeFlink()
    first = reconcile(flink, desired(jar, config={'s3.secret-key': 'old'}))
    with pytest.raises(model.PlanError, match='no way back'):
        reconcile(flink, desired(jar, state='upgraded', config={'s3.secret-key': 'new'}))
    assert [j['jid'] for j in flink.live()] == [first['job_id']]
    # Same secret, other args: the previous version can be restarted, so the upgrade goes ahead.
    ok = reconcile(flink, desired(jar, state='upgraded', args=['--v2'], config={'s3.secret-key': 'old'}))
    assert ok['action'] == 'upgraded'


def test_null_config_value_is_an_input_error(jar):
    with pytest.raises(model.InputError, match='a.b'):
        desired(jar, config={'a': {'b': None}})


# absent -------------------------------------------------------------------------

def test_absent_cancels_every_live_instance(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders')
    flink.add_job('ab' * 16, 'orders')
    flink.add_job('cd' * 16, 'other')
    result = reconcile(flink, model.Desired(name='orders', state='absent'))
    assert result['changed'] and result['action'] == 'cancelled'
    assert sorted(result['job_ids']) == sorted([d.job_id(0), 'ab' * 16])
    assert [j['name'] for j in flink.live()] == ['other']
    again = reconcile(flink, model.Desired(name='orders', state='absent'))
    assert not again['changed'] and again['action'] == 'none'


def test_absent_with_savepoint_returns_path(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders')
    result = reconcile(flink, model.Desired(name='orders', state='absent', savepoint=True, savepoint_dir='file:/sp'))
    assert result['action'] == 'stopped' and result['savepoint'].startswith('file:/sp/flinkops-')
    assert result['job']['state'] == 'FINISHED'


def test_absent_with_savepoint_and_no_savepoint_dir_fails_in_check_mode_too(jar):
    flink = FakeFlink()
    flink.cluster_config = {}
    flink.add_job(gen_id('orders', 0), 'orders')
    for check in (True, False):
        with pytest.raises(model.PlanError, match='savepoint directory'):
            reconcile(flink, model.Desired(name='orders', state='absent', savepoint=True), check_mode=check)
    assert len(flink.live()) == 1 and flink.mutating() == []


def test_the_flink2_savepoint_dir_key_is_the_default(jar):
    flink = FakeFlink()
    flink.cluster_config = {'execution.checkpointing.savepoint-dir': 'file:/sp2'}
    flink.add_job(gen_id('orders', 0), 'orders')
    r = reconcile(flink, model.Desired(name='orders', state='absent', savepoint=True))
    assert r['savepoint'].startswith('file:/sp2/flinkops-')


def test_a_recovering_job_that_declines_the_savepoint_is_stopped_once_it_runs(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders')
    flink.declined_stops = ['Checkpoint triggering task Source (1/1) is not being executed at the moment. '
                            'Failure reason: Not all required tasks are currently running.'] * 2
    result = reconcile(flink, model.Desired(name='orders', state='absent', savepoint=True, savepoint_dir='file:/sp'))
    assert result['action'] == 'stopped' and result['savepoint'].startswith('file:/sp/')
    stops = [r for r in flink.requests if r[0] == 'POST' and r[1].endswith('/stop')]
    assert len(stops) == 3


def test_a_savepoint_that_cannot_be_taken_fails_at_once_and_the_job_keeps_running(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders')
    flink.declined_stops = ['Failed to trigger savepoint: the file system refused it'] * 5
    with pytest.raises(api.FlinkApiError, match='file system refused'):
        reconcile(flink, model.Desired(name='orders', state='absent', savepoint=True))
    stops = [r for r in flink.requests if r[0] == 'POST' and r[1].endswith('/stop')]
    assert len(stops) == 1 and len(flink.live()) == 1


def test_a_failed_stop_of_a_job_that_is_being_cancelled_does_not_say_it_keeps_running(jar):
    flink = FakeFlink()
    d = desired(jar)
    flink.add_job(d.job_id(0), 'orders')
    flink.declined_stops = ['Failed to trigger savepoint: the file system refused it']

    def someone_cancels(method, path, body):
        if '/savepoints/' in path:
            flink.jobs[d.job_id(0)]['state'] = 'CANCELLING'
    flink.hooks.append(someone_cancels)
    with pytest.raises(api.FlinkApiError) as err:
        reconcile(flink, model.Desired(name='orders', state='absent', savepoint=True))
    assert 'CANCELLING' in err.value.msg and 'keeps running' not in err.value.msg


def test_absent_check_mode_touches_nothing(jar):
    flink = FakeFlink()
    flink.add_job('ab' * 16, 'orders')
    result = reconcile(flink, model.Desired(name='orders', state='absent'), check_mode=True)
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
    assert not again['changed'] and len(flink.requests) == 3


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
    assert result['job_id'] == check['job_id'] == gen_id('orders', 1)
    assert result['previous_job_id'] == old['job_id']
    assert result['savepoint'].startswith('file:/sp/flinkops-')
    assert run_body(flink, result['job_id'])['savepointPath'] == result['savepoint']
    assert [j['jid'] for j in flink.live()] == [result['job_id']]
    assert not old_jar_ids & set(flink.jars), 'the previous version\'s jar was kept'


def test_a_stale_present_inside_the_upgrade_window_never_gives_two_instances(jar):
    flink = FakeFlink()
    start(flink, jar, args=['--v', '1'])
    fired = []

    def stale_v1_present_after_the_stop(method, path, body):
        if method == 'POST' and path.endswith('/run') and '--v2' in body['programArgsList'] and not fired:
            fired.append(reconcile(flink, desired(jar, args=['--v', '1'])))
    flink.hooks.append(stale_v1_present_after_the_stop)
    result = reconcile(flink, desired(jar, state='upgraded', args=['--v2']))
    assert fired and fired[0]['action'] == 'submitted'       # the stale run restarted v1 from the savepoint
    assert result['changed'] and result['action'] == 'upgraded'
    live = flink.live()
    assert len(live) == 1 and record_of(flink, live[0]['jid']).spec.args == ['--v2']


def test_upgrade_cleanup_failure_is_a_warning_not_a_failed_upgrade(jar, tmp_path):
    flink = FakeFlink()
    reconcile(flink, desired(jar, args=['--v', '1']))
    new_jar = tmp_path / 'job-v2.jar'
    with zipfile.ZipFile(str(new_jar), 'w') as z:
        z.writestr('v2.txt', 'another version')
    flink.hooks.append(lambda m, p, b: flink_error(500, 'boom') if m == 'DELETE' else None)
    result = reconcile(flink, desired(str(new_jar), state='upgraded', args=['--v', '2']))
    assert result['action'] == 'upgraded' and any('removing' in w for w in result['_warnings'])


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
    assert record_of(flink, live[0]['jid']).spec.args == ['--v', '1'], 'the previous spec runs again'
    assert run_body(flink, live[0]['jid'])['savepointPath'] == result['savepoint']
    # The previous spec is now declared again: nothing to do.
    again = reconcile(flink, desired(jar, state='upgraded', args=['--v', '1']))
    assert not again['changed']


def test_upgrade_of_a_job_without_record_needs_allow_no_rollback(jar):
    flink = FakeFlink()
    flink.add_job('ab' * 16, 'orders')  # started by hand: no recorded spec
    for check in (True, False):
        with pytest.raises(model.PlanError, match='allow_no_rollback'):
            reconcile(flink, desired(jar, state='upgraded'), check_mode=check)
    assert flink.mutating() == [] and len(flink.live()) == 1
    flink.reject_run = lambda body: flink_error(400, 'x\nCaused by: java.lang.Exception: cannot restore')
    with pytest.raises(jobmod.UpgradeError) as err:
        reconcile(flink, desired(jar, state='upgraded', allow_no_rollback=True))
    assert 'could not be restarted' in err.value.msg and err.value.result['savepoint'] in err.value.msg
    assert flink.live() == []


def test_last_state_needs_retained_checkpoints_before_touching_the_job(jar):
    flink = FakeFlink()
    old = reconcile(flink, desired(jar, args=['--v', '1']))
    for check in (True, False):
        with pytest.raises(api.FlinkError, match='RETAIN_ON_CANCELLATION'):
            reconcile(flink, desired(jar, state='upgraded', args=['--v', '2'], upgrade_mode='last-state'),
                      check_mode=check)
    assert [j['jid'] for j in flink.live()] == [old['job_id']]
    flink.retain_on_cancel = True
    flink.checkpoint_paths[old['job_id']] = 'file:/cp/%s/chk-7' % old['job_id']
    result = reconcile(flink, desired(jar, state='upgraded', args=['--v', '2'], upgrade_mode='last-state'))
    assert result['action'] == 'upgraded'
    assert run_body(flink, result['job_id'])['savepointPath'] == 'file:/cp/%s/chk-7' % old['job_id']
    assert not [r for r in flink.requests if r[1].endswith('/stop')]


@pytest.mark.parametrize('state', ['present', 'upgraded', 'absent'])
@pytest.mark.parametrize('check', [True, False])
def test_flink_older_than_1_18_is_refused_with_the_first_request(jar, state, check):
    flink = FakeFlink(version='1.17.2')
    flink.add_job('ab' * 16, 'orders')
    with pytest.raises(service.FlinkUnsupportedVersion) as err:
        reconcile(flink, desired(jar, state=state, config={'a': 1}, allow_no_rollback=True), check_mode=check)
    assert 'runs Flink 1.17.2' in err.value.msg and 'supports Flink 1.18 to 2.3' in err.value.msg
    assert 'Nothing was changed' in err.value.msg
    assert flink.requests == [('GET', '/config')] and flink.mutating() == []


def test_stateless_upgrade_starts_empty(jar):
    flink = FakeFlink()
    reconcile(flink, desired(jar, args=['--v', '1']))
    result = reconcile(flink, desired(jar, state='upgraded', args=['--v', '2'], upgrade_mode='stateless'))
    assert result['action'] == 'upgraded' and 'savepointPath' not in run_body(flink, result['job_id'])


def test_ended_job_resumes_from_its_savepoint_and_restore_from_none_starts_empty(jar):
    flink = FakeFlink()
    first = reconcile(flink, desired(jar))
    reconcile(flink, model.Desired(name='orders', state='absent', savepoint=True))
    resumed = reconcile(flink, desired(jar))
    assert resumed['restored_from']['kind'] == 'savepoint'
    assert resumed['restored_from']['job_id'] == first['job_id']
    assert run_body(flink, resumed['job_id'])['savepointPath'] == resumed['restored_from']['path']
    reconcile(flink, model.Desired(name='orders', state='absent', savepoint=True))
    explicit = reconcile(flink, desired(jar, restore_from='none'))
    assert 'savepointPath' not in run_body(flink, explicit['job_id']) and explicit['_warnings'] == []
    assert record_of(flink, explicit['job_id']).restored_from == 'none'
    # An instance started empty on purpose that left no state: the next start is empty again, with a warning.
    reconcile(flink, model.Desired(name='orders', state='absent'))
    again = reconcile(flink, desired(jar))
    assert again['changed'] and 'restored_from' not in again
    assert any('on purpose' in w for w in again['_warnings'])


def test_each_savepoint_gets_a_directory_of_its_own():
    assert service.savepoint_target('s3://b/sp/', 'abc') == 's3://b/sp/flinkops-abc'
    assert service.savepoint_target(None, 'abc') is None


def test_a_lost_savepoint_is_found_in_its_own_directory_only_when_unambiguous(tmp_path):
    target = tmp_path / 'flinkops-abc'
    assert service.find_local_savepoint('file://%s' % target) is None          # not there (yet)
    (target / 'savepoint-123456-aaaa').mkdir(parents=True)
    assert service.find_local_savepoint('file://%s' % target) is None          # no _metadata: incomplete
    (target / 'savepoint-123456-aaaa' / '_metadata').write_bytes(b'x')
    expected = 'file:%s' % (target / 'savepoint-123456-aaaa')
    assert service.find_local_savepoint('file://%s' % target) == expected
    assert service.find_local_savepoint('file:%s' % target) == expected
    assert service.find_local_savepoint(str(target)) == expected
    assert service.find_local_savepoint('s3://bucket/flinkops-abc') is None    # not this host's to read
    (target / 'savepoint-123456-bbbb').mkdir()
    (target / 'savepoint-123456-bbbb' / '_metadata').write_bytes(b'x')
    assert service.find_local_savepoint('file://%s' % target) is None          # two: never guess


def test_each_instance_checkpoints_into_a_directory_of_its_own(jar):
    flink = FakeFlink()
    flink.cluster_config['state.checkpoints.dir'] = 'file:/cp'
    first = reconcile(flink, desired(jar))
    conf = flink.bodies[first['job_id']]['flinkConfiguration']
    salt = record_of(flink, first['job_id']).salt
    assert conf['execution.checkpointing.dir'] == conf['state.checkpoints.dir'] == 'file:/cp/flinkops-%s' % salt
    reconcile(flink, model.Desired(name='orders', state='absent', savepoint=True))
    second = reconcile(flink, desired(jar, config={'execution.checkpointing.dir': 's3://b/cp/'}))
    conf2 = flink.bodies[second['job_id']]['flinkConfiguration']
    assert conf2['execution.checkpointing.dir'] == 's3://b/cp/flinkops-%s' % record_of(flink, second['job_id']).salt
    assert record_of(flink, second['job_id']).spec.config == {'execution.checkpointing.dir': 's3://b/cp/'}


def test_checkpoint_statistics_are_read_only_once_they_caught_up_with_the_end(jar):
    flink = FakeFlink()
    first = start(flink, jar)
    flink.jobs[first['job_id']]['state'] = 'CANCELLING'
    flink.checkpoint_paths[first['job_id']] = 'file:/cp/stale/chk-4'
    clock = FakeClock()
    reads = []

    polls = []

    def cancel_completes(method, path, body):
        if method == 'GET' and path == '/jobs/%s' % first['job_id']:
            polls.append(1)
            if len(polls) == 2:
                flink.end(first['job_id'], 'CANCELED')
                ended_at.append(clock.now)
    flink.hooks.append(cancel_completes)
    ended_at = []

    def stats(method, path, body):
        if path == '/jobs/%s/checkpoints' % first['job_id']:
            reads.append(clock.now)
            flink.checkpoint_paths[first['job_id']] = 'file:/cp/final/chk-5'
    flink.hooks.append(stats)
    client = api.FlinkClient(['http://jm:8081'], api.Deadline(60, clock=clock), session=FakeSession(flink),
                             sleep=clock.sleep)
    r = jobmod.JobReconciler(client, desired(jar), sleep=clock.sleep).run()
    # The cancel was seen complete at the second status poll; the statistics were read STATS_REFRESH_S later
    # (the health gate's sleeps come after that read, so they do not count).
    assert len(polls) >= 2 and len(ended_at) == 1 and reads
    assert reads[0] - ended_at[0] >= jobmod.STATS_REFRESH_S - 0.01
    assert r['verification']['healthy'] and clock.now > reads[0]
    assert r['restored_from']['path'] == 'file:/cp/final/chk-5'


def test_a_stop_reported_failed_after_the_job_finished_with_its_savepoint_uses_that_savepoint(jar):
    """Flink 1.20.5, leader killed as the savepoint completed: the new leader says the stop failed (NPE) although the
    job FINISHED with a complete savepoint in the stop's own directory. The upgrade goes on from it. (Where no such
    savepoint exists the upgrade fails and says the job is FINISHED: test_upgrade.py,
    test_a_failed_stop_reports_the_state_flink_reports.)"""
    flink = FakeFlink()
    old = reconcile(flink, desired(jar, args=['--v', '1']))
    flink.misreported_stops = ['java.lang.NullPointerException']
    d = desired(jar, state='upgraded', args=['--v', '2'], savepoint_dir='file:/sp')
    result = reconcile(flink, d)
    assert result['action'] == 'upgraded' and result['previous_job_id'] == old['job_id'], result
    assert '/flinkops-' in result['savepoint'] and run_body(flink, result['job_id'])['savepointPath'] == \
        result['savepoint']
    assert any('reported the stop-with-savepoint' in w and 'NullPointerException' in w
               for w in result['_warnings']), result['_warnings']
    assert [j['jid'] for j in flink.live()] == [result['job_id']]
