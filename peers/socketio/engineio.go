package socketio

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Engine.IO v4 packet types (the first character of a packet).
const (
	eioOpen    = '0' // server -> client: the handshake, 0{"sid",...}
	eioClose   = '1'
	eioPing    = '2' // the server pings (v4); "2probe" is the client's upgrade probe
	eioPong    = '3'
	eioMessage = '4' // carries one Socket.IO packet
	eioUpgrade = '5' // client -> server on the new transport: switch to it
	eioNoop    = '6'
)

// recordSeparator joins the packets of one polling payload (Engine.IO v4).
const recordSeparator = "\x1e"

// eioPacket is one Engine.IO packet of a text payload.
type eioPacket struct {
	Type byte
	Data string
	// Binary is set for a base64 packet ("b..." in a polling payload); Data is then the
	// decoded bytes. Socket.IO uses binary only for binary arguments, which this chat never sends.
	Binary bool
}

// handshake is the open packet's JSON.
type handshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"` // ms
	PingTimeout  int      `json:"pingTimeout"`  // ms
	MaxPayload   int      `json:"maxPayload"`   // bytes
}

// errBadPacket is wrapped by every parse error of this file.
var errBadPacket = errors.New("socket.io: malformed packet")

// parseEIOPacket reads one Engine.IO packet as a text frame or a payload element carries it.
func parseEIOPacket(s string) (eioPacket, error) {
	if s == "" {
		return eioPacket{}, fmt.Errorf("%w: an empty Engine.IO packet", errBadPacket)
	}
	if s[0] == 'b' {
		b, err := base64.StdEncoding.DecodeString(s[1:])
		if err != nil {
			return eioPacket{}, fmt.Errorf("%w: a binary Engine.IO packet that is not base64: %v", errBadPacket, err)
		}
		return eioPacket{Type: eioMessage, Data: string(b), Binary: true}, nil
	}
	if s[0] < eioOpen || s[0] > eioNoop {
		return eioPacket{}, fmt.Errorf("%w: Engine.IO packet type %q is not 0-6", errBadPacket, s[0])
	}
	return eioPacket{Type: s[0], Data: s[1:]}, nil
}

// parsePayload splits a polling payload into its packets.
func parsePayload(body string) ([]eioPacket, error) {
	parts := strings.Split(body, recordSeparator)
	out := make([]eioPacket, 0, len(parts))
	for _, p := range parts {
		pk, err := parseEIOPacket(p)
		if err != nil {
			return nil, err
		}
		out = append(out, pk)
	}
	return out, nil
}

// encodePayload joins encoded packets into one polling payload.
func encodePayload(pkts []string) string { return strings.Join(pkts, recordSeparator) }

// parseHandshake reads the open packet's data.
func parseHandshake(data string) (handshake, error) {
	var h handshake
	if err := json.Unmarshal([]byte(data), &h); err != nil {
		return h, fmt.Errorf("%w: the Engine.IO open packet is not JSON: %v", errBadPacket, err)
	}
	if h.SID == "" {
		return h, fmt.Errorf("%w: the Engine.IO open packet has no sid", errBadPacket)
	}
	if h.PingInterval <= 0 || h.PingTimeout <= 0 {
		return h, fmt.Errorf("%w: the Engine.IO open packet has pingInterval %d, pingTimeout %d (want both > 0)", errBadPacket, h.PingInterval, h.PingTimeout)
	}
	if h.MaxPayload <= 0 {
		h.MaxPayload = 1_000_000 // the server's default
	}
	return h, nil
}

// Socket.IO v5 packet types (the first character inside an Engine.IO message).
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
	sioBinaryEvent  = '5'
	sioBinaryAck    = '6'
)

// noAck is sioPacket.ID when a packet carries no ack id.
const noAck = -1

// sioPacket is one Socket.IO packet: <type>[<attachments>-][<nsp>,][<id>][<json>].
type sioPacket struct {
	Type        byte
	Attachments int    // binary packets only
	Namespace   string // "/" when absent
	ID          int64  // noAck when absent
	Data        json.RawMessage
}

// parseSIOPacket reads a Socket.IO packet from an Engine.IO message's data.
func parseSIOPacket(s string) (sioPacket, error) {
	p := sioPacket{Namespace: "/", ID: noAck}
	if s == "" {
		return p, fmt.Errorf("%w: an empty Socket.IO packet", errBadPacket)
	}
	p.Type = s[0]
	if p.Type < sioConnect || p.Type > sioBinaryAck {
		return p, fmt.Errorf("%w: Socket.IO packet type %q is not 0-6", errBadPacket, s[0])
	}
	i := 1
	if p.Type == sioBinaryEvent || p.Type == sioBinaryAck {
		j := strings.IndexByte(s[i:], '-')
		if j <= 0 {
			return p, fmt.Errorf("%w: a binary Socket.IO packet without its attachment count", errBadPacket)
		}
		n, err := strconv.Atoi(s[i : i+j])
		if err != nil || n < 0 {
			return p, fmt.Errorf("%w: attachment count %q", errBadPacket, s[i:i+j])
		}
		p.Attachments = n
		i += j + 1
	}
	if i < len(s) && s[i] == '/' {
		j := strings.IndexByte(s[i:], ',')
		if j < 0 {
			p.Namespace = s[i:]
			i = len(s)
		} else {
			p.Namespace = s[i : i+j]
			i += j + 1
		}
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j > i {
		id, err := strconv.ParseInt(s[i:j], 10, 64)
		if err != nil {
			return p, fmt.Errorf("%w: ack id %q", errBadPacket, s[i:j])
		}
		p.ID = id
		i = j
	}
	if i < len(s) {
		if !json.Valid([]byte(s[i:])) {
			return p, fmt.Errorf("%w: Socket.IO packet data is not JSON", errBadPacket)
		}
		p.Data = json.RawMessage(s[i:])
	}
	switch p.Type {
	case sioEvent, sioBinaryEvent, sioAck, sioBinaryAck:
		if len(p.Data) == 0 || p.Data[0] != '[' {
			return p, fmt.Errorf("%w: a Socket.IO event or ack whose data is not an array", errBadPacket)
		}
	case sioConnect, sioConnectError:
		if len(p.Data) > 0 && p.Data[0] != '{' {
			return p, fmt.Errorf("%w: a Socket.IO connect packet whose data is not an object", errBadPacket)
		}
	}
	if (p.Type == sioAck || p.Type == sioBinaryAck) && p.ID == noAck {
		return p, fmt.Errorf("%w: a Socket.IO ack without an id", errBadPacket)
	}
	return p, nil
}

// encodeSIO writes a Socket.IO packet of the main namespace as an Engine.IO message ("4...").
func encodeSIO(typ byte, id int64, data []byte) string {
	var b strings.Builder
	b.Grow(3 + 20 + len(data))
	b.WriteByte(eioMessage)
	b.WriteByte(typ)
	if id != noAck {
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.Write(data)
	return b.String()
}

// eventArgs splits an event's data into its name and arguments.
func eventArgs(data json.RawMessage) (string, []json.RawMessage, error) {
	var args []json.RawMessage
	if err := json.Unmarshal(data, &args); err != nil {
		return "", nil, fmt.Errorf("%w: event data: %v", errBadPacket, err)
	}
	if len(args) == 0 {
		return "", nil, fmt.Errorf("%w: an event without a name", errBadPacket)
	}
	var name string
	if err := json.Unmarshal(args[0], &name); err != nil {
		return "", nil, fmt.Errorf("%w: an event whose name is not a string", errBadPacket)
	}
	return name, args[1:], nil
}
