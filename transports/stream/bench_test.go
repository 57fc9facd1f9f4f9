package stream_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports/stream"
)

// batch256 is a cursor batch of 256 messages of 200 bytes of text.
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
		buf = stream.AppendBatch(buf[:0], batch)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Entries)), "ns/envelope")
}

// BenchmarkReadDecode is the client's cost per envelope: split the line and decode it.
func BenchmarkReadDecode(b *testing.B) {
	wire := stream.AppendBatch(nil, batch256())
	r := bytes.NewReader(wire)
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		r.Reset(wire)
		lr := stream.NewLineReader(r, 0)
		for {
			line, err := lr.Next()
			if err == io.EOF {
				break
			}
			if _, err := stream.Decode(line); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256), "ns/envelope")
}
