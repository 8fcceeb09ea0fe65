import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.LitePushConsumer;

/**
 * Reads a lite topic (RocketMQ 5.5, RIP-83) back with the official v5 Java client's LitePushConsumer
 * (rocketmq-client-java, gRPC, through a 5.5.0 proxy), for rmq's real-broker tests.
 *
 * <pre>
 * LiteRead ENDPOINT PARENT GROUP LITE COUNT SECONDS
 * </pre>
 *
 * Subscribes GROUP (bound to PARENT) to LITE, prints "ready" (a lite subscription starts at the end of the
 * lite topic, so the sender waits for it), then one JSON line per message received (topic, liteTopic,
 * messageId, bodySha256) until COUNT arrived (exit 0) or SECONDS passed (exit 1).
 */
public final class LiteRead {
    private LiteRead() {
    }

    public static void main(String[] a) throws Exception {
        String endpoint = a[0], parent = a[1], group = a[2], lite = a[3];
        int count = Integer.parseInt(a[4]);
        int seconds = Integer.parseInt(a[5]);
        ClientServiceProvider provider = ClientServiceProvider.loadService();
        ClientConfiguration cfg = ClientConfiguration.newBuilder().setEndpoints(endpoint).enableSsl(false).build();
        CountDownLatch done = new CountDownLatch(count);
        LitePushConsumer consumer = provider.newLitePushConsumerBuilder().setClientConfiguration(cfg)
            .setConsumerGroup(group).bindTopic(parent)
            .setMessageListener(m -> {
                ByteBuffer body = m.getBody();
                byte[] bytes = new byte[body.remaining()];
                body.get(bytes);
                String line = "{\"topic\":\"" + m.getTopic() + "\",\"liteTopic\":\"" + m.getLiteTopic().orElse("")
                    + "\",\"messageId\":\"" + m.getMessageId() + "\",\"bodySha256\":\"" + sha256(bytes) + "\"}";
                synchronized (System.out) {
                    System.out.println(line);
                    System.out.flush();
                }
                done.countDown();
                return ConsumeResult.SUCCESS;
            })
            .build();
        consumer.subscribeLite(lite);
        synchronized (System.out) {
            System.out.println("ready");
            System.out.flush();
        }
        boolean all = done.await(seconds, TimeUnit.SECONDS);
        consumer.close();
        System.exit(all ? 0 : 1);
    }

    private static String sha256(byte[] data) {
        try {
            StringBuilder sb = new StringBuilder();
            for (byte b : MessageDigest.getInstance("SHA-256").digest(data)) {
                sb.append(String.format("%02x", b));
            }
            return sb.toString();
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
