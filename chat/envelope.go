package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Envelope types, client to server.
const (
	TypeJoin  = "join"  // {"type":"join","room":R,"cid":C}
	TypeLeave = "leave" // {"type":"leave","room":R,"cid":C}
	TypeSay   = "say"   // {"type":"say","room":R,"text":T,"cid":C}
	TypeDM    = "dm"    // {"type":"dm","to":U,"text":T,"cid":C}
	TypeWho   = "who"   // {"type":"who","room":R}: asks for the member list
	TypePong  = "pong"  // answer to a ping
	TypeAck   = "ack"   // {"type":"ack","seq":N}: datagram transports acknowledge a seq
)

// Envelope types, server to client.
const (
	TypeWelcome  = "welcome"  // {"type":"welcome","session":S,"user":U}
	TypeMsg      = "msg"      // {"type":"msg","seq":N,"id":ID,"room":R,"from":U,"text":T,"ts":NS}
	TypeOK       = "ok"       // {"type":"ok","seq":N,"cid":C,"id":ID}
	TypeError    = "error"    // {"type":"error","cid":C,"code":CODE,"error":TEXT}
	TypePresence = "presence" // {"type":"presence","seq":N,"room":R,"user":U,"event":"join"|"leave"} or with "members"
	TypePing     = "ping"     // heartbeat on persistent transports; answer with pong
)

// Error codes carried in error envelopes.
const (
	CodeBadJSON        = "bad_json"
	CodeTooLarge       = "too_large"
	CodeUnknownType    = "unknown_type"
	CodeMissingField   = "missing_field"
	CodeBadRoom        = "bad_room"
	CodeBadUser        = "bad_user"
	CodeNotMember      = "not_member"
	CodeTooManyRooms   = "too_many_rooms"
	CodeTextTooLong    = "text_too_long"
	CodeUnknownUser    = "unknown_user"
	CodeUnknownSession = "unknown_session"
	CodeUnauthorized   = "unauthorized"
	CodeGap            = "gap"
	CodeBadAfter       = "bad_after"
	CodeSlowConsumer   = "slow_consumer"
	CodeReplaced       = "replaced"
	CodeHeartbeat      = "heartbeat_timeout"
	CodeExpired        = "expired"
	CodeShutdown       = "shutdown"
	CodeUnavailable    = "unavailable"
	CodeLost           = "lost"
	// CodeTooManySessions: the user has Config.MaxSessionsPerUser sessions open already.
	CodeTooManySessions = "too_many_sessions"
	// CodeServerFull: the node holds Config.MaxSessions sessions already.
	CodeServerFull = "server_full"
	// CodeRateLimited: a command asked for more than its share (who: Limits.WhoRate).
	CodeRateLimited = "rate_limited"
)

// CID is a client's id for one command. It is kept as the raw JSON token the client sent (a
// string or a number), so the server echoes it back exactly as it came.
type CID string

// MarshalJSON writes the raw token back. A CID that is not a JSON string or number (one built
// in Go as CID("x") rather than with StringCID) is written as a JSON string.
func (c CID) MarshalJSON() ([]byte, error) {
	if c == "" {
		return []byte(`""`), nil
	}
	if b := c[0]; (b == '"' || b == '-' || (b >= '0' && b <= '9')) && json.Valid([]byte(c)) {
		return []byte(c), nil
	}
	return json.Marshal(string(c))
}

// UnmarshalJSON accepts a JSON string or number.
func (c *CID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || (b[0] != '"' && b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("cid must be a string or a number")
	}
	if len(b) > 130 {
		return errors.New("cid is longer than 128 characters")
	}
	*c = CID(b)
	return nil
}

// StringCID makes a CID from a Go string (as a JSON string; invalid UTF-8 becomes U+FFFD).
func StringCID(s string) CID {
	b, _ := json.Marshal(s) // a string always encodes
	return CID(b)
}

// Envelope is every message of wire protocol v1, in both directions. Fields a type does not use are
// left empty and omitted from the JSON.
type Envelope struct {
	Type    string   `json:"type"`
	Seq     uint64   `json:"seq,omitempty"`
	ID      string   `json:"id,omitempty"`
	Session string   `json:"session,omitempty"`
	User    string   `json:"user,omitempty"`
	Room    string   `json:"room,omitempty"`
	From    string   `json:"from,omitempty"`
	To      string   `json:"to,omitempty"`
	Text    string   `json:"text,omitempty"`
	TS      int64    `json:"ts,omitempty"`
	CID     CID      `json:"cid,omitempty"`
	Code    string   `json:"code,omitempty"`
	Error   string   `json:"error,omitempty"`
	Event   string   `json:"event,omitempty"`
	Members []string `json:"members,omitempty"`
	// First is set on a gap error: the first seq the session still has.
	First uint64 `json:"first,omitempty"`
}

// Error is an error envelope as a Go error.
type Error struct {
	Code string
	Text string
}

func (e *Error) Error() string { return e.Code + ": " + e.Text }

// Errorf makes an *Error with a code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Text: fmt.Sprintf(format, args...)}
}

// ErrorEnvelope turns an error into an error envelope for the given command id.
func ErrorEnvelope(cid CID, err error) Envelope {
	var ce *Error
	if errors.As(err, &ce) {
		return Envelope{Type: TypeError, CID: cid, Code: ce.Code, Error: ce.Text}
	}
	return Envelope{Type: TypeError, CID: cid, Code: CodeUnavailable, Error: err.Error()}
}

// AsError returns the error an error envelope carries, or nil for any other envelope.
func (e *Envelope) AsError() error {
	if e.Type != TypeError {
		return nil
	}
	return &Error{Code: e.Code, Text: e.Error}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

// ValidName reports whether s is a valid user or room name: 1 to 64 of A-Z a-z 0-9 _ . -
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Limits bound what one client may ask. The zero value of a field means its default.
type Limits struct {
	// MaxEnvelope is the largest client envelope in bytes (default 64 KiB). A larger one gets an
	// error envelope with code too_large; the connection goes on.
	MaxEnvelope int
	// MaxText is the longest text in bytes (default: MaxEnvelope).
	MaxText int
	// MaxRooms is how many rooms one session may be in, lobby included (default 100).
	MaxRooms int
	// WhoBurst is how many bytes of who answers (member lists) a session may be sent at once
	// (default 1 MiB); the allowance refills at WhoRate bytes a second (default 128 KiB). A
	// who while it is spent is answered rate_limited.
	WhoBurst int
	WhoRate  int
}

func (l Limits) withDefaults() Limits {
	if l.MaxEnvelope <= 0 {
		l.MaxEnvelope = 64 << 10
	}
	if l.MaxText <= 0 {
		l.MaxText = l.MaxEnvelope
	}
	if l.MaxRooms <= 0 {
		l.MaxRooms = 100
	}
	if l.WhoBurst <= 0 {
		l.WhoBurst = 1 << 20
	}
	if l.WhoRate <= 0 {
		l.WhoRate = 128 << 10
	}
	return l
}

// FrameLimit is the hard limit for one frame on a connection: beyond it a transport may close the
// connection, because it cannot read past the frame. Between MaxEnvelope and FrameLimit the client
// gets a too_large error and the connection goes on.
func (l Limits) FrameLimit() int { return 16 * l.withDefaults().MaxEnvelope }

// ParseEnvelope decodes one client envelope and checks it against the limits. The error, if any,
// is an *Error whose code says what is wrong; the returned envelope still carries the cid when it
// could be read, so the error can be matched to the command.
func ParseEnvelope(b []byte, lim Limits) (Envelope, error) {
	lim = lim.withDefaults()
	var env Envelope
	if len(b) > lim.MaxEnvelope {
		// Salvage the cid so the client can match the error to its command.
		var probe struct {
			CID CID `json:"cid"`
		}
		_ = json.Unmarshal(b, &probe)
		env.CID = probe.CID
		return env, Errorf(CodeTooLarge, "envelope is %d bytes, the limit is %d", len(b), lim.MaxEnvelope)
	}
	if err := json.Unmarshal(b, &env); err != nil {
		var probe struct {
			CID CID `json:"cid"`
		}
		_ = json.Unmarshal(b, &probe)
		env.CID = probe.CID
		return env, Errorf(CodeBadJSON, "envelope is not a JSON object: %v", shortErr(err))
	}
	switch env.Type {
	case TypeJoin, TypeLeave, TypeWho:
		if env.Room == "" {
			return env, Errorf(CodeMissingField, "%s needs a room", env.Type)
		}
		if !ValidName(env.Room) {
			return env, Errorf(CodeBadRoom, "room %q is not a valid name (1-64 of A-Z a-z 0-9 _ . -)", Clip(env.Room))
		}
	case TypeSay:
		if env.Room == "" {
			return env, Errorf(CodeMissingField, "say needs a room")
		}
		if !ValidName(env.Room) {
			return env, Errorf(CodeBadRoom, "room %q is not a valid name (1-64 of A-Z a-z 0-9 _ . -)", Clip(env.Room))
		}
		if err := checkText(env, lim); err != nil {
			return env, err
		}
	case TypeDM:
		if env.To == "" {
			return env, Errorf(CodeMissingField, `dm needs "to", the user to send to`)
		}
		if !ValidName(env.To) {
			return env, Errorf(CodeBadUser, "user %q is not a valid name (1-64 of A-Z a-z 0-9 _ . -)", Clip(env.To))
		}
		if err := checkText(env, lim); err != nil {
			return env, err
		}
	case TypePong, TypePing:
	case TypeAck:
		if env.Seq == 0 {
			return env, Errorf(CodeMissingField, "ack needs a seq")
		}
	case "":
		return env, Errorf(CodeMissingField, `envelope has no "type" (one of join, leave, say, dm, who, pong, ack)`)
	default:
		return env, Errorf(CodeUnknownType, "unknown type %q (one of join, leave, say, dm, who, pong, ack)", Clip(env.Type))
	}
	return env, nil
}

func checkText(env Envelope, lim Limits) error {
	if env.CID == "" {
		return Errorf(CodeMissingField, `%s needs a "cid" (a client id for the command, echoed in its ok)`, env.Type)
	}
	if env.Text == "" {
		return Errorf(CodeMissingField, "%s needs a text", env.Type)
	}
	if len(env.Text) > lim.MaxText {
		return Errorf(CodeTextTooLong, "text is %d bytes, the limit is %d", len(env.Text), lim.MaxText)
	}
	return nil
}

// ClipLen is how many characters of a client's input an error text repeats at most.
const ClipLen = 64

// Clip shortens s, client input that an error text repeats, to ClipLen characters followed by
// "...", so that a huge name or header does not come back as a huge answer. It does not split a
// UTF-8 sequence.
func Clip(s string) string {
	n := 0
	for i := range s {
		if n == ClipLen {
			return s[:i] + "..."
		}
		n++
	}
	return s
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// Marshal encodes an envelope as JSON without HTML escaping and without a trailing newline.
func Marshal(env *Envelope) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		// Cannot happen: every field is a plain type and CID always writes valid JSON.
		panic("chat: encoding an envelope: " + err.Error())
	}
	b := buf.Bytes()
	return b[:len(b)-1]
}

// Payload is a server envelope encoded once and shared by every session it is delivered to. Only
// the seq differs between copies; Entry.AppendJSON splices it in after the type.
type Payload struct {
	raw   []byte // {"type":"msg","id":...} without seq
	split int    // raw[:split] is {"type":"msg"
	typ   string
}

// NewPayload encodes env (its Seq is ignored).
func NewPayload(env Envelope) *Payload {
	env.Seq = 0
	return PayloadFromBytes(Marshal(&env))
}

// PayloadFromBytes wraps an envelope encoded by Marshal (without seq), as a broker carries it.
func PayloadFromBytes(b []byte) *Payload {
	// Marshal writes "type" first and type names hold no comma or quote, so the first comma
	// ends it.
	i := bytes.IndexByte(b, ',')
	if i < 0 {
		i = len(b) - 1
	}
	p := &Payload{raw: b, split: i}
	if head := b[:i]; bytes.HasPrefix(head, []byte(`{"type":"`)) && len(head) > 10 {
		p.typ = string(head[9 : len(head)-1])
	}
	return p
}

// Bytes is the encoded envelope without seq. It must not be modified.
func (p *Payload) Bytes() []byte { return p.raw }

// Envelope decodes the payload's envelope and gives it the seq.
func (p *Payload) Envelope(seq uint64) Envelope {
	var e Envelope
	_ = json.Unmarshal(p.raw, &e)
	e.Seq = seq
	return e
}

// Type is the payload's envelope type.
func (p *Payload) Type() string { return p.typ }

// Size is the encoded size without the seq.
func (p *Payload) Size() int { return len(p.raw) }

// Entry is one envelope in a session's outbox: a shared payload and this session's seq.
type Entry struct {
	Seq uint64
	P   *Payload
}

// AppendJSON appends the entry's JSON (no newline).
func (e Entry) AppendJSON(b []byte) []byte {
	b = append(b, e.P.raw[:e.P.split]...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	return append(b, e.P.raw[e.P.split:]...)
}

// Envelope decodes nothing: it returns the entry's envelope.
func (e Entry) Envelope() Envelope { return e.P.Envelope(e.Seq) }
