package org.flinkops.examples;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
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
 * --sleep-ms N        pause per record (default 20), so the job does not burn CPU
 * </pre>
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
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--job-name") && i + 1 < args.length) {
                jobName = args[++i];
            } else if (a.equals("--uid-suffix") && i + 1 < args.length) {
                uidSuffix = args[++i];
            } else if (a.equals("--sleep-ms") && i + 1 < args.length) {
                sleepMs = Long.parseLong(args[++i]);
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
                .map(new Throttle(sleepMs))
                .uid("throttle" + uidSuffix)
                .keyBy(new ByBucket())
                .process(new Counter(failAtRuntime))
                .uid("counter" + uidSuffix)
                .filter(s -> false)
                .uid("drop" + uidSuffix)
                .print()
                .uid("print" + uidSuffix);
        env.execute(jobName);
    }

    /** Slows the sequence down. */
    public static class Throttle implements MapFunction<Long, Long> {
        private final long sleepMs;

        public Throttle(long sleepMs) {
            this.sleepMs = sleepMs;
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
        private transient ValueState<Long> count;

        public Counter(boolean fail) {
            this.fail = fail;
        }

        @Override
        public void processElement(Long value, Context ctx, Collector<String> out) throws Exception {
            if (fail) {
                throw new IllegalStateException("StatefulCounter was asked to fail at runtime (--fail-at-runtime)");
            }
            if (count == null) {
                count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Long.class));
            }
            Long c = count.value();
            long next = (c == null ? 0L : c) + 1;
            count.update(next);
            out.collect(ctx.getCurrentKey() + "=" + next);
        }
    }
}
