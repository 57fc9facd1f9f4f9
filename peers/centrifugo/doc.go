// Package centrifugo is the Centrifugo peer: the real Centrifugo server (v6.9.1, built from its Go
// module) run behind the lab's network as a chat application would configure it, and chat
// clients that speak its protocol, so its transports are measured beside wirelab's own.
//
// # What it owns
//
//   - Installing the pinned server (install.go): Ensure builds it with `go install` into a cache
//     directory on first use (DefaultCacheDir, $WIRELAB_PEERS_CACHE); Lookup finds it.
//   - The server's configuration (config.go): WriteConfig and Install.Command write a v6 JSON
//     config into a temporary directory: HTTP on one TCP port (no UDP), connections
//     authenticated by HS256 tokens the lab signs itself (Config.Token; sub is the user), and
//     two namespaces: "room" (room:NAME; members subscribe and publish) and "dm" (dm:#USER, a
//     user-limited channel only USER may subscribe to and any user may publish into). Both keep
//     HistorySize publications for HistoryTTL with force_recovery on, and a recovery may bring
//     back the whole history. Presence is off, so who answers a chat error "unsupported".
//     WaitReady polls GET /health through the caller's dial function.
//   - The clients (client.go, client_ws.go, emulation.go, frames.go), one transports.Client per
//     transport: WebSocket through centrifuge-go v0.12.1, the official Go client; SSE and HTTP
//     streaming through Centrifugo's bidirectional emulation (the stream down, POST /emulation
//     up), with this package's own small client since Centrifugo has no Go one. A join
//     subscribes to the room's channel, a leave unsubscribes, a say publishes into the room,
//     a dm publishes into the recipient's channel and then into the sender's own (so every
//     tab of both sees it); Send returns ok once Centrifugo has acknowledged every publish.
//     Every session subscribes to its user's dm channel and room:lobby on Connect.
//
// # Reconnects and recovery
//
// A broken connection is reconnected with the clients' backoff (200 ms doubling to 20 s,
// jittered) and every channel subscribed again with its epoch and offset: Centrifugo's own
// recovery. Nothing is sent again or deduplicated beyond that: a publish whose connection broke
// before its answer fails (Send returns the error), and a recovery Centrifugo reports as failed
// (was_recovering without recovered) comes out of Messages as a chat error with code gap.
// Delivered messages carry no seq: Centrifugo's offsets are per channel, not per session.
//
// # No centrifugo/webtransport
//
// Tried with v6.9.1 (http_server.tls with a self-signed certificate, http_server.http3 and
// webtransport enabled; it logs "serving ... webtransport ... with HTTP/3 (experimental)"): every
// QUIC handshake fails with CRYPTO_ERROR 0x178, "server did not select an ALPN protocol". Its
// TLS config (configtypes.TLSConfig.ToGoTLSConfig) has no NextProtos, and webtransport-go
// v0.11.1's Server.Serve hands it to quic.ListenEarly as it is, without adding "h3" as
// http3.Server would; a browser offers h3 too, so this is the server's, not our client's. The
// stream itself would be one bidirectional stream of the same JSON lines this package parses.
//
// # Goroutines
//
// centrifuge-go runs its own (a reader, a callback queue, and one per command for its 5 s read
// timeout, which outlives the answer); WSClient.Close stops the client, and those per-command
// goroutines end within the timeout. EmuClient runs one goroutine for its connections and one per
// command posted without a waiting Send (a pong, a resubscribe); Close waits for them all.
// Handlers that deliver wait while Messages is full, which holds up the connection's reader.
//
// It imports chat (the envelope types) and transports (Client, Options) only: never lab, results,
// netem, server or web.
package centrifugo
