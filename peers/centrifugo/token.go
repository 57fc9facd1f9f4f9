package centrifugo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// signHS256 makes the connection token a chat application's backend would hand its page: a
// JWT signed with HMAC-SHA256 whose sub claim is the user. It has no exp, so the connection
// never needs a refresh during a run.
func signHS256(secret []byte, user string) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(struct { // a struct of strings always encodes
		Sub string `json:"sub"`
	}{user})
	msg := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}
