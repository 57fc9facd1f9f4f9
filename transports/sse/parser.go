package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// MaxLine is the longest line a client accepts by default: 1 MiB, the default
// chat.Limits.FrameLimit (16 x 64 KiB).
const MaxLine = 1 << 20

// ErrLineTooLong is returned by Parser.Next for a line over the limit. It is not fatal: the line
// has been skipped (and with it the event it was part of) and the next call goes on after it.
var ErrLineTooLong = errors.New("sse: line longer than the limit (skipped with its event)")

// Event is one dispatched server-sent event.
type Event struct {
	// ID is the event's id field, if it had one (HasID).
	ID    string
	HasID bool
	// Type is the event field ("" means "message").
	Type string
	// Data is the data lines joined by LF.
	Data []byte
}

// Parser reads events from a text/event-stream as the HTML standard's event stream
// interpretation does: lines end at CRLF, LF or CR; a line starting with ':' is a comment;
// "field: value" loses one space after the colon; data lines are joined with LF; a blank line
// dispatches the event, unless it has no data line; an id containing NUL is ignored; retry takes
// only digits. An event cut off by the end of the stream is dropped.
type Parser struct {
	r       *bufio.Reader
	max     int
	line    []byte
	skipLF  bool // the previous line ended at CR: a LF next belongs to it
	lastID  string
	retry   time.Duration
	data    []byte
	hasData bool
	evType  string
	id      string
	hasID   bool
	bad     bool // the event lost a line to the limit
}

// NewParser reads events from r; a line may hold at most max bytes (MaxLine if max <= 0).
func NewParser(r io.Reader, max int) *Parser {
	if max <= 0 {
		max = MaxLine
	}
	size := 16 << 10
	if max < size {
		size = max + 2
		if size < 16 {
			size = 16
		}
	}
	return &Parser{r: bufio.NewReaderSize(r, size), max: max}
}

// LastEventID is the last event id seen (what a browser sends as Last-Event-ID).
func (p *Parser) LastEventID() string { return p.lastID }

// Retry is the reconnection time the stream asked for (0 if none).
func (p *Parser) Retry() time.Duration { return p.retry }

// Buffered reports whether a whole event seems to be buffered (a blank line after a line end),
// so that a Next call need not block. It may miss one (then Next blocks for more); it never
// reports one that is not there when the stream is written with LF or CRLF line ends.
func (p *Parser) Buffered() bool {
	n := p.r.Buffered()
	if n < 2 {
		return false
	}
	b, _ := p.r.Peek(n)
	return bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r")) || bytes.Contains(b, []byte("\r\r"))
}

// Next returns the next event. Its Data is valid until the next call. It returns ErrLineTooLong
// (not fatal) for a line over the limit, io.EOF at the end of the stream and other read errors
// as they come.
func (p *Parser) Next() (Event, error) {
	for {
		line, err := p.readLine()
		if errors.Is(err, ErrLineTooLong) {
			p.bad = true
			return Event{}, fmt.Errorf("%w: over %d bytes", ErrLineTooLong, p.max)
		}
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if ev, ok := p.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		p.field(line)
	}
}

func (p *Parser) dispatch() (Event, bool) {
	if p.hasID {
		p.lastID = p.id
	}
	ev := Event{ID: p.id, HasID: p.hasID, Type: p.evType, Data: p.data}
	ok := p.hasData && !p.bad
	p.data, p.hasData, p.evType, p.id, p.hasID, p.bad = p.data[:0], false, "", "", false, false
	if ok {
		ev.Data = bytes.TrimSuffix(ev.Data, []byte{'\n'})
	}
	return ev, ok
}

func (p *Parser) field(line []byte) {
	if line[0] == ':' {
		return // comment
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
		p.hasData = true
	case "event":
		p.evType = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.id, p.hasID = string(value), true
		}
	case "retry":
		if n, err := strconv.ParseUint(string(value), 10, 31); err == nil && isDigits(value) {
			p.retry = time.Duration(n) * time.Millisecond
		}
	}
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// readLine returns the next line without its end. It copies into p.line.
func (p *Parser) readLine() ([]byte, error) {
	p.line = p.line[:0]
	tooLong := false
	for {
		if p.r.Buffered() == 0 {
			if _, err := p.r.Peek(1); err != nil {
				if err == io.EOF && (len(p.line) > 0 || tooLong) {
					// The stream ended in the middle of a line: the event is incomplete.
					return nil, io.EOF
				}
				return nil, err
			}
		}
		buf, _ := p.r.Peek(p.r.Buffered())
		if p.skipLF {
			p.skipLF = false
			if buf[0] == '\n' {
				_, _ = p.r.Discard(1)
				continue
			}
		}
		end := bytes.IndexByte(buf, '\n')
		seg := buf
		if end >= 0 {
			seg = buf[:end]
		}
		if cr := bytes.IndexByte(seg, '\r'); cr >= 0 {
			end = cr
			seg = buf[:cr]
			p.skipLF = true
		}
		if !tooLong {
			if len(p.line)+len(seg) > p.max {
				tooLong = true
				p.line = p.line[:0]
			} else {
				p.line = append(p.line, seg...)
			}
		}
		if end < 0 {
			_, _ = p.r.Discard(len(buf))
			continue
		}
		_, _ = p.r.Discard(end + 1)
		if tooLong {
			return nil, ErrLineTooLong
		}
		return p.line, nil
	}
}

// AppendEvent appends one event: an id line if hasID, then data as data lines (split at LF,
// CRLF and CR, so a parser gets data back with LF line ends), then the blank line.
func AppendEvent(b []byte, id uint64, hasID bool, data []byte) []byte {
	if hasID {
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, '\n')
	}
	for {
		i := bytes.IndexAny(data, "\r\n")
		b = append(b, "data: "...)
		if i < 0 {
			b = append(b, data...)
			b = append(b, '\n')
			break
		}
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(b, '\n')
}
