package centrifugo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Centrifugo's client protocol (v2, JSON), the part the emulation client speaks. A command goes
// up as {"id":N,"connect"|"subscribe"|"unsubscribe"|"publish":{...}}; a pong is {}. Down come
// replies {"id":N,"error"|"connect"|"subscribe"|...:{...}}, pushes {"push":{"channel":C,
// "pub"|"disconnect"|"unsubscribe":{...}}}, and pings {}.

type cmdOut struct {
	ID          uint32     `json:"id,omitempty"`
	Connect     *connectRq `json:"connect,omitempty"`
	Subscribe   *subRq     `json:"subscribe,omitempty"`
	Unsubscribe *chanRq    `json:"unsubscribe,omitempty"`
	Publish     *pubRq     `json:"publish,omitempty"`
}

type connectRq struct {
	Token string `json:"token"`
	Name  string `json:"name,omitempty"`
}

type subRq struct {
	Channel string `json:"channel"`
	Recover bool   `json:"recover,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
	Offset  uint64 `json:"offset,omitempty"`
}

type chanRq struct {
	Channel string `json:"channel"`
}

type pubRq struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// reply is one message from the server; a ping is a reply with nothing set.
type reply struct {
	ID        uint32      `json:"id"`
	Error     *replyErr   `json:"error"`
	Push      *push       `json:"push"`
	Connect   *connected  `json:"connect"`
	Subscribe *subscribed `json:"subscribe"`
	// Set for an answer the client only waits for (unsubscribe, publish).
	Unsubscribe json.RawMessage `json:"unsubscribe"`
	Publish     json.RawMessage `json:"publish"`
}

type replyErr struct {
	Code      uint32 `json:"code"`
	Message   string `json:"message"`
	Temporary bool   `json:"temporary"`
}

type connected struct {
	Client  string `json:"client"`
	Version string `json:"version"`
	Ping    uint32 `json:"ping"` // seconds between the server's pings; 0: none
	Pong    bool   `json:"pong"` // the server wants pongs
	Session string `json:"session"`
	Node    string `json:"node"`
}

type subscribed struct {
	Recoverable   bool          `json:"recoverable"`
	Epoch         string        `json:"epoch"`
	Offset        uint64        `json:"offset"`
	Recovered     bool          `json:"recovered"`
	WasRecovering bool          `json:"was_recovering"`
	Publications  []publication `json:"publications"`
}

type publication struct {
	Data   json.RawMessage `json:"data"`
	Info   *clientInfo     `json:"info"`
	Offset uint64          `json:"offset"`
	Time   int64           `json:"time"`
}

type clientInfo struct {
	User   string `json:"user"`
	Client string `json:"client"`
}

type push struct {
	Channel     string        `json:"channel"`
	Pub         *publication  `json:"pub"`
	Disconnect  *disconnect   `json:"disconnect"`
	Unsubscribe *unsubscribed `json:"unsubscribe"`
}

type disconnect struct {
	Code      uint32 `json:"code"`
	Reason    string `json:"reason"`
	Reconnect bool   `json:"reconnect"`
}

type unsubscribed struct {
	Code   uint32 `json:"code"`
	Reason string `json:"reason"`
}

// isPing reports whether r is the server's ping ({}).
func (r *reply) isPing() bool {
	return r.ID == 0 && r.Push == nil && r.Error == nil && r.Connect == nil && r.Subscribe == nil
}

// parseReplies decodes the replies in one frame: one JSON object per line (Centrifugo joins
// several with "\n"); blank lines are skipped.
func parseReplies(frame []byte) ([]reply, error) {
	var out []reply
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' {
			return out, fmt.Errorf("centrifugo: a reply is not a JSON object: %.40q", line)
		}
		var r reply
		if err := json.Unmarshal(line, &r); err != nil {
			return out, fmt.Errorf("centrifugo: bad reply %.60q: %w", line, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// maxFrame bounds one frame (one SSE event, one streamed line): a recovery's subscribe answer
// carries up to HistorySize publications.
const maxFrame = 64 << 20

// errFrameTooLong is returned by the frame readers for a frame over maxFrame.
var errFrameTooLong = errors.New("centrifugo: a frame is longer than 64 MiB")

// frameReader splits a response body into frames.
type frameReader interface {
	// Next returns the next frame; it is valid until the following call.
	Next() ([]byte, error)
}

// lineReader reads HTTP streaming's frames: one reply per line.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
}

func newLineReader(r io.Reader) *lineReader { return &lineReader{r: bufio.NewReaderSize(r, 16<<10)} }

func (l *lineReader) Next() ([]byte, error) {
	for {
		line, err := readLine(l.r, &l.buf)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(line)) > 0 {
			return line, nil
		}
	}
}

// readLine reads one line without its "\n" (or "\r\n"), at most maxFrame long.
func readLine(r *bufio.Reader, buf *[]byte) ([]byte, error) {
	*buf = (*buf)[:0]
	for {
		chunk, err := r.ReadSlice('\n')
		if len(*buf)+len(chunk) > maxFrame+2 {
			return nil, errFrameTooLong
		}
		*buf = append(*buf, chunk...)
		switch {
		case err == nil:
			line := (*buf)[:len(*buf)-1]
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(*buf) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// sseReader reads server-sent events (the EventSource format): an event's data is its data:
// lines joined with "\n", ended by a blank line. Other fields and comments are skipped; an event
// without data is not a frame.
type sseReader struct {
	r    *bufio.Reader
	buf  []byte
	data []byte
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: bufio.NewReaderSize(r, 16<<10)} }

func (s *sseReader) Next() ([]byte, error) {
	s.data = s.data[:0]
	has := false
	for {
		line, err := readLine(s.r, &s.buf)
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			if has {
				return s.data, nil
			}
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte{' '})
		}
		if string(field) != "data" {
			continue // a comment (":..."), event:, id:, retry:
		}
		if has {
			s.data = append(s.data, '\n')
		}
		if len(s.data)+len(value) > maxFrame {
			return nil, errFrameTooLong
		}
		s.data = append(s.data, value...)
		has = true
	}
}
