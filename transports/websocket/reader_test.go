package websocket

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"
)

// clientFrame encodes a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	key := [4]byte{1, 2, 3, 4}
	var b []byte
	switch n := len(payload); {
	case n < 126:
		b = append(b, b0, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, b0, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, b0, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, payload...)
	unmask(b[start:], key, 0)
	return b
}

// chunked returns its bytes a few at a time, as a socket may.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.n, len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

func TestFrameReader(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 70000)
	mid := bytes.Repeat([]byte("b"), 300)
	var pongs [][]byte
	var in []byte
	in = append(in, clientFrame(true, opText, []byte(`{"type":"join"}`))...)
	in = append(in, clientFrame(false, opText, []byte("frag"))...)
	in = append(in, clientFrame(true, opPing, []byte("hi"))...) // between fragments
	in = append(in, clientFrame(false, opContinuation, []byte("men"))...)
	in = append(in, clientFrame(true, opContinuation, []byte("ted"))...)
	in = append(in, clientFrame(true, opBinary, mid)...)
	in = append(in, clientFrame(true, opText, big)...)
	in = append(in, clientFrame(true, opText, nil)...)
	in = append(in, clientFrame(true, opClose, []byte{0x03, 0xe8})...)
	for _, step := range []int{1, 3, 7, 128, 1 << 20} {
		pongs = nil
		f := &frameReader{r: &chunked{b: in, n: step}, limit: 1 << 20, pong: func(p []byte) error {
			pongs = append(pongs, append([]byte(nil), p...))
			return nil
		}}
		for i, want := range [][]byte{[]byte(`{"type":"join"}`), []byte("fragmented"), mid, big, {}} {
			got, err := f.readMessage()
			if err != nil {
				t.Fatalf("step %d, message %d: %v", step, i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("step %d, message %d: got %d bytes %.20q, want %d bytes", step, i, len(got), got, len(want))
			}
		}
		if _, err := f.readMessage(); !errors.Is(err, errClosed) {
			t.Fatalf("step %d: after close: %v", step, err)
		}
		if len(pongs) != 1 || string(pongs[0]) != "hi" {
			t.Fatalf("step %d: pongs %q", step, pongs)
		}
	}
}

func TestFrameReaderRefuses(t *testing.T) {
	unmasked := []byte{0x81, 2, 'h', 'i'}
	for _, tc := range []struct {
		name string
		in   []byte
		code int
	}{
		{"unmasked", unmasked, closeProtocolError},
		{"reserved bits", append([]byte{0xC1}, clientFrame(true, opText, []byte("x"))[1:]...), closeProtocolError},
		{"unknown opcode", clientFrame(true, 0x3, []byte("x")), closeProtocolError},
		{"fragmented ping", clientFrame(false, opPing, nil), closeProtocolError},
		{"stray continuation", clientFrame(true, opContinuation, []byte("x")), closeProtocolError},
		{"new message mid-message", append(clientFrame(false, opText, []byte("a")), clientFrame(true, opText, []byte("b"))...), closeProtocolError},
		{"too big", clientFrame(true, opText, make([]byte, 1025)), closeTooBig},
		{"too big in pieces", append(clientFrame(false, opText, make([]byte, 600)), clientFrame(true, opContinuation, make([]byte, 600))...), closeTooBig},
		{"ping of 126 bytes", clientFrame(true, opPing, make([]byte, 126)), closeProtocolError},
		{"text not UTF-8", clientFrame(true, opText, []byte("a\xffb")), closeBadData},
		{"text ending inside a rune", append(clientFrame(false, opText, []byte("a")), clientFrame(true, opContinuation, []byte("\xe2\x82"))...), closeBadData},
		{"a bad fragment fails before the message ends", clientFrame(false, opText, []byte("\xed\xa0\x80")), closeBadData},
		{"close of 1 byte", clientFrame(true, opClose, []byte{3}), closeProtocolError},
		{"close 1005", clientFrame(true, opClose, []byte{0x03, 0xed}), closeProtocolError},
		{"close 5000", clientFrame(true, opClose, []byte{0x13, 0x88}), closeProtocolError},
		{"close reason not UTF-8", clientFrame(true, opClose, []byte{0x03, 0xe8, 0xff}), closeBadData},
	} {
		f := &frameReader{r: bytes.NewReader(tc.in), limit: 1024}
		var err error
		for err == nil {
			_, err = f.readMessage()
		}
		var pe *protocolError
		if !errors.As(err, &pe) || pe.code != tc.code {
			t.Errorf("%s: %v, want close %d", tc.name, err, tc.code)
		}
	}
	// A binary message is not UTF-8 checked; a text message may split a rune between frames.
	in := append(clientFrame(true, opBinary, []byte{0xff}), clientFrame(false, opText, []byte("\xe2"))...)
	in = append(in, clientFrame(false, opContinuation, []byte("\x82"))...)
	in = append(in, clientFrame(true, opContinuation, []byte("\xac"))...)
	in = append(in, clientFrame(true, opClose, []byte{0x0f, 0xa0, 'o', 'k'})...)
	f := &frameReader{r: bytes.NewReader(in), limit: 1024}
	for _, want := range []string{"\xff", "€"} {
		if got, err := f.readMessage(); err != nil || string(got) != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	}
	if _, err := f.readMessage(); !errors.Is(err, errClosed) || f.closeCode != 4000 {
		t.Errorf("close 4000: %v, code %d", err, f.closeCode)
	}
	f = &frameReader{r: bytes.NewReader(clientFrame(true, opText, []byte("abc"))[:4]), limit: 1024}
	if _, err := f.readMessage(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v", err)
	}
}

func TestAppendEntryLength(t *testing.T) {
	// appendEntry computes the frame length before encoding; check it against the encoding.
	for _, n := range []int{0, 100, 125, 126, 65535, 65536, 70000} {
		for _, seq := range []uint64{1, 9, 10, 12345, 1<<64 - 1} {
			p := chatPayload(n)
			b := appendEntry(nil, p.entry(seq))
			f := &frameReader{r: bytes.NewReader(maskServerFrame(b)), limit: 1 << 20}
			got, err := f.readMessage()
			if err != nil {
				t.Fatalf("n=%d seq=%d: %v", n, seq, err)
			}
			if want := p.entry(seq).AppendJSON(nil); !bytes.Equal(got, want) {
				t.Fatalf("n=%d seq=%d: frame holds %q", n, seq, got)
			}
		}
	}
}

// maskServerFrame turns one unmasked server frame into the masked form frameReader reads.
func maskServerFrame(b []byte) []byte {
	hl := 2
	switch b[1] {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	return clientFrame(b[0]&0x80 != 0, b[0]&0x0f, b[hl:])
}

func FuzzFrameReader(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte(`{"type":"say"}`)))
	f.Add(append(clientFrame(false, opText, []byte("a")), clientFrame(true, opContinuation, []byte("b"))...))
	f.Add(clientFrame(true, opPing, []byte("p")))
	f.Add([]byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := &frameReader{r: bytes.NewReader(in), limit: 4096, pong: func(p []byte) error {
			if len(p) > 125 {
				t.Fatalf("pong payload of %d bytes", len(p))
			}
			return nil
		}}
		for i := 0; i < 64; i++ {
			msg, err := fr.readMessage()
			if errors.Is(err, errClosed) && fr.closeCode != 0 && !validCloseCode(fr.closeCode) {
				t.Fatalf("close status %d accepted", fr.closeCode)
			}
			if err != nil {
				return
			}
			if len(msg) > 4096 {
				t.Fatalf("message of %d bytes over the limit", len(msg))
			}
			if fr.text && !utf8.Valid(msg) {
				t.Fatalf("text message %q is not UTF-8", msg)
			}
		}
	})
}

// runePrefixes holds every proper beginning (1-3 bytes) of a valid UTF-8 encoding.
var runePrefixes = func() map[string]bool {
	m := map[string]bool{}
	var b [4]byte
	for r := rune(0x80); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		n := utf8.EncodeRune(b[:], r)
		for k := 1; k < n; k++ {
			m[string(b[:k])] = true
		}
	}
	return m
}()

// FuzzValidPrefix checks validPrefix against its definition: b is valid UTF-8 followed by at
// most the proper beginning of one more rune.
func FuzzValidPrefix(f *testing.F) {
	for _, s := range []string{"", "abc", "κόσμε", "\xce", "\xe2\x82", "\xf0\x90\x80", "\xed\xa0", "\xed\x9f",
		"\xc0\xaf", "\xf4\x90", "\xf5", "a\xff", "\xef\xbf\xbf", "\xe0\x80"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := validPrefix(b)
		want := utf8.Valid(b)
		for k := 1; k <= 3 && k <= len(b) && !want; k++ {
			want = utf8.Valid(b[:len(b)-k]) && runePrefixes[string(b[len(b)-k:])]
		}
		if ok != want {
			t.Fatalf("validPrefix(%q) = %v, want %v", b, ok, want)
		}
		if ok && (!utf8.Valid(b[:n]) || n < len(b) && !runePrefixes[string(b[n:])]) {
			t.Fatalf("validPrefix(%q): the runes end at %d", b, n)
		}
	})
}
