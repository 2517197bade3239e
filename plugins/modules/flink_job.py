#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) flinkops.flink contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: flink_job
short_description: Make sure a Flink job runs exactly once, or not at all
version_added: 0.1.0
description:
  - Declares a streaming job on an Apache Flink session cluster through its REST API.
  - The job's id is derived from O(name) and a generation only, never from what is declared, so any two runs for
    one name (retries, concurrent runs, runs that declare different versions) submit under the same id and Flink
    rejects the second submission. At most one instance of the job runs, also across JobManager failovers.
  - What a job runs (its spec) travels with the job as a record in its global job parameters; see the notes.
  - A live job whose Flink name equals O(name), started by hand or by another tool, is adopted, not doubled, unless
    it carries the flinkops record of another declared name.
  - A job that ran before is never silently started from empty state. Its next instance resumes from the newest
    savepoint or retained checkpoint an ended instance left (or the state that instance was itself started from); when
    there is evidence of an earlier instance and no such state is known, the task fails before submitting anything and
    asks for O(restore_from).
  - Answers that mean "the cluster is not ready" (connection refused, HTTP 503 during a leader election, an unreachable
    leader) are waited out within O(wait_timeout), never read as "no jobs".
author:
  - flinkops maintainers (@flinkops)
extends_documentation_fragment:
  - flinkops.flink.connection
  - flinkops.flink.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode sends only GET requests and reports exactly what would be done, with the predicted job id, or
        fails exactly where the real run would fail before touching anything.
      - It cannot see ids that Flink remembers but no longer lists (see the notes); a real run then takes a higher
        generation than check mode predicted.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - The job's identity. flink_job derives the job id from it and finds the job's instances by it.
      - It should equal the name the program passes to C(execute()), so that a job started by hand is recognised.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure one instance runs. A live instance, even of another version, is left alone (a
        warning reports the drift). If the last instance ended (cancelled, failed, finished), the job is submitted
        again.
      - V(absent) cancels every live instance (or stops it with a savepoint when O(savepoint=true)).
      - V(upgraded) behaves like V(present) when no instance is live or the live one runs the declared spec. A live
        instance of another spec (or a job of the same Flink name started outside flinkops) is upgraded as
        O(upgrade_mode) says, as a transaction. Preflight, while the old version keeps running, its jar uploads
        and its C(main()) builds the job graph from the same request body the submission sends. Then the state is
        taken, the new version starts from it and must pass the health gate (O(healthy_for),
        O(wait_for_checkpoint)). If it cannot start or is not healthy, it is cancelled, the previous version is
        started again from the same savepoint and verified by the same gate, and the task fails with
        RV(action=rolled_back), naming Flink's reason, the savepoint and both job ids. See O(rollback_timeout) for
        the time each step may take.
      - V(upgraded) needs O(wait=true).
    type: str
    choices: [present, absent, upgraded]
    default: present
  jar:
    description:
      - Path of the job jar on the host where the module runs. With O(state=present) and O(state=upgraded) a job
        runs a jar (this option) or SQL (O(sql) or O(sql_file)).
      - The jar is uploaded only when a jar with the same content (SHA-256) is not already on the cluster.
    type: path
  sql:
    description:
      - A SQL job instead of a jar, its statements separated by C(;). Statements that prepare the session
        (C(CREATE TABLE), C(CREATE FUNCTION), C(CREATE VIEW), C(USE), C(LOAD MODULE), ...) come first; the last
        statement starts the job, one C(INSERT) or one statement set (C(EXECUTE STATEMENT SET BEGIN INSERT ...;
        INSERT ...; END)). Anything else (a C(SELECT), a second C(INSERT), C(SET)) is refused before anything is
        sent, naming the statement. Set Flink options with O(config).
      - The job's spec is its statements (comments removed) with O(config) and O(parallelism), so the job gets the
        same identity, duplicate protection, check mode and diff, upgrade through a savepoint with the health gate and
        rollback, and O(state=absent) with a savepoint, as a jar job.
      - "How it runs: the module submits the statements to C(POST /jars/<id>/run) with the job id it chose, through
        a small SQL runner jar (the class C(org.flinkops.flink.sql.SqlRunner), about 1 KiB) that the module generates
        byte for byte the same on every host, from source in the collection, and uploads once. The runner creates a
        TableEnvironment in the JobManager and executes the statements in order. No SQL Gateway, no JDK on the host
        that runs the module, nothing to build: the JobManager's C(lib/) holds the Table API in every Flink
        distribution. See the README for why this route and not the SQL Gateway."
      - Before an upgrade stops the running job, the new statements are planned by Flink (C(POST /jars/<id>/plan));
        SQL that does not parse, or names a table or connector that does not exist, fails the task with Flink's reason
        and the running job is not touched. A first submission with such SQL fails the same way, and nothing runs.
      - Connectors and formats other than Flink's built-in ones (C(datagen), C(print), C(blackhole), C(filesystem))
        must be in the cluster's C(lib/) directory.
      - Mutually exclusive with O(jar), O(sql_file), O(entry_class) and O(args).
    type: str
    version_added: 0.2.0
  sql_file:
    description:
      - Like O(sql), the statements read from this UTF-8 file on the host where the module runs.
    type: path
    version_added: 0.2.0
  python:
    description:
      - A PyFlink job instead of a jar - the entry script (a C(.py) file), or a directory that holds the program
        (then O(python_module) names the module to run), on the host where the module runs.
      - "The module packs the program's files (a directory: all of them, but C(__pycache__), C(*.pyc) and version
        control directories) into a jar of its own, uploads it, and submits it through C(POST /jars/<id>/run) with
        Flink's C(org.apache.flink.client.python.PythonDriver) and the job id it chose. PythonDriver runs the module
        with the uploaded jar on C(PYTHONPATH), so nothing has to be copied to the JobManager host: the program is
        read from the uploaded jar, in the JobManager's Python."
      - The job's spec is the program's content (the jar's SHA-256), O(args), O(config) and O(parallelism), so an
        edit of any file is a new version, with the same identity, duplicate protection, check mode and diff,
        upgrade through a savepoint with health gate and rollback, and O(state=absent) with a savepoint as a jar job.
      - "PyFlink jobs need Flink 1.20 or later. On an older cluster the module fails before anything is uploaded,
        also in check mode: before 1.20, Flink's PythonDriver does not take the program's files from a jar
        submission (C(-pyfs)), and when it cannot parse its arguments it ends the JobManager's process
        (seen on Flink 1.19.3). O(state=absent) still removes a PyFlink job there."
      - "The cluster must run PyFlink: a Python with the C(apache-flink) package of the cluster's Flink version,
        named by C(python.client.executable) (the JobManager runs the program's C(main) with it) and
        C(python.executable) (the TaskManagers run Python functions with it). The P(flinkops.flink.flink_cluster#role)
        role provides both with C(flink_cluster_python: true)."
      - "Flink builds a PyFlink job with the JobManager's JVM-wide execution context, which every program call sets.
        So a PyFlink program is submitted alone: every program call of this collection on the host where the module
        runs passes a lock file of the cluster (named after its O(url)s) in the temporary directory; a PyFlink call
        waits, within O(wait_timeout), until no other is in flight. Calls from other hosts cannot be held back: when
        Flink gave the job another call's settings, the task fails, naming the job (one instance runs, nothing is
        stopped); run again with O(state=upgraded)."
      - Mutually exclusive with O(jar), O(sql), O(sql_file) and O(entry_class). O(args) are the program's arguments.
    type: path
    version_added: 0.2.0
  python_module:
    description:
      - With O(python) a directory, the module to run, as C(python -m) would (for example C(etl.main)); it must be
        C(<module path>.py) or a package with C(__main__.py) in that directory. For a single script it is the script's
        name and may be left out.
    type: str
    version_added: 0.2.0
  entry_class:
    description:
      - Fully qualified main class. Defaults to the jar manifest's C(Main-Class).
    type: str
  args:
    description:
      - Program arguments, passed through exactly as given (one list element is one argument; spaces and unicode
        are kept).
    type: list
    elements: str
    default: []
  parallelism:
    description:
      - Default parallelism of the job; 1 or more. Defaults to the cluster's C(parallelism.default).
    type: int
  config:
    description:
      - Flink configuration for this submission (C(flinkConfiguration) of the run request), for example
        C(pipeline.max-parallelism). Needs Flink 1.17 or newer.
      - "Nested maps are flattened exactly as the P(flinkops.flink.flink_flatten_config#filter) filter and the
        flink_cluster role do: C(execution: {checkpointing: {interval: 30s}}) is C(execution.checkpointing.interval)."
      - Values are rendered the way Flink parses them back; booleans become C(true)/C(false), lists use C(;), maps
        C(k:v,k2:v2), with Flink's quoting where a value contains a separator. A null value is an error.
      - Values under Flink's sensitive keys (any key containing C(password), C(secret), C(token), C(apikey),
        C(api-key), C(auth-params), C(service-key), C(basic-auth), C(jaas.config), C(http-headers) or
        C(fs.azure.account.key)) go to Flink in the run request only. They are never recorded with the job (only a
        salted digest is), and they are masked in the module's output and diff.
    type: dict
    default: {}
  secret_args:
    description:
      - Program arguments appended after O(args) that are secret. They are passed to the program but never recorded
        with the job, never returned and never shown in the diff; the record keeps a salted digest, so a change is
        still detected, and a rollback can restart the previous version only if this declaration carries the same
        values.
    type: list
    elements: str
    default: []
  restore_from:
    description:
      - Savepoint or retained checkpoint path to start the job from when it has to be submitted.
      - Without it, a job whose previous instances ended (cancelled, failed, finished) resumes from the newest state
        they left, newest instance first; for each, its newest savepoint or retained checkpoint, else the path it was
        itself started from (RV(restored_from) says which).
      - When Flink shows that the job ran before (an ended instance is listed, or Flink refuses a job id it no longer
        lists) and no state is known, the task fails before submitting and names the evidence. Then set this option
        to the savepoint to resume from, or to V(none).
      - V(none) forces an empty start.
      - Ignored while a live instance runs.
    type: str
  upgrade_mode:
    description:
      - How O(state=upgraded) moves a live job to the declared spec.
      - V(savepoint) stops the job with a savepoint (atomic C(/stop)) and starts the new version from it.
      - V(last-state) cancels the job and starts the new version from its newest retained checkpoint, for jobs that
        cannot take a savepoint. The job's checkpoints must be retained on cancellation
        (C(execution.checkpointing.externalized-checkpoint-retention=RETAIN_ON_CANCELLATION)); this is checked before
        the job is touched.
      - V(stateless) cancels the job and starts the new version empty.
      - Before the running job is touched, the module checks everything it can. The new version's C(main()) builds
        its job graph with the same request body as the submission, the savepoint directory is known, the Flink
        version supports O(config), checkpoints are retained for V(last-state), and the previous version can be
        started again (its record is readable, its jar is on the cluster, its secrets are in this declaration).
    type: str
    choices: [savepoint, last-state, stateless]
    default: savepoint
  allow_no_rollback:
    description:
      - Upgrade a job although the previous version could not be started again if the new one fails (the running
        job carries no readable flinkops record, e.g. it was started by hand, or its secrets are no longer declared).
      - Without it, such an upgrade fails before the running job is touched.
    type: bool
    default: false
  allow_non_restored_state:
    description:
      - With O(restore_from), skip state in the savepoint that cannot be mapped to an operator of the job.
    type: bool
    default: false
  savepoint:
    description:
      - With O(state=absent), stop the job with a savepoint (atomic C(/stop)) instead of cancelling it, and return
        the savepoint's path in RV(savepoint). O(state=upgraded) always takes one in O(upgrade_mode=savepoint).
    type: bool
    default: false
  savepoint_dir:
    description:
      - Directory for the savepoint taken with O(savepoint=true) or by an upgrade. Defaults to the cluster's
        default savepoint directory (C(execution.checkpointing.savepoint-dir), or C(state.savepoints.dir) before Flink
        2); one of them must be set, which is checked before anything is touched.
      - Each stop-with-savepoint gets a directory of its own, C(<savepoint_dir>/flinkops-<trigger id>/), so when a
        JobManager failover makes Flink forget where the savepoint went, the module still finds it there (when
        that directory is readable from the host the module runs on) or names it in the failure message.
    type: str
  scope:
    description:
      - The name of a set of jobs this job belongs to, recorded with every instance the module starts. A
        P(flinkops.flink.flink_job_set#module) run with the same scope and
        O(flinkops.flink.flink_job_set#module:prune=true) stops the job once that set no longer declares it. Jobs
        without a scope are never pruned.
      - A live job whose record carries another scope is left alone by V(present), with a warning, and restarted
        through a savepoint with this scope's record by V(upgraded).
    type: str
    version_added: 0.2.0
  wait:
    description:
      - Return only once a submitted job passed the health gate (see O(healthy_for)) or, with O(state=absent), the job
        has ended.
      - With V(false), return as soon as Flink accepted the submission or the cancellation. O(state=upgraded)
        refuses V(false), because an upgrade is verified and rolled back by the module, which cannot happen after it
        returned.
    type: bool
    default: true
  healthy_for:
    description:
      - The health gate. Before a submission (with O(wait=true)) or an upgrade is reported done, every task of the
        new instance must be C(RUNNING), and stay so, with no failure, for this many seconds.
      - Flink's own signals are read. The job status and task counts come from C(GET /jobs/overview), polled every
        0.5 s; a task that leaves C(RUNNING), or the job going C(RESTARTING), C(FAILING) or ending fails the gate at
        once. The exception history, C(GET /jobs/<id>/exceptions), is read every 2 s and at the end of the window;
        any entry (each failure and restart adds one) fails the gate. Flink caches that answer for about 3 s, so a
        failure in the last 3 s of the window may go unseen.
      - The default catches a job that fails on its first records or on its restored state (a crash loop) and one
        that cannot get its slots. A job that fails later than the window is not caught; raise it for such jobs.
      - A failed gate rolls an upgrade back. A first submission that fails it is left as Flink runs it (there is no
        previous version) and the task fails with the evidence in RV(verification).
      - V(0) still needs every task C(RUNNING) once and an empty exception history.
    type: int
    default: 10
  wait_for_checkpoint:
    description:
      - Also wait, after O(healthy_for), for the first checkpoint the new instance completes (from
        C(GET /jobs/<id>/checkpoints)). It proves that the state was read and that sinks commit. The job must have
        checkpointing enabled.
    type: bool
    default: false
  rollback_timeout:
    description:
      - The part of O(wait_timeout) that O(state=upgraded) reserves up front for compensation. That means cancelling
        the new version and starting and verifying the previous one. The forward steps must be done within
        O(wait_timeout) minus O(rollback_timeout), and compensation can always use what is left, at least
        O(rollback_timeout).
      - It must be more than O(healthy_for), and O(wait_timeout) must be more than O(rollback_timeout) plus
        O(healthy_for); the task fails before touching anything otherwise.
      - "How long a run can take. An upgrade takes at most O(wait_timeout), except in one case. Flink cannot call
        back a stop-with-savepoint it has begun, so a savepoint still in flight when the forward budget runs out is
        followed to its end. Flink ends it within the job's checkpoint timeout (C(execution.checkpointing.timeout),
        10 min by default, read from C(GET /jobs/<id>/checkpoints/config)), plus 30 s for a failover. Then the
        previous version is started from that savepoint and verified within O(rollback_timeout), and the task fails
        saying how long the savepoint took. The job is never left stopped. The same holds for O(state=absent) with
        O(savepoint=true): the stop is followed to its end, and the task returns once the job ended."
      - "Calls that run the program's C(main()) (C(/jars/<id>/plan), C(/jars/<id>/run)) and jar uploads have a read
        timeout of their own, 120 s, independent of O(request_timeout). A submission whose answer was lost is looked
        up by its job id before it is sent again."
    type: int
    default: 60
notes:
  - Job identity. The 32-hex-digit job id is C(<name hash:16><generation:16>). Each new instance takes the next
    generation after the highest one Flink lists for the name, because Flink refuses to run an id again. When Flink
    refuses an id it no longer lists (it forgot the ended instance, e.g. after C(jobstore.expiration-time)), the next
    ids tried are generation +1, +3, +7, ..., so a forgotten history of n instances costs about log2(n) refused
    submissions. See the README.
  - Races. Two runs that saw different histories (for example across a JobManager failover) can both be accepted
    under different generations. After every accepted submission the module lists the job's live instances again;
    every run that sees two picks the same survivor (the instance started from state, else the earlier one) and
    cancels the other. A run whose own instance lost reports RV(action=superseded) and the survivor's id.
  - Checkpoints. Each instance gets a checkpoint directory of its own, C(<base>/flinkops-<salt>/<job id>/chk-N), where
    C(<base>) is C(execution.checkpointing.dir) or C(state.checkpoints.dir) from O(config) or the cluster, because
    Flink accepts an ended job id again after a failover and a fresh instance under it would overwrite and delete
    the old instance's retained checkpoints.
  - Jars are uploaded under the name C(flinkops-<sha256 prefix>-<file name>), which is how the module recognises
    them on the next run. Flink keeps a jar with the JobManager that took the upload. A rollback needs the previous
    version's jar, so an upgrade warns when only one of several JobManagers in O(url) has it.
  - A no-op run (the job is already running) sends three requests, C(GET /config) (the Flink version), C(GET /jobs/overview) and
    C(GET /jobs/<id>/config) (the record), and uploads nothing.
  - What flink_job stores with a job. Every submission records the declared name and spec (jar SHA-256 and file
    name, O(entry_class), O(args), O(parallelism), O(config) without sensitive values), the path the instance was
    started from, and salted digests of sensitive config values and O(secret_args) in the job's global job parameters
    under C(flinkops.spec) (base64url JSON, see C(GET /jobs/<id>/config)). It tells which version runs, which
    declaration owns the job, and how to restart the previous version on rollback. Nothing is stored on the Ansible
    side. A program that sets its own global job parameters hides the record; O(state=upgraded) then fails before
    touching the job.
  - After a successful upgrade the previous version's jar is deleted from the cluster, unless another live job
    records that it uses the same jar. This clean-up has a budget of its own (at most 15 s). A failure there is a
    warning, never a failed upgrade, and the result keeps the savepoint and the job ids.
  - Job graphs in the diff. With C(--diff), a real upgrade also shows the job graph of the running version (from
    C(GET /jobs/<id>/plan)) and of the new one (from the preflight's C(/jars/<id>/plan)) as C(job_graph), one line
    per vertex with its parallelism. Check mode cannot show them, because building the new graph runs the
    program's C(main()).
  - Health. A live job that Flink reports RESTARTING or FAILING, or whose tasks are not all RUNNING, is reported in
    RV(health) with a warning; it is never silently counted as fine.
  - flink_job is meant for long-running (streaming) jobs. A batch job that finishes will be submitted again by the
    next run with O(state=present).
seealso:
  - module: flinkops.flink.flink_job_info
  - module: flinkops.flink.flink_cluster_info
  - name: Flink REST API
    description: The endpoints this module uses.
    link: https://nightlies.apache.org/flink/flink-docs-stable/docs/ops/rest_api/
'''

EXAMPLES = r'''
- name: Make sure the orders job runs
  flinkops.flink.flink_job:
    url: http://flink-jobmanager:8081
    name: orders-enrichment
    jar: /opt/jobs/orders-enrichment-1.4.2.jar
    entry_class: com.example.orders.EnrichmentJob
    args: [--input-topic, orders, --output-topic, orders-enriched]
    parallelism: 4
    config:
      pipeline.max-parallelism: 128

- name: Several JobManagers of an HA cluster; any one that answers will do
  flinkops.flink.flink_job:
    url:
      - https://jm-1.example.com:8081
      - https://jm-2.example.com:8081
    ca_path: /etc/pki/flink/ca.pem
    name: orders-enrichment
    jar: /opt/jobs/orders-enrichment-1.4.2.jar

- name: Set the connection once for a whole play
  hosts: localhost
  module_defaults:
    group/flinkops.flink.flink:
      url: http://flink-jobmanager:8081
      wait_timeout: 300
  tasks:
    - name: Start the job from a savepoint if it is not running
      flinkops.flink.flink_job:
        name: sessions
        jar: /opt/jobs/sessions.jar
        restore_from: s3://flink/savepoints/savepoint-3f6c1e-7a7b1d2c1d6a

- name: Move the job to a new version through a savepoint (first deploy included)
  flinkops.flink.flink_job:
    url: http://flink-jobmanager:8081
    name: orders-enrichment
    state: upgraded
    jar: /opt/jobs/orders-enrichment-1.5.0.jar
    entry_class: com.example.orders.EnrichmentJob
    parallelism: 4
    savepoint_dir: s3://flink/savepoints
    wait_timeout: 600
  register: upgrade

- name: A SQL job, kept running; an edit of the SQL upgrades it through a savepoint (state=upgraded)
  flinkops.flink.flink_job:
    url: http://flink-jobmanager:8081
    name: orders-per-minute
    state: upgraded
    sql: |
      CREATE TABLE orders (id BIGINT, amount DECIMAL(10, 2), ts AS LOCALTIMESTAMP,
                           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
        WITH ('connector' = 'datagen', 'rows-per-second' = '100');
      CREATE TABLE per_minute (window_start TIMESTAMP(3), orders BIGINT, amount DECIMAL(38, 2))
        WITH ('connector' = 'blackhole');
      INSERT INTO per_minute
      SELECT window_start, COUNT(*), SUM(amount)
      FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
      GROUP BY window_start, window_end;
    config:
      execution.checkpointing.interval: 30 s
    savepoint_dir: s3://flink/savepoints

- name: The same, the statements kept in a file next to the playbook
  flinkops.flink.flink_job:
    url: http://flink-jobmanager:8081
    name: orders-per-minute
    sql_file: "{{ playbook_dir }}/sql/orders-per-minute.sql"

- name: A PyFlink job, its program packed from a directory next to the playbook
  flinkops.flink.flink_job:
    url: http://flink-jobmanager:8081
    name: clicks-enrichment
    state: upgraded
    python: "{{ playbook_dir }}/pyjobs/clicks"
    python_module: clicks.main
    args: [--window, 1min]

- name: Stop the job with a savepoint and keep the path
  flinkops.flink.flink_job:
    url: http://flink-jobmanager:8081
    name: orders-enrichment
    state: absent
    savepoint: true
    savepoint_dir: s3://flink/savepoints
  register: stopped

- name: Show where the savepoint went
  ansible.builtin.debug:
    msg: "{{ stopped.savepoint }}"
'''

RETURN = r'''
action:
  description: What the module did (or, in check mode, would do).
  returned: always
  type: str
  choices: [none, submitted, superseded, deduplicated, upgraded, rolled_back, failed, cancelled, stopped]
  sample: submitted
job_id:
  description: Id of the job the result is about (the live, submitted or first stopped instance); null when none.
  returned: always
  type: str
  sample: 3f6c1e0a9b2d4c5e7a7b1d2c00000000
job_ids:
  description: Ids of every instance that was cancelled or stopped.
  returned: when O(state=absent) found live instances
  type: list
  elements: str
  sample: [3f6c1e0a9b2d4c5e7a7b1d2c00000000]
job:
  description: The job as Flink reports it after the module acted; null when there is none.
  returned: always
  type: dict
  contains:
    id:
      description: Job id.
      type: str
      sample: 3f6c1e0a9b2d4c5e7a7b1d2c00000000
    name:
      description: The job's name in Flink.
      type: str
      sample: orders-enrichment
    state:
      description: Flink job status.
      type: str
      sample: RUNNING
    start_time:
      description: Start time, ISO 8601 in UTC.
      type: str
      sample: '2026-11-24T10:15:02.123Z'
    start_time_ms:
      description: Start time in milliseconds since the epoch.
      type: int
      sample: 1795601702123
    end_time:
      description: End time, ISO 8601 in UTC, for jobs that ended.
      type: str
      sample: null
    end_time_ms:
      description: End time in milliseconds since the epoch.
      type: int
      sample: null
    duration_ms:
      description: Run time in milliseconds.
      type: int
      sample: 53021
    generation:
      description: Generation part of the job id under the flinkops scheme.
      type: int
      sample: 0
  sample:
    id: 3f6c1e0a9b2d4c5e7a7b1d2c00000000
    name: orders-enrichment
    state: RUNNING
adopted:
  description: True when the live job was started outside flinkops (its Flink name equals O(name)) and was adopted.
  returned: always
  type: bool
  sample: false
health:
  description:
    - How the live job is doing, from Flink's job status and task counts (C(GET /jobs/overview)).
    - V(healthy) means C(RUNNING) with every task C(RUNNING); V(starting) covers scheduling, deploying and tasks that
      wait for slots; V(restarting) and V(failing) are Flink's own states. Anything but V(healthy) also warns.
  returned: when a live job is reported
  type: str
  choices: [healthy, starting, restarting, failing, cancelling]
  sample: healthy
cancelled_job_id:
  description: With RV(action=superseded), the instance this run had started and cancelled because a concurrent
    run's instance survived.
  returned: when RV(action=superseded)
  type: str
  sample: 3f6c1e0a9b2d4c5e0000000000000001
refused_submissions:
  description: How many job ids Flink refused as already used although it no longer lists them (forgotten history).
  returned: when the job was submitted and Flink refused ids first
  type: int
  sample: 3
new_job_id:
  description: With O(state=upgraded), the id of the new version's instance (also when it was rolled back); null when
    the new version was never started.
  returned: when an upgrade happened or was attempted
  type: str
  sample: 3f6c1e0a9b2d4c5e0000000000000002
verification:
  description:
    - The health gate's evidence for the instance this run started (see O(healthy_for)).
  returned: when a job was submitted with O(wait=true), or an upgrade started the new version
  type: dict
  contains:
    job_id:
      description: The instance that was verified.
      type: str
    healthy:
      description: Whether it passed.
      type: bool
    healthy_s:
      description: Seconds it was seen with every task C(RUNNING) and no failure.
      type: float
    healthy_for:
      description: The window it needed (O(healthy_for)).
      type: float
    failures:
      description: Entries in its exception history (failures and restarts).
      type: int
    checkpoint_id:
      description: With O(wait_for_checkpoint), the id of its first completed checkpoint.
      type: int
    state:
      description: Its Flink state at the last look.
      type: str
    tasks:
      description: Its task counts at the last look.
      type: dict
    reason:
      description: Why it failed the gate.
      type: str
    signals:
      description: The Flink REST answers the verdict is based on.
      type: list
      elements: str
  sample: {job_id: 3f6c1e0a9b2d4c5e0000000000000002, healthy: false, healthy_s: 4.5, healthy_for: 10, failures: 1,
           state: RESTARTING, reason: "it is restarting (Flink state RESTARTING): java.lang.IllegalStateException: boom"}
rollback_verification:
  description: The health gate's evidence for the previous version after a rollback, shaped like RV(verification).
  returned: when an upgrade was rolled back
  type: dict
failed_job_ids:
  description: With a failed upgrade, the instances of the new version that were cancelled before the rollback.
  returned: when an upgrade was rolled back or failed
  type: list
  elements: str
  sample: [3f6c1e0a9b2d4c5e0000000000000002]
drift:
  description: True when a live instance of the job runs another spec than declared (O(state=present) leaves it alone).
  returned: when O(state=present) found a live job
  type: bool
  sample: false
jar_id:
  description: Id of the uploaded jar on the cluster that was used for the submission.
  returned: when the job was submitted
  type: str
  sample: 1d2c7a7b-3f6c-1e0a-9b2d-4c5e7a7b1d2c_flinkops-5e7a7b1d2c1d6a3f-orders.jar
spec_hash:
  description: SHA-256 of the declared spec (jar content, entry class, args, parallelism, config; of sensitive values
    and O(secret_args) only their names and count enter it).
  returned: when O(state=present)
  type: str
  sample: 7a7b1d2c1d6a3f6c1e0a9b2d4c5e7a7b1d2c1d6a3f6c1e0a9b2d4c5e7a7b1d2c
generation:
  description: Generation of the submitted job id.
  returned: when the job was submitted
  type: int
  sample: 0
previous_job_id:
  description: Id of the job that was upgraded (stopped) by O(state=upgraded).
  returned: when an upgrade happened or was attempted
  type: str
  sample: 3f6c1e0a9b2d4c5e1d2c7a7b00000000
upgrade_mode:
  description: The O(upgrade_mode) of an upgrade.
  returned: when an upgrade happened or was attempted
  type: str
  sample: savepoint
restored_from:
  description: Where a (re)submitted job started from, when it was not empty.
  returned: when the job was submitted from a savepoint or checkpoint
  type: dict
  contains:
    path:
      description: Savepoint or checkpoint path.
      type: str
      sample: file:/var/lib/flink/savepoints/savepoint-3f6c1e-7a7b1d2c1d6a
    kind:
      description: V(explicit) (O(restore_from)), V(savepoint) or V(checkpoint) (left by an ended instance), or
        V(restored_from) (the path an ended instance that made no checkpoint had itself been started from).
      type: str
      sample: savepoint
    job_id:
      description: The ended instance the state was taken from; null for V(explicit).
      type: str
      sample: 3f6c1e0a9b2d4c5e7a7b1d2c00000000
  sample: {path: "file:/sp/savepoint-3f6c1e-7a7b1d2c1d6a", kind: savepoint, job_id: 3f6c1e0a9b2d4c5e7a7b1d2c00000000}
savepoint:
  description:
    - Path of the savepoint taken when stopping (the first one if several instances were stopped).
    - With O(state=upgraded), the savepoint (or, for V(last-state), the checkpoint) the new version started from,
      also returned when the upgrade failed.
  returned: when O(savepoint=true) stopped a job, or an upgrade took one
  type: str
  sample: file:/var/lib/flink/savepoints/savepoint-3f6c1e-7a7b1d2c1d6a
savepoints:
  description: Paths of all savepoints taken, in the order of RV(job_ids).
  returned: when O(savepoint=true) stopped a job
  type: list
  elements: str
  sample: [file:/var/lib/flink/savepoints/savepoint-3f6c1e-7a7b1d2c1d6a]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.flinkops.flink.plugins.module_utils._common import (
    client_from_module,
    connection_argument_spec,
    hide_sensitive_values,
    run_module,
)
from ansible_collections.flinkops.flink.plugins.module_utils._job import JobReconciler
from ansible_collections.flinkops.flink.plugins.module_utils._job_spec import (
    job_argument_spec,
    job_mutually_exclusive,
    job_required_if,
)
from ansible_collections.flinkops.flink.plugins.module_utils._model import Desired


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(job_argument_spec())
    argument_spec['scope'] = dict(type='str')
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, required_if=job_required_if(),
                           mutually_exclusive=job_mutually_exclusive())
    p = module.params
    hide_sensitive_values(module, p['config'])

    def work():
        desired = Desired(
            name=p['name'], state=p['state'], jar=p['jar'], sql=p['sql'], sql_file=p['sql_file'],
            python=p['python'], python_module=p['python_module'],
            entry_class=p['entry_class'], args=p['args'],
            secret_args=p['secret_args'], parallelism=p['parallelism'], config=p['config'],
            restore_from=p['restore_from'], allow_non_restored_state=p['allow_non_restored_state'],
            allow_no_rollback=p['allow_no_rollback'], savepoint=p['savepoint'], savepoint_dir=p['savepoint_dir'],
            wait=p['wait'], upgrade_mode=p['upgrade_mode'], healthy_for=p['healthy_for'],
            wait_for_checkpoint=p['wait_for_checkpoint'], rollback_timeout=p['rollback_timeout'],
            wait_timeout=p['wait_timeout'], scope=p['scope'] or None)
        client = client_from_module(module)
        reconciler = JobReconciler(client, desired, check_mode=module.check_mode, diff=module._diff,
                                   warn=module.warn)
        return reconciler.run()

    result = run_module(module, work)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
