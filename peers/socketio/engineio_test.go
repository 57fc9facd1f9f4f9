package socketio

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePayload(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []eioPacket
		bad  bool
	}{
		{name: "open", in: `0{"sid":"a"}`, want: []eioPacket{{Type: eioOpen, Data: `{"sid":"a"}`}}},
		{name: "ping", in: "2", want: []eioPacket{{Type: eioPing}}},
		{name: "several", in: "2\x1e42[\"msg\",{}]\x1e6", want: []eioPacket{{Type: eioPing}, {Type: eioMessage, Data: `2["msg",{}]`}, {Type: eioNoop}}},
		{name: "probe", in: "3probe", want: []eioPacket{{Type: eioPong, Data: "probe"}}},
		{name: "binary", in: "bAQID", want: []eioPacket{{Type: eioMessage, Data: "\x01\x02\x03", Binary: true}}},
		{name: "empty", in: "", bad: true},
		{name: "empty element", in: "2\x1e", bad: true},
		{name: "type 7", in: "7", bad: true},
		{name: "bad base64", in: "b!!", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePayload(tt.in)
			if tt.bad {
				if !errors.Is(err, errBadPacket) {
					t.Fatalf("parsePayload(%q) = %v, %v; want errBadPacket", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d packets %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("packet %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseHandshake(t *testing.T) {
	h, err := parseHandshake(`{"sid":"o7","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)
	if err != nil || h.SID != "o7" || h.PingInterval != 25000 || h.PingTimeout != 20000 || h.MaxPayload != 1000000 || len(h.Upgrades) != 1 {
		t.Fatalf("got %+v, %v", h, err)
	}
	for _, in := range []string{`{}`, `{"sid":"a"}`, `{"sid":"a","pingInterval":1}`, `[`, ``} {
		if _, err := parseHandshake(in); !errors.Is(err, errBadPacket) {
			t.Errorf("parseHandshake(%q): %v, want errBadPacket", in, err)
		}
	}
}

func TestParseSIOPacket(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want sioPacket
		bad  bool
	}{
		{name: "connect", in: `0{"sid":"s","pid":"p"}`, want: sioPacket{Type: sioConnect, Namespace: "/", ID: noAck, Data: []byte(`{"sid":"s","pid":"p"}`)}},
		{name: "connect, no data", in: `0`, want: sioPacket{Type: sioConnect, Namespace: "/", ID: noAck}},
		{name: "event", in: `2["msg",{"room":"r"},"off"]`, want: sioPacket{Type: sioEvent, Namespace: "/", ID: noAck, Data: []byte(`["msg",{"room":"r"},"off"]`)}},
		{name: "event with ack id", in: `212["say",{}]`, want: sioPacket{Type: sioEvent, Namespace: "/", ID: 12, Data: []byte(`["say",{}]`)}},
		{name: "ack", in: `30[{"ok":true}]`, want: sioPacket{Type: sioAck, Namespace: "/", ID: 0, Data: []byte(`[{"ok":true}]`)}},
		{name: "namespace", in: `2/admin,7["x"]`, want: sioPacket{Type: sioEvent, Namespace: "/admin", ID: 7, Data: []byte(`["x"]`)}},
		{name: "namespace only", in: `1/admin`, want: sioPacket{Type: sioDisconnect, Namespace: "/admin", ID: noAck}},
		{name: "binary event", in: `51-["x",{"_placeholder":true,"num":0}]`, want: sioPacket{Type: sioBinaryEvent, Attachments: 1, Namespace: "/", ID: noAck, Data: []byte(`["x",{"_placeholder":true,"num":0}]`)}},
		{name: "connect error", in: `4{"message":"bad_user"}`, want: sioPacket{Type: sioConnectError, Namespace: "/", ID: noAck, Data: []byte(`{"message":"bad_user"}`)}},
		{name: "empty", in: ``, bad: true},
		{name: "type 9", in: `9`, bad: true},
		{name: "event not an array", in: `2{"a":1}`, bad: true},
		{name: "event without data", in: `2`, bad: true},
		{name: "ack without id", in: `3[1]`, bad: true},
		{name: "connect with an array", in: `0[1]`, bad: true},
		{name: "not JSON", in: `2[`, bad: true},
		{name: "binary without count", in: `5["x"]`, bad: true},
		{name: "id overflow", in: `299999999999999999999["x"]`, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSIOPacket(tt.in)
			if tt.bad {
				if !errors.Is(err, errBadPacket) {
					t.Fatalf("parseSIOPacket(%q) = %+v, %v; want errBadPacket", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tt.want.Type || got.Namespace != tt.want.Namespace || got.ID != tt.want.ID ||
				got.Attachments != tt.want.Attachments || string(got.Data) != string(tt.want.Data) {
				t.Fatalf("got %+v (data %s), want %+v (data %s)", got, got.Data, tt.want, tt.want.Data)
			}
		})
	}
}

func TestEncodeSIO(t *testing.T) {
	if got := encodeSIO(sioEvent, 3, []byte(`["say",{"room":"r"}]`)); got != `423["say",{"room":"r"}]` {
		t.Errorf("event with ack id: %q", got)
	}
	if got := encodeSIO(sioConnect, noAck, []byte(`{"user":"u"}`)); got != `40{"user":"u"}` {
		t.Errorf("connect: %q", got)
	}
}

func TestEventArgs(t *testing.T) {
	name, args, err := eventArgs([]byte(`["msg",{"a":1},"off"]`))
	if err != nil || name != "msg" || len(args) != 2 || string(args[1]) != `"off"` {
		t.Fatalf("got %q %s %v", name, args, err)
	}
	for _, in := range []string{`[]`, `[1]`, `{}`} {
		if _, _, err := eventArgs([]byte(in)); !errors.Is(err, errBadPacket) {
			t.Errorf("eventArgs(%s): %v, want errBadPacket", in, err)
		}
	}
}

func TestParseReady(t *testing.T) {
	if p, err := ParseReady("ready 8080\n"); err != nil || p != 8080 {
		t.Fatalf("got %d, %v", p, err)
	}
	for _, in := range []string{"", "ready", "ready 0", "ready 65536", "ready -1", "ready +80", "ready 080", "listening 80", "ready 80 x"} {
		if p, err := ParseReady(in); err == nil {
			t.Errorf("ParseReady(%q) = %d, want an error", in, p)
		}
	}
}

// FuzzParsePayload: no panic; a payload that parses writes back to itself.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{`0{"sid":"a","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
		"2", "2\x1e42[\"msg\",{}]\x1e6", "3probe", "bAQID", "", "\x1e", "b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		pkts, err := parsePayload(in)
		if err != nil {
			return
		}
		out := make([]string, len(pkts))
		for i, p := range pkts {
			if p.Binary {
				return // base64 has more than one spelling
			}
			out[i] = string(p.Type) + p.Data
		}
		if got := encodePayload(out); got != in {
			t.Fatalf("parsed %q and wrote back %q", in, got)
		}
		if len(pkts) > 0 && pkts[0].Type == eioOpen {
			_, _ = parseHandshake(pkts[0].Data)
		}
	})
}

// FuzzParseSIOPacket: no panic; a text packet of the main namespace that parses encodes to one
// that parses the same.
func FuzzParseSIOPacket(f *testing.F) {
	for _, s := range []string{`0{"sid":"s","pid":"p"}`, `2["msg",{"room":"r"},"off"]`, `212["say",{}]`, `30[{"ok":true}]`,
		`2/admin,7["x"]`, `51-["x",{"_placeholder":true,"num":0}]`, `4{"message":"m"}`, `1`, `3`, `5-`, `2/`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := parseSIOPacket(in)
		if err != nil {
			return
		}
		if p.Type == sioEvent || p.Type == sioBinaryEvent {
			_, _, _ = eventArgs(p.Data)
		}
		if p.Namespace != "/" || p.Type == sioBinaryEvent || p.Type == sioBinaryAck {
			return // encodeSIO writes neither (this chat sends no binary)
		}
		enc := encodeSIO(p.Type, p.ID, p.Data)
		q, err := parseSIOPacket(strings.TrimPrefix(enc, "4"))
		if err != nil {
			t.Fatalf("%q parsed as %+v, encoded as %q, which does not parse: %v", in, p, enc, err)
		}
		if q.Type != p.Type || q.ID != p.ID || string(q.Data) != string(p.Data) || q.Namespace != "/" {
			t.Fatalf("%q parsed as %+v, encoded as %q, parsed again as %+v", in, p, enc, q)
		}
	})
}

// FuzzParseReady: no panic; a port that parses is in range and prints back as it came.
func FuzzParseReady(f *testing.F) {
	for _, s := range []string{"ready 8080\n", "ready 0", "ready x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParseReady(in)
		if err != nil {
			return
		}
		if p <= 0 || p > 65535 {
			t.Fatalf("ParseReady(%q) = %d", in, p)
		}
	})
}
