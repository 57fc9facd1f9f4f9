package sse_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports/sse"
)

func batch256() chat.Batch {
	p := chat.NewPayload(chat.Envelope{Type: chat.TypeMsg, ID: "n-1", Room: "lobby", From: "alice", Text: string(bytes.Repeat([]byte("x"), 200)), TS: 1})
	var b chat.Batch
	for i := range 256 {
		b.Entries = append(b.Entries, chat.Entry{Seq: uint64(i + 1), P: p})
	}
	return b
}

// BenchmarkAppendBatch is the server's framing cost per envelope.
func BenchmarkAppendBatch(b *testing.B) {
	batch := batch256()
	buf := make([]byte, 0, 128<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = sse.AppendBatch(buf[:0], batch)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Entries)), "ns/envelope")
}

// BenchmarkParseDecode is the client's cost per envelope: parse the event and decode its data.
func BenchmarkParseDecode(b *testing.B) {
	wire := sse.AppendBatch(nil, batch256())
	r := bytes.NewReader(wire)
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		r.Reset(wire)
		p := sse.NewParser(r, 0)
		for {
			ev, err := p.Next()
			if err == io.EOF {
				break
			}
			if _, err := sse.Decode(ev.Data); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256), "ns/envelope")
}
