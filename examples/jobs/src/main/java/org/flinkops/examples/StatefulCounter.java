package org.flinkops.examples;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * The example job of flinkops.flink: an endless, throttled sequence counted per key in keyed state.
 *
 * <p>One source file that compiles against Flink 1.20 and 2.x (no ParameterTool, no open()).
 *
 * <pre>
 * --job-name NAME     name passed to execute() (default flinkops-stateful-counter)
 * --uid-suffix S      appended to every operator uid: a version whose state cannot be mapped
 * --fail-in-main      throw in main() before execute(): the program cannot build its job graph
 * --fail-at-runtime   the counter throws on its first record (no restarts): the job goes FAILED
 * --fail-after N      each counter subtask throws after N records of the current attempt; the cluster's
 *                     restart strategy applies, so the job crash-loops (RUNNING, RESTARTING, RUNNING...)
 * --sleep-ms N        pause per record (default 20), so the job does not burn CPU
 * --snapshot-sleep-ms N  every checkpoint and savepoint takes at least N ms (the throttle sleeps in
 *                     snapshotState; it has no state of its own, so old savepoints still map)
 * </pre>
 *
 * <p>The counter publishes the highest count it has reached as the gauge {@code flinkopsCount} (operator
 * metric of the counter vertex): a job restored from its state goes on from there, one started empty
 * begins at 1.
 */
public class StatefulCounter {

    /** Replaced at build time, so jars of two "versions" differ in their bytes. */
    public static final String VERSION = "@VERSION@";

    public static void main(String[] args) throws Exception {
        String jobName = "flinkops-stateful-counter";
        String uidSuffix = "";
        boolean failInMain = false;
        boolean failAtRuntime = false;
        long sleepMs = 20;
        long failAfter = -1;
        long snapshotSleepMs = 0;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--job-name") && i + 1 < args.length) {
                jobName = args[++i];
            } else if (a.equals("--uid-suffix") && i + 1 < args.length) {
                uidSuffix = args[++i];
            } else if (a.equals("--sleep-ms") && i + 1 < args.length) {
                sleepMs = Long.parseLong(args[++i]);
            } else if (a.equals("--fail-after") && i + 1 < args.length) {
                failAfter = Long.parseLong(args[++i]);
            } else if (a.equals("--snapshot-sleep-ms") && i + 1 < args.length) {
                snapshotSleepMs = Long.parseLong(args[++i]);
            } else if (a.equals("--fail-in-main")) {
                failInMain = true;
            } else if (a.equals("--fail-at-runtime")) {
                failAtRuntime = true;
            }
        }
        System.out.println("StatefulCounter " + VERSION + " args=" + java.util.Arrays.toString(args));
        if (failInMain) {
            throw new IllegalStateException("StatefulCounter was asked to fail in main() (--fail-in-main)");
        }
        Configuration conf = new Configuration();
        if (failAtRuntime) {
            conf.set(ConfigOptions.key("restart-strategy.type").stringType().noDefaultValue(), "none");
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.fromSequence(0, Long.MAX_VALUE)
                .uid("sequence" + uidSuffix)
                .map(new Throttle(sleepMs, snapshotSleepMs))
                .uid("throttle" + uidSuffix)
                .keyBy(new ByBucket())
                .process(new Counter(failAtRuntime, failAfter))
                .uid("counter" + uidSuffix)
                .filter(s -> false)
                .uid("drop" + uidSuffix)
                .print()
                .uid("print" + uidSuffix);
        env.execute(jobName);
    }

    /** Slows the sequence down, and optionally every checkpoint/savepoint (it keeps no state). */
    public static class Throttle implements MapFunction<Long, Long>, CheckpointedFunction {
        private final long sleepMs;
        private final long snapshotSleepMs;

        public Throttle(long sleepMs, long snapshotSleepMs) {
            this.sleepMs = sleepMs;
            this.snapshotSleepMs = snapshotSleepMs;
        }

        @Override
        public void snapshotState(FunctionSnapshotContext context) throws Exception {
            if (snapshotSleepMs > 0) {
                Thread.sleep(snapshotSleepMs);
            }
        }

        @Override
        public void initializeState(FunctionInitializationContext context) {
        }

        @Override
        public Long map(Long value) throws Exception {
            if (sleepMs > 0) {
                Thread.sleep(sleepMs);
            }
            return value;
        }
    }

    /** Ten keys. */
    public static class ByBucket implements KeySelector<Long, Long> {
        @Override
        public Long getKey(Long value) {
            return value % 10;
        }
    }

    /** Counts records per key in keyed state. */
    public static class Counter extends KeyedProcessFunction<Long, Long, String> {
        private final boolean fail;
        private final long failAfter;
        private transient ValueState<Long> count;
        /** Records this subtask processed in this attempt: not state, so every restart starts at 0. */
        private transient long seen;
        /** Highest count of this subtask (the flinkopsCount gauge). */
        private transient volatile long highest;

        public Counter(boolean fail, long failAfter) {
            this.fail = fail;
            this.failAfter = failAfter;
        }

        @Override
        public void processElement(Long value, Context ctx, Collector<String> out) throws Exception {
            if (fail) {
                throw new IllegalStateException("StatefulCounter was asked to fail at runtime (--fail-at-runtime)");
            }
            if (failAfter >= 0 && seen >= failAfter) {
                throw new IllegalStateException(
                        "StatefulCounter was asked to fail after " + failAfter + " records (--fail-after)");
            }
            seen++;
            if (count == null) {
                count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Long.class));
                getRuntimeContext().getMetricGroup().gauge("flinkopsCount", (Gauge<Long>) () -> highest);
            }
            Long c = count.value();
            long next = (c == null ? 0L : c) + 1;
            count.update(next);
            if (next > highest) {
                highest = next;
            }
            out.collect(ctx.getCurrentKey() + "=" + next);
        }
    }
}
