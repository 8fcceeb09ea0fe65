// The producer benchmark workload of rmq's `rmq bench produce` and the Java checker's `bench`, written for
// apache/rocketmq-client-go v2: warm-up of 1,000 sends, then --count sends of --size bytes; sync or oneway
// from --threads goroutines, or async with --window in flight. Prints one JSON line.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func main() {
	ns := flag.String("namesrv", "127.0.0.1:9876", "name server")
	topic := flag.String("topic", "BenchmarkTest", "topic")
	mode := flag.String("mode", "sync", "sync|async|oneway")
	threads := flag.Int("threads", 1, "sending goroutines (sync, oneway)")
	window := flag.Int("window", 1000, "async sends in flight")
	count := flag.Int("count", 10000, "messages after the warm-up")
	size := flag.Int("size", 1024, "body bytes")
	flag.Parse()
	rlog.SetLogLevel("error")

	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{*ns})),
		producer.WithGroupName("rmq_bench_go"),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
	if err := p.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(1)
	}
	defer p.Shutdown()
	body := make([]byte, *size)
	for i := range body {
		body[i] = 'x'
	}
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		if _, err := p.SendSync(ctx, primitive.NewMessage(*topic, body)); err != nil {
			fmt.Fprintln(os.Stderr, "warm-up:", err)
			os.Exit(1)
		}
	}
	cpu0 := cpuSeconds()
	lat := make([]int64, *count)
	var failed int64
	var next int64 = -1
	start := time.Now()
	parallel := *threads
	switch *mode {
	case "sync", "oneway":
		var wg sync.WaitGroup
		for t := 0; t < *threads; t++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := atomic.AddInt64(&next, 1)
					if i >= int64(*count) {
						return
					}
					s0 := time.Now()
					msg := primitive.NewMessage(*topic, body)
					var err error
					if *mode == "sync" {
						_, err = p.SendSync(ctx, msg)
					} else {
						err = p.SendOneWay(ctx, msg)
					}
					if err != nil {
						atomic.AddInt64(&failed, 1)
					}
					lat[i] = int64(time.Since(s0))
				}
			}()
		}
		wg.Wait()
	case "async":
		parallel = *window
		room := make(chan struct{}, *window)
		var wg sync.WaitGroup
		for i := 0; i < *count; i++ {
			room <- struct{}{}
			wg.Add(1)
			idx, s0 := i, time.Now()
			err := p.SendAsync(ctx, func(ctx context.Context, r *primitive.SendResult, e error) {
				if e != nil {
					atomic.AddInt64(&failed, 1)
				}
				lat[idx] = int64(time.Since(s0))
				<-room
				wg.Done()
			}, primitive.NewMessage(*topic, body))
			if err != nil {
				atomic.AddInt64(&failed, 1)
				<-room
				wg.Done()
			}
		}
		wg.Wait()
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", *mode)
		os.Exit(2)
	}
	secs := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	var sum int64
	for _, l := range lat {
		sum += l
	}
	p99 := lat[min(len(lat)-1, int(float64(len(lat))*0.99))]
	out, _ := json.Marshal(map[string]any{
		"client": "go", "mode": *mode, "threads": parallel, "count": *count, "seconds": secs,
		"tps": float64(*count) / secs, "avg_ms": float64(sum) / float64(*count) / 1e6,
		"p99_ms": float64(p99) / 1e6, "max_ms": float64(lat[len(lat)-1]) / 1e6, "failed": failed, "cpu_s": cpu,
	})
	fmt.Println(string(out))
}

// cpuSeconds is the process's user plus system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
