package rmq.interop;

import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import org.apache.rocketmq.acl.common.AclClientRPCHook;
import org.apache.rocketmq.acl.common.SessionCredentials;
import org.apache.rocketmq.client.consumer.DefaultMQPullConsumer;
import org.apache.rocketmq.client.consumer.PullResult;
import org.apache.rocketmq.client.consumer.PullStatus;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageClientExt;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * rmq's interop checker: the official Java client reads back what rmq sent, and sends what rmq is compared
 * against. Output is one JSON object per line on stdout; diagnostics go to stderr.
 *
 * <pre>
 * read --namesrv ADDR --topic T [--inline-max BYTES] [--access-key AK --secret-key SK] [--namespace NS]
 * send --namesrv ADDR --topic T [--count N] [--size BYTES] [--keys PREFIX] [--tags TAG] [--group G]
 * trace --namesrv ADDR --topic TRACE_TOPIC   (every trace record of the topic, decoded by TraceDataEncoder)
 * reply --namesrv ADDR --topic T [--seconds N]   (answers request messages: body "reply:" + request body)
 * bench --namesrv ADDR --topic T [--mode sync|async|oneway] [--threads N] [--count N] [--size BYTES] [--window N]
 *       [--linger-ms N] (N > 0: autoBatch on, batchMaxDelayMs N, batchMaxBytes 32 KiB)
 * </pre>
 */
public final class Checker {
    private Checker() {
    }

    /** `trace` mode: print decoded trace records instead of messages. */
    private static boolean traceRead;

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            usage("missing command");
        }
        Map<String, String> opts = parse(args);
        String namesrv = opts.getOrDefault("namesrv", System.getenv().getOrDefault("RMQ_NAMESRV", "127.0.0.1:9876"));
        String topic = opts.get("topic");
        if (topic == null) {
            usage("--topic is required");
        }
        switch (args[0]) {
            case "read":
                read(namesrv, topic, Integer.parseInt(opts.getOrDefault("inline-max", "4096")),
                    opts.get("access-key"), opts.get("secret-key"), opts.get("namespace"));
                break;
            case "send":
                send(namesrv, topic, Integer.parseInt(opts.getOrDefault("count", "1")),
                    Integer.parseInt(opts.getOrDefault("size", "128")), opts.get("keys"), opts.get("tags"),
                    opts.getOrDefault("group", "rmq_interop_java_producer"));
                break;
            case "trace":
                traceRead = true;
                read(namesrv, topic, 0, opts.get("access-key"), opts.get("secret-key"), opts.get("namespace"));
                break;
            case "reply":
                reply(namesrv, topic, Integer.parseInt(opts.getOrDefault("seconds", "60")));
                break;
            case "stream":
                stream(namesrv, topic, Integer.parseInt(opts.getOrDefault("threads", "4")),
                    Integer.parseInt(opts.getOrDefault("seconds", "30")),
                    Integer.parseInt(opts.getOrDefault("rate", "800")));
                break;
            case "bench":
                bench(namesrv, topic, opts.getOrDefault("mode", "sync"),
                    Integer.parseInt(opts.getOrDefault("threads", "1")),
                    Integer.parseInt(opts.getOrDefault("count", "10000")),
                    Integer.parseInt(opts.getOrDefault("size", "1024")),
                    Integer.parseInt(opts.getOrDefault("window", "1000")),
                    Integer.parseInt(opts.getOrDefault("linger-ms", "0")));
                break;
            default:
                usage("unknown command " + args[0]);
        }
        System.out.flush();
        System.exit(0);
    }

    private static void usage(String why) {
        System.err.println("checker: " + why);
        System.err.println("usage: read --namesrv ADDR --topic T [--inline-max BYTES] [--access-key AK --secret-key SK] [--namespace NS]");
        System.err.println("       send --namesrv ADDR --topic T [--count N] [--size BYTES] [--keys PREFIX] [--tags TAG] [--group G]");
        System.err.println("       stream --namesrv ADDR[;ADDR] --topic T [--threads N] [--seconds S] [--rate PER_SECOND]");
        System.exit(2);
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> m = new HashMap<>();
        for (int i = 1; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                usage("bad argument " + args[i]);
            }
            m.put(args[i].substring(2), args[++i]);
        }
        return m;
    }

    /**
     * Every message of every queue, from offset 0 to the queue's max offset; signed with the credentials when
     * given (AclClientRPCHook), in the namespace when given (topic named without it, as a user would).
     */
    @SuppressWarnings("deprecation")
    private static void read(String namesrv, String topic, int inlineMax, String accessKey, String secretKey,
        String namespace) throws Exception {
        String group = "rmq_interop_reader_" + System.nanoTime();
        DefaultMQPullConsumer consumer = accessKey == null ? new DefaultMQPullConsumer(group)
            : new DefaultMQPullConsumer(group, new AclClientRPCHook(new SessionCredentials(accessKey, secretKey)));
        if (namespace != null) {
            consumer.setNamespace(namespace);
        }
        consumer.setNamesrvAddr(namesrv);
        consumer.setInstanceName("rmq_interop_" + System.nanoTime());
        consumer.start();
        try {
            Set<MessageQueue> queues = new TreeSet<>(consumer.fetchSubscribeMessageQueues(topic));
            for (MessageQueue mq : queues) {
                long max = consumer.maxOffset(mq);
                long offset = 0;
                while (offset < max) {
                    PullResult r = consumer.pull(mq, "*", offset, 32);
                    if (r.getPullStatus() != PullStatus.FOUND) {
                        if (r.getNextBeginOffset() > offset) {
                            offset = r.getNextBeginOffset();
                            continue;
                        }
                        break;
                    }
                    for (MessageExt m : r.getMsgFoundList()) {
                        if (traceRead) {
                            printTrace(m);
                        } else {
                            System.out.println(json(m, mq, inlineMax));
                        }
                    }
                    offset = r.getNextBeginOffset();
                }
            }
        } finally {
            consumer.shutdown();
        }
    }

    /**
     * The replier of request-reply: a push consumer of `topic` that answers every request message with
     * `MessageUtil.createReplyMessage` (body "reply:" + the request's body), sent by a producer as the
     * Java client sends replies (SEND_REPLY_MESSAGE_V2). Prints "ready" once subscribed, then one JSON line
     * per reply; exits after `seconds`.
     */
    private static void reply(String namesrv, String topic, int seconds) throws Exception {
        // Rebalance every second (default 20 s), so the consumer owns its queues soon after the route appears.
        System.setProperty("rocketmq.client.rebalance.waitInterval", "1000");
        DefaultMQProducer producer = new DefaultMQProducer("rmq_interop_replier_producer");
        producer.setNamesrvAddr(namesrv);
        producer.setInstanceName("rmq_interop_reply_" + System.nanoTime());
        producer.start();
        org.apache.rocketmq.client.consumer.DefaultMQPushConsumer consumer =
            new org.apache.rocketmq.client.consumer.DefaultMQPushConsumer("rmq_interop_replier_" + System.nanoTime());
        consumer.setNamesrvAddr(namesrv);
        consumer.setInstanceName("rmq_interop_reply_" + System.nanoTime());
        consumer.setPollNameServerInterval(1000);
        consumer.setConsumeFromWhere(org.apache.rocketmq.common.consumer.ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                try {
                    byte[] body = ("reply:" + new String(m.getBody(), java.nio.charset.StandardCharsets.UTF_8))
                        .getBytes(java.nio.charset.StandardCharsets.UTF_8);
                    Message r = org.apache.rocketmq.client.utils.MessageUtil.createReplyMessage(m, body);
                    SendResult sr = producer.send(r, 3000);
                    Map<String, Object> o = new TreeMap<>();
                    o.put("replied", m.getProperty("CORRELATION_ID"));
                    o.put("status", sr.getSendStatus().name());
                    System.out.println(toJson(o));
                    System.out.flush();
                } catch (Exception e) {
                    System.err.println("reply failed: " + e);
                }
            }
            return org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        // Ready once the consumer owns queues of the topic (the route may take a moment to appear).
        long until = System.currentTimeMillis() + 60_000;
        while (consumer.getDefaultMQPushConsumerImpl().getRebalanceImpl().getProcessQueueTable().isEmpty()
            && System.currentTimeMillis() < until) {
            Thread.sleep(200);
        }
        System.out.println("ready");
        System.out.flush();
        Thread.sleep(seconds * 1000L);
        consumer.shutdown();
        producer.shutdown();
    }

    private static void send(String namesrv, String topic, int count, int size, String keys, String tags,
        String group) throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer(group);
        producer.setNamesrvAddr(namesrv);
        producer.setInstanceName("rmq_interop_" + System.nanoTime());
        producer.start();
        try {
            byte[] body = new byte[size];
            for (int i = 0; i < size; i++) {
                body[i] = (byte) ('a' + i % 26);
            }
            for (int i = 0; i < count; i++) {
                Message msg = new Message(topic, tags, keys == null ? null : keys + "-" + i, body);
                SendResult r = producer.send(msg);
                Map<String, Object> o = new TreeMap<>();
                o.put("status", r.getSendStatus().name());
                o.put("msgId", r.getMsgId());
                o.put("offsetMsgId", r.getOffsetMsgId());
                o.put("broker", r.getMessageQueue().getBrokerName());
                o.put("queueId", r.getMessageQueue().getQueueId());
                o.put("queueOffset", r.getQueueOffset());
                o.put("keys", msg.getKeys());
                System.out.println(toJson(o));
            }
        } finally {
            producer.shutdown();
        }
    }

    /**
     * The producer benchmark workload, identical to rmq's bench_produce example: `count` messages of
     * `size` bytes to `topic`, after a warm-up of 1,000; sync from `threads` threads, or async with
     * `window` sends in flight. Prints one JSON line.
     */
    private static void bench(String namesrv, String topic, String mode, int threads, int count, int size,
        int window, int lingerMs) throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer("rmq_bench_java");
        producer.setNamesrvAddr(namesrv);
        producer.setInstanceName("rmq_bench_" + System.nanoTime());
        if (lingerMs > 0) {
            // autoBatch (5.1.4+): sends wait up to lingerMs and go as batches of up to 32 KiB, as rmq's
            // --auto-batch does.
            producer.setAutoBatch(true);
            producer.batchMaxDelayMs(lingerMs);
            producer.batchMaxBytes(32 * 1024);
        }
        producer.start();
        byte[] body = new byte[size];
        java.util.Arrays.fill(body, (byte) 'x');
        try {
            for (int i = 0; i < 1000; i++) {
                producer.send(new Message(topic, body));
            }
            long[] lat = new long[count];
            java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
            java.util.concurrent.atomic.AtomicInteger failed = new java.util.concurrent.atomic.AtomicInteger();
            com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            long cpu0 = os.getProcessCpuTime();
            long t0 = System.nanoTime();
            if (mode.equals("sync") || mode.equals("oneway")) {
                final boolean oneway = mode.equals("oneway");
                Thread[] ts = new Thread[threads];
                for (int t = 0; t < threads; t++) {
                    ts[t] = new Thread(() -> {
                        int i;
                        while ((i = next.getAndIncrement()) < count) {
                            long s0 = System.nanoTime();
                            try {
                                if (oneway) {
                                    producer.sendOneway(new Message(topic, body));
                                } else {
                                    producer.send(new Message(topic, body));
                                }
                            } catch (Exception e) {
                                failed.incrementAndGet();
                            }
                            lat[i] = System.nanoTime() - s0;
                        }
                    });
                    ts[t].start();
                }
                for (Thread t : ts) {
                    t.join();
                }
            } else {
                java.util.concurrent.Semaphore room = new java.util.concurrent.Semaphore(window);
                java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(count);
                for (int i = 0; i < count; i++) {
                    room.acquire();
                    final int idx = i;
                    final long s0 = System.nanoTime();
                    producer.send(new Message(topic, body), new org.apache.rocketmq.client.producer.SendCallback() {
                        public void onSuccess(SendResult r) {
                            lat[idx] = System.nanoTime() - s0;
                            room.release();
                            done.countDown();
                        }

                        public void onException(Throwable e) {
                            lat[idx] = System.nanoTime() - s0;
                            failed.incrementAndGet();
                            room.release();
                            done.countDown();
                        }
                    });
                }
                done.await();
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            double cpu = (os.getProcessCpuTime() - cpu0) / 1e9;
            java.util.Arrays.sort(lat);
            long sum = 0;
            for (long l : lat) {
                sum += l;
            }
            Map<String, Object> o = new TreeMap<>();
            o.put("client", "java");
            o.put("mode", mode);
            o.put("threads", mode.equals("async") ? window : threads);
            o.put("count", count);
            o.put("seconds", secs);
            o.put("tps", count / secs);
            o.put("avg_ms", sum / (double) count / 1e6);
            o.put("p99_ms", lat[(int) Math.min(count - 1, Math.floor(count * 0.99))] / 1e6);
            o.put("max_ms", lat[count - 1] / 1e6);
            o.put("failed", failed.get());
            o.put("cpu_s", cpu);
            System.out.println(toJson(o));
        } finally {
            producer.shutdown();
        }
    }

    /**
     * Paced synchronous sends from `threads` threads for `seconds` (`rate` in all), for failover figures:
     * prints "using ADDR" on stderr once the topic's broker address is known (the address a proxy test
     * takes down), then one JSON line: sends, successes, failures and the longest time with no successful
     * send after the first second.
     */
    private static void stream(String namesrv, String topic, int threads, int seconds, int rate) throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer("rmq_stream_java");
        producer.setNamesrvAddr(namesrv);
        producer.setInstanceName("rmq_stream_" + System.nanoTime());
        producer.start();
        try {
            producer.send(new Message(topic, "warm".getBytes(java.nio.charset.StandardCharsets.UTF_8)));
            String broker = producer.fetchPublishMessageQueues(topic).get(0).getBrokerName();
            System.err.println("using " + producer.getDefaultMQProducerImpl().getMqClientFactory()
                .findBrokerAddressInPublish(broker));
            System.err.flush();
            java.util.concurrent.ConcurrentLinkedQueue<Long> okAt = new java.util.concurrent.ConcurrentLinkedQueue<>();
            java.util.concurrent.atomic.AtomicInteger sent = new java.util.concurrent.atomic.AtomicInteger();
            java.util.concurrent.atomic.AtomicInteger failed = new java.util.concurrent.atomic.AtomicInteger();
            long t0 = System.nanoTime();
            long end = t0 + seconds * 1_000_000_000L;
            long per = threads * 1_000_000_000L / Math.max(1, rate);
            Thread[] ts = new Thread[threads];
            for (int t = 0; t < threads; t++) {
                ts[t] = new Thread(() -> {
                    long next = System.nanoTime();
                    while (System.nanoTime() < end) {
                        sent.incrementAndGet();
                        try {
                            producer.send(new Message(topic, "stream".getBytes(java.nio.charset.StandardCharsets.UTF_8)));
                            okAt.add((System.nanoTime() - t0) / 1_000_000L);
                        } catch (Exception e) {
                            failed.incrementAndGet();
                        }
                        next += per;
                        long wait = next - System.nanoTime();
                        if (wait > 0) {
                            java.util.concurrent.locks.LockSupport.parkNanos(wait);
                        }
                    }
                });
                ts[t].start();
            }
            for (Thread t : ts) {
                t.join();
            }
            long last = (System.nanoTime() - t0) / 1_000_000L;
            long[] at = okAt.stream().mapToLong(Long::longValue).sorted().toArray();
            long prev = 1000;
            long longest = 0;
            for (long a : at) {
                if (a >= 1000) {
                    longest = Math.max(longest, a - prev);
                    prev = a;
                }
            }
            longest = Math.max(longest, last - prev);
            Map<String, Object> o = new TreeMap<>();
            o.put("client", "java");
            o.put("sent", sent.get());
            o.put("ok", at.length);
            o.put("failed", failed.get());
            o.put("longest_no_success_s", longest / 1000.0);
            System.out.println(toJson(o));
        } finally {
            producer.shutdown();
        }
    }

    /** One JSON line per trace bean of `m`'s body, decoded by the Java client's own TraceDataEncoder. */
    private static void printTrace(MessageExt m) {
        String text = new String(m.getBody(), java.nio.charset.StandardCharsets.UTF_8);
        for (org.apache.rocketmq.client.trace.TraceContext c
            : org.apache.rocketmq.client.trace.TraceDataEncoder.decoderFromTraceDataString(text)) {
            for (org.apache.rocketmq.client.trace.TraceBean b : c.getTraceBeans()) {
                Map<String, Object> o = new TreeMap<>();
                o.put("type", String.valueOf(c.getTraceType()));
                o.put("timeStamp", c.getTimeStamp());
                o.put("region", c.getRegionId());
                o.put("group", c.getGroupName());
                o.put("costTime", c.getCostTime());
                o.put("success", c.isSuccess());
                o.put("topic", b.getTopic());
                o.put("msgId", b.getMsgId());
                o.put("tags", b.getTags());
                o.put("keys", b.getKeys());
                o.put("storeHost", b.getStoreHost());
                o.put("bodyLength", b.getBodyLength());
                o.put("msgType", String.valueOf(b.getMsgType()));
                o.put("offsetMsgId", b.getOffsetMsgId());
                o.put("traceMessageKeys", m.getKeys());
                System.out.println(toJson(o));
            }
        }
    }

    private static String json(MessageExt m, MessageQueue mq, int inlineMax) throws Exception {
        byte[] body = m.getBody() == null ? new byte[0] : m.getBody();
        Map<String, Object> o = new TreeMap<>();
        o.put("topic", m.getTopic());
        o.put("broker", mq.getBrokerName());
        o.put("queueId", m.getQueueId());
        o.put("queueOffset", m.getQueueOffset());
        o.put("uniqKey", m.getProperty("UNIQ_KEY"));
        o.put("offsetMsgId", m instanceof MessageClientExt ? ((MessageClientExt) m).getOffsetMsgId() : m.getMsgId());
        o.put("keys", m.getKeys());
        o.put("tags", m.getTags());
        o.put("properties", new TreeMap<>(m.getProperties()));
        o.put("flag", m.getFlag());
        o.put("sysFlag", m.getSysFlag());
        o.put("bornTimestamp", m.getBornTimestamp());
        o.put("storeTimestamp", m.getStoreTimestamp());
        o.put("bornHost", String.valueOf(m.getBornHost()));
        o.put("storeHost", String.valueOf(m.getStoreHost()));
        o.put("bodyLength", body.length);
        o.put("bodySha256", hex(MessageDigest.getInstance("SHA-256").digest(body)));
        if (body.length <= inlineMax) {
            o.put("bodyBase64", Base64.getEncoder().encodeToString(body));
        }
        return toJson(o);
    }

    private static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) {
            s.append(String.format("%02x", x & 0xff));
        }
        return s.toString();
    }

    @SuppressWarnings("unchecked")
    private static String toJson(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof Number || v instanceof Boolean) {
            return v.toString();
        }
        if (v instanceof Map) {
            List<String> parts = new ArrayList<>();
            for (Map.Entry<String, Object> e : ((Map<String, Object>) v).entrySet()) {
                parts.add(quote(e.getKey()) + ":" + toJson(e.getValue()));
            }
            return "{" + String.join(",", parts) + "}";
        }
        return quote(v.toString());
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                default:
                    if (c < 0x20 || c > 0x7e) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }
}
