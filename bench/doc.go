// Package bench holds the fan-out benchmarks (make bench-fanout): one room of 1,000 sessions
// on one transport, over real loopback sockets, with the chat server in its own process pinned
// to CPU 1 and the load generator (this process) pinned to CPU 0.
//
// The server process is this test binary run again with WIRELAB_FANOUT_SERVER=1: it runs
// server.New with the defaults `lab serve` uses and serves until its stdin closes. Its CPU time
// (utime+stime) and memory (RSS) come from /proc/PID.
//
// The subscribers are lean clients written here, one per transport: they speak the real
// protocol (the WebSocket handshake and frames, the HTTP endpoints, resume with after=N,
// answering pings) but only count envelopes and check their seqs, so that the load generator's
// single core keeps up. The publisher is an HTTP session posting say commands to
// /api/send from a few workers, the same for every transport, so the fan-out side is what
// differs.
//
// Debugging aids (environment variables): FANOUT_DEBUG=1 prints the publisher's waits, stalls
// with the slowest subscribers, and why subscribers came up short;
// WIRELAB_FANOUT_SERVER_PROFILE=FILE writes the server process's CPU profile;
// WIRELAB_FANOUT_SERVER_MEM=FILE makes it write its heap profile (and print MemStats) once the
// subscribers are connected. Results and the commands that made them: RESULTS.md.
//
// It is tests only: they import server (the server process) and transports/all (the names);
// its lean clients are its own, not the transports' (never lab, netem or results). Nothing
// imports it.
package bench
