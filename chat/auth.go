package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Signer makes and checks user tokens: "USER.EXPIRY.MAC" where MAC is HMAC-SHA256 of
// "USER.EXPIRY" under the server's secret, base64url without padding, and EXPIRY is unix seconds.
// A server with a secret accepts a user id only with a valid, unexpired token for it.
type Signer struct {
	secret []byte
}

// NewSigner returns a signer for secret; an empty secret means an open server (nil Signer).
func NewSigner(secret string) *Signer {
	if secret == "" {
		return nil
	}
	return &Signer{secret: []byte(secret)}
}

// Token returns a token for user valid for ttl.
func (s *Signer) Token(user string, ttl time.Duration, now time.Time) string {
	body := user + "." + strconv.FormatInt(now.Add(ttl).Unix(), 10)
	return body + "." + s.mac(body)
}

func (s *Signer) mac(body string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks that token is a valid token for user at time now. A nil Signer accepts anything.
func (s *Signer) Verify(user, token string, now time.Time) error {
	if s == nil {
		return nil
	}
	if token == "" {
		return Errorf(CodeUnauthorized, "this server needs a token for user %q (get one with: lab token %s)", Clip(user), Clip(user))
	}
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return Errorf(CodeUnauthorized, "token is malformed")
	}
	body, mac := token[:i], token[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.mac(body))) {
		return Errorf(CodeUnauthorized, "token signature is not valid")
	}
	j := strings.LastIndexByte(body, '.')
	if j < 0 || body[:j] != user {
		return Errorf(CodeUnauthorized, "token is for another user")
	}
	exp, err := strconv.ParseInt(body[j+1:], 10, 64)
	if err != nil {
		return Errorf(CodeUnauthorized, "token is malformed")
	}
	if now.Unix() > exp {
		return Errorf(CodeUnauthorized, "token expired at %s; get a new one", time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return nil
}
