package webtransport

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/wirelab/wirelab/chat"
)

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Ack
		err  bool
	}{
		{name: "one", in: `{"type":"ack","seq":7}`, want: Ack{Seqs: []uint64{7}}},
		{name: "upto", in: `{"type":"ack","upto":9}`, want: Ack{Upto: 9}},
		{name: "both", in: `{"type":"ack","upto":3,"seqs":[5,6]}`, want: Ack{Upto: 3, Seqs: []uint64{5, 6}}},
		{name: "empty", in: `{"type":"ack"}`, err: true},
		{name: "not ack", in: `{"type":"say","seq":1}`, err: true},
		{name: "bad json", in: `{"type":"ack",`, err: true},
		{name: "negative", in: `{"type":"ack","seq":-1}`, err: true},
		{name: "trailing garbage", in: `{"type":"ack","seq":1}x`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAck([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("ParseAck(%s) error %v, want error %v", tc.in, err, tc.err)
			}
			if err == nil && (got.Upto != tc.want.Upto || !slices.Equal(got.Seqs, tc.want.Seqs)) {
				t.Fatalf("ParseAck(%s) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
	seqs := make([]uint64, MaxAckSeqs+1)
	for i := range seqs {
		seqs[i] = uint64(i + 1)
	}
	a, err := ParseAck(AppendAck(nil, 0, seqs)) // AppendAck writes at most MaxAckSeqs
	if err != nil || len(a.Seqs) != MaxAckSeqs {
		t.Fatalf("AppendAck of %d seqs: %+v %v", len(seqs), a, err)
	}
	if _, err := ParseAck([]byte(`{"type":"ack","seqs":[` + nums(MaxAckSeqs+1) + `]}`)); err == nil {
		t.Fatal("an ack listing more than MaxAckSeqs seqs was accepted")
	}
}

func nums(n int) string {
	b := make([]byte, 0, 4*n)
	for i := 1; i <= n; i++ {
		if i > 1 {
			b = append(b, ',')
		}
		b = append(b, byte('0'+i%10))
	}
	return string(b)
}

// FuzzDatagram feeds arbitrary bytes to the datagram parsers: ParseAck (server) and
// parseDatagramEnvelope (client) must not panic, and an ack that parses must survive
// AppendAck and ParseAck unchanged.
func FuzzDatagram(f *testing.F) {
	for _, s := range []string{
		`{"type":"ack","seq":1}`, `{"type":"ack","upto":5,"seqs":[7,9]}`, `{"type":"ack","seqs":[]}`,
		`{"type":"msg","seq":3,"id":"n-1","room":"lobby","from":"a","text":"hi","ts":1}`,
		`{"type":"ack","upto":18446744073709551615}`, `[]`, `null`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseDatagramEnvelope(b)
		a, err := ParseAck(b)
		if err != nil {
			return
		}
		if len(a.Seqs) > MaxAckSeqs+1 {
			t.Fatalf("ParseAck let %d seqs through", len(a.Seqs))
		}
		if len(a.Seqs) > MaxAckSeqs {
			a.Seqs = a.Seqs[:MaxAckSeqs] // seq plus a full seqs list: AppendAck writes the limit
		}
		b2 := AppendAck(nil, a.Upto, a.Seqs)
		a2, err := ParseAck(b2)
		if err != nil {
			t.Fatalf("AppendAck wrote %s, which does not parse: %v", b2, err)
		}
		if a2.Upto != a.Upto || !slices.Equal(a2.Seqs, a.Seqs) {
			t.Fatalf("round trip %+v -> %s -> %+v", a, b2, a2)
		}
	})
}

func TestUnackedWindowAndBackoff(t *testing.T) {
	u := newUnacked()
	p := chat.NewPayload(chat.Envelope{Type: chat.TypeMsg, Text: "x"})
	now := time.Unix(1000, 0)
	ctx := context.Background()
	for s := uint64(1); s <= Window; s++ {
		if err := u.add(ctx, chat.Entry{Seq: s, P: p}, now, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	// The window is full: add waits until an ack frees room or ctx ends.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := u.add(short, chat.Entry{Seq: Window + 1, P: p}, now, 50*time.Millisecond); err == nil {
		t.Fatal("add went beyond the window")
	}
	u.ack(Ack{Upto: 10, Seqs: []uint64{20, 21}}, now)
	if n := u.len(); n != Window-12 {
		t.Fatalf("%d pending after acking 12, want %d", n, Window-12)
	}
	if err := u.add(ctx, chat.Entry{Seq: Window + 1, P: p}, now, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// 20 and 21 were acked: 11..19 were sent before them and are not, so they are lost (fast
	// retransmit).
	early := now.Add(time.Millisecond)
	due, next := u.due(early, 50*time.Millisecond, nil)
	var seqs []uint64
	for _, e := range due {
		seqs = append(seqs, e.Seq)
	}
	slices.Sort(seqs)
	if want := []uint64{11, 12, 13, 14, 15, 16, 17, 18, 19}; !slices.Equal(seqs, want) {
		t.Fatalf("after acks of 20 and 21, %v are sent again at once, want %v", seqs, want)
	}
	if !next.Equal(now.Add(50 * time.Millisecond)) {
		t.Fatalf("next timer at %v, want the RTO of the others", next)
	}
	// At the RTO every other one is due; the fast ones are backed off (2 x RTO from early).
	at := now.Add(50 * time.Millisecond)
	due, next = u.due(at, 50*time.Millisecond, nil)
	if len(due) != u.len()-9 {
		t.Fatalf("at the RTO %d of %d are due", len(due), u.len()-9)
	}
	if want := early.Add(100 * time.Millisecond); !next.Equal(want) {
		t.Fatalf("next retransmission at %v, want %v", next, want)
	}
}

func TestRTO(t *testing.T) {
	for _, tc := range []struct {
		name         string
		srtt, rttvar time.Duration
		want         time.Duration
	}{
		{"loopback", 100 * time.Microsecond, 50 * time.Microsecond, minRTO},
		{"80ms", 80 * time.Millisecond, 5 * time.Millisecond, 95 * time.Millisecond},
		{"huge", 5 * time.Second, time.Second, maxRTO},
	} {
		if got := rto(tc.srtt, tc.rttvar); got != tc.want {
			t.Errorf("%s: rto = %v, want %v", tc.name, got, tc.want)
		}
	}
}
