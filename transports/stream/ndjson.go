package stream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxLine is the longest line a client accepts by default: 1 MiB, the default
// chat.Limits.FrameLimit (16 x 64 KiB).
const MaxLine = 1 << 20

// ErrLineTooLong is returned by LineReader.Next for a line longer than its limit. It is not fatal:
// the line has been skipped and the next call reads the line after it.
var ErrLineTooLong = errors.New("stream: NDJSON line longer than the limit (skipped)")

// LineReader splits an NDJSON stream into lines. A line ends at LF; a CR before the LF is
// dropped; empty lines are skipped. It keeps at most max bytes of one line.
type LineReader struct {
	r    *bufio.Reader
	max  int
	line []byte
}

// NewLineReader reads lines of at most max bytes (MaxLine if max <= 0) from r.
func NewLineReader(r io.Reader, max int) *LineReader {
	if max <= 0 {
		max = MaxLine
	}
	size := 16 << 10
	if max < size {
		size = max + 1
		if size < 16 {
			size = 16
		}
	}
	return &LineReader{r: bufio.NewReaderSize(r, size), max: max}
}

// Buffered reports whether a whole line is already buffered, so Next will not block.
func (l *LineReader) Buffered() bool {
	n := l.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := l.r.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// Next returns the next non-empty line without its line end. The slice is valid until the next
// call. It returns ErrLineTooLong for a line over the limit (and goes on after it), io.EOF at a
// clean end, and io.ErrUnexpectedEOF when the stream ends in the middle of a line.
func (l *LineReader) Next() ([]byte, error) {
	for {
		l.line = l.line[:0]
		tooLong := false
		for {
			frag, err := l.r.ReadSlice('\n')
			if !tooLong {
				if len(l.line)+len(frag) > l.max+2 { // +2: the line end itself
					tooLong = true
					l.line = l.line[:0]
				} else {
					l.line = append(l.line, frag...)
				}
			}
			if err == nil {
				break
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err == io.EOF {
				if len(l.line) == 0 && !tooLong {
					return nil, io.EOF
				}
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line := bytes.TrimSuffix(l.line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if tooLong || len(line) > l.max {
			return nil, fmt.Errorf("%w: over %d bytes", ErrLineTooLong, l.max)
		}
		if len(line) == 0 {
			continue
		}
		return line, nil
	}
}

// AppendLine appends one NDJSON line: the encoded value (which holds no raw newline, as JSON
// encoders write it) and a LF.
func AppendLine(b, value []byte) []byte {
	b = append(b, value...)
	return append(b, '\n')
}
