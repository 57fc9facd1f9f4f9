// Package lab runs scenarios: for every transport × link point it builds a fresh emulated network
// (netem: gVisor hosts, or Linux network namespaces for stack: kernel), starts the chat server (a
// `lab lab-server` child process, or in-process), connects the simulated sessions with the
// transports' own Go clients, drives the open-loop schedule, and audits every copy: lost,
// duplicated, out of order, latency, stalls and what caused them (the wire tap and netem's drop
// trace for TCP, quic-go's loss traces for QUIC, system stalls for the machine), and the lab's and
// the server's own health. The point's sessions go to results' bootstrap for the intervals.
//
// It also assembles the teaching demo (demo.go, `lab demo`): the server on an emulated host with
// web's page, reached through a relay, its link changed live by the page's sliders.
//
// It sits above everything it measures (chat, netem, server, transports, results, scenarios,
// and web for the demo's page) and only cmd/lab imports it (web's browser tests too, to run the
// demo). How each figure is computed: docs/METRICS.md.
package lab
