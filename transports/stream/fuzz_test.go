package stream_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/wirelab/wirelab/chat"
	"github.com/wirelab/wirelab/transports/stream"
)

// modelLines is what LineReader must return for data: the LF-terminated lines without their
// line end (and a CR before it), empty ones skipped, a line over max as ErrLineTooLong, and an
// unterminated tail as io.ErrUnexpectedEOF.
func modelLines(data []byte, max int) (lines [][]byte, tooLong []int, tail bool) {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return lines, tooLong, len(data) > 0
		}
		line := bytes.TrimSuffix(data[:i], []byte{'\r'})
		data = data[i+1:]
		switch {
		case len(line) > max:
			tooLong = append(tooLong, len(lines))
		case len(line) > 0:
			lines = append(lines, line)
		}
	}
}

func readAll(t *testing.T, r io.Reader, max int) (lines [][]byte, tooLong []int, tail bool) {
	lr := stream.NewLineReader(r, max)
	for {
		line, err := lr.Next()
		switch {
		case err == nil:
			if len(line) == 0 || len(line) > max || bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("bad line %q (max %d)", line, max)
			}
			lines = append(lines, bytes.Clone(line))
		case errors.Is(err, stream.ErrLineTooLong):
			tooLong = append(tooLong, len(lines))
		case err == io.EOF:
			return lines, tooLong, false
		case err == io.ErrUnexpectedEOF:
			return lines, tooLong, true
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
}

func FuzzNDJSON(f *testing.F) {
	f.Add([]byte("{\"type\":\"ping\"}\n"), 64)
	f.Add([]byte("a\r\n\nb\nccc"), 2)
	f.Add([]byte("\n\n\r\n"), 1)
	f.Add([]byte(`{"type":"msg","seq":1,"text":"caf\u00e9 \n \u2028"}`+"\n"), 16)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max <= 0 || max > 1<<20 {
			max = 1 + (max&0xffff)%4096
		}
		// Against the model, read whole and one byte at a time (every buffer boundary).
		wl, wt, wtail := modelLines(data, max)
		for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data))} {
			gl, gt, gtail := readAll(t, r, max)
			if len(gl) != len(wl) || gtail != wtail || len(gt) != len(wt) {
				t.Fatalf("got %q too long at %v tail %v; want %q %v %v", gl, gt, gtail, wl, wt, wtail)
			}
			for i := range gl {
				if !bytes.Equal(gl[i], wl[i]) || (i < len(gt) && gt[i] != wt[i]) {
					t.Fatalf("line %d: %q, want %q", i, gl[i], wl[i])
				}
			}
		}
		// Round trip: the encoder's output reads back as the same envelopes.
		if !utf8.Valid(data) {
			return
		}
		envs := []chat.Envelope{
			{Type: chat.TypeMsg, Seq: 1, Room: "lobby", From: "a", Text: string(data)},
			{Type: chat.TypeError, Code: chat.CodeBadJSON, Error: string(data)},
			{Type: chat.TypePing},
		}
		var wire []byte
		for i := range envs {
			wire = stream.AppendLine(wire, chat.Marshal(&envs[i]))
		}
		lr := stream.NewLineReader(iotest.HalfReader(bytes.NewReader(wire)), 0)
		for i := range envs {
			line, err := lr.Next()
			if err != nil {
				t.Fatalf("envelope %d: %v", i, err)
			}
			got, err := stream.Decode(line)
			if err != nil {
				t.Fatalf("envelope %d: %v", i, err)
			}
			if got.Type != envs[i].Type || got.Text != envs[i].Text || got.Error != envs[i].Error || got.Seq != envs[i].Seq {
				t.Fatalf("envelope %d: %+v, want %+v", i, got, envs[i])
			}
		}
		if _, err := lr.Next(); err != io.EOF {
			t.Fatalf("after the last line: %v, want EOF", err)
		}
	})
}
