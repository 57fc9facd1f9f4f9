"use strict";
// wirelab's Socket.IO peer: a chat server as a Socket.IO application would write it, so that
// the lab can measure Socket.IO under the same lossy link as wirelab's own transports.
// peers/socketio embeds this file and writes it into the install dir beside node_modules.
//
//   node server.js [--host H] [--port P]      (or WIRELAB_PEER_HOST, WIRELAB_PEER_PORT)
//
// It prints one line, "ready PORT", on stdout once it listens (port 0 picks a free one); errors
// go to stderr. SIGTERM and SIGINT close it.
//
// Protocol (Socket.IO v5 on Engine.IO v4, path /socket.io/, polling and websocket):
//   handshake auth {user}: the user name (as wirelab's names: [A-Za-z0-9_.-]{1,64});
//   every socket is in room "lobby" and in its user's private room "user:USER";
//   client events, each with an ack {ok: true} or {error: {code, message}} (wirelab's codes):
//     "join" {room}, "leave" {room}, "say" {room, text}, "dm" {to, text},
//     "who" {room} (ack {ok: true, members: [USER...]}, for members of the room);
//   server event "msg" {room, from, text} (a room message) or {to, from, text} (a DM, sent to
//   every tab of "to" and every tab of the sender, the sending tab included).
// connectionStateRecovery is on: every broadcast carries its offset as its last argument, and a
// client that reconnects within two minutes with auth {pid, offset} gets what it missed.

const http = require("http");
const { Server } = require("socket.io");

function option(flag, env, dflt) {
  const i = process.argv.indexOf(flag);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (process.env[env]) return process.env[env];
  return dflt;
}

const host = option("--host", "WIRELAB_PEER_HOST", "127.0.0.1");
const port = Number(option("--port", "WIRELAB_PEER_PORT", "0"));
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`socket.io peer: port ${JSON.stringify(option("--port", "WIRELAB_PEER_PORT", ""))} is not a port number (0-65535)`);
  process.exit(2);
}

const NAME = /^[A-Za-z0-9_.\-]{1,64}$/; // wirelab's rule for user and room names
const LOBBY = "lobby";
const MAX_TEXT = 64 << 10; // wirelab's default limit, in bytes
const MAX_ROOMS = 100; // rooms a socket may join besides lobby and its own

const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
  res.end("socket.io peer: Socket.IO is at /socket.io/\n");
});

const io = new Server(httpServer, {
  path: "/socket.io/",
  serveClient: false,
  transports: ["polling", "websocket"],
  connectionStateRecovery: {
    maxDisconnectionDuration: 2 * 60 * 1000,
    skipMiddlewares: true,
  },
});

io.use((socket, next) => {
  const user = socket.handshake.auth && socket.handshake.auth.user;
  if (typeof user !== "string" || !NAME.test(user)) {
    const err = new Error("bad_user: auth.user must be 1-64 of A-Z a-z 0-9 _ . -");
    err.data = { code: "bad_user" };
    return next(err);
  }
  socket.data.user = user;
  next();
});

function fail(ack, code, message) {
  ack({ error: { code, message } });
}

// handle registers an event whose handler returns an error [code, message] or an answer.
function handle(socket, event, fn) {
  socket.on(event, (payload, ack) => {
    if (typeof ack !== "function") return; // every command here is acknowledged
    if (payload === null || typeof payload !== "object") {
      return fail(ack, "bad_json", `${event} takes an object`);
    }
    const r = fn(payload);
    if (Array.isArray(r)) return fail(ack, r[0], r[1]);
    ack(Object.assign({ ok: true }, r));
  });
}

function roomOf(p) {
  if (typeof p.room !== "string" || p.room === "") return ["missing_field", "room is required"];
  if (!NAME.test(p.room)) return ["bad_room", `room ${JSON.stringify(p.room)}: 1-64 of A-Z a-z 0-9 _ . -`];
  return null;
}

function textOf(p) {
  if (typeof p.text !== "string" || p.text === "") return ["missing_field", "text is required"];
  if (Buffer.byteLength(p.text) > MAX_TEXT) return ["text_too_long", `text is over ${MAX_TEXT} bytes`];
  return null;
}

function joined(socket) {
  let n = 0;
  for (const r of socket.rooms) if (r !== socket.id && r !== LOBBY && !r.startsWith("user:")) n++;
  return n;
}

io.on("connection", (socket) => {
  const user = socket.data.user; // restored with the session on a recovery
  socket.join([LOBBY, "user:" + user]);

  handle(socket, "join", (p) => {
    const bad = roomOf(p);
    if (bad) return bad;
    if (!socket.rooms.has(p.room) && joined(socket) >= MAX_ROOMS) {
      return ["too_many_rooms", `a session joins at most ${MAX_ROOMS} rooms`];
    }
    socket.join(p.room);
    return {};
  });

  handle(socket, "leave", (p) => {
    const bad = roomOf(p);
    if (bad) return bad;
    if (p.room === LOBBY) return ["bad_room", "every session stays in lobby"];
    socket.leave(p.room); // leaving a room the socket is not in is a no-op, answered ok
    return {};
  });

  handle(socket, "say", (p) => {
    const bad = roomOf(p) || textOf(p);
    if (bad) return bad;
    if (!socket.rooms.has(p.room)) return ["not_member", `this session is not in room ${JSON.stringify(p.room)}; join it first`];
    io.to(p.room).emit("msg", { room: p.room, from: user, text: p.text });
    return {};
  });

  handle(socket, "dm", (p) => {
    if (typeof p.to !== "string" || p.to === "") return ["missing_field", "to is required"];
    if (!NAME.test(p.to)) return ["bad_user", `user ${JSON.stringify(p.to)}: 1-64 of A-Z a-z 0-9 _ . -`];
    const bad = textOf(p);
    if (bad) return bad;
    const tabs = io.of("/").adapter.rooms.get("user:" + p.to);
    if (!tabs || tabs.size === 0) return ["unknown_user", `user ${JSON.stringify(p.to)} has no open session`];
    // Every tab of the recipient and every tab of the sender (the sending one too) get one copy:
    // a socket in both rooms gets it once.
    io.to(["user:" + p.to, "user:" + user]).emit("msg", { to: p.to, from: user, text: p.text });
    return {};
  });

  handle(socket, "who", (p) => {
    const bad = roomOf(p);
    if (bad) return bad;
    if (p.room !== LOBBY && !socket.rooms.has(p.room)) {
      return ["not_member", `this session is not in room ${JSON.stringify(p.room)}; join it to see its members`];
    }
    const nsp = io.of("/");
    const users = new Set();
    for (const id of nsp.adapter.rooms.get(p.room) || []) {
      const s = nsp.sockets.get(id);
      if (s) users.add(s.data.user);
    }
    return { members: [...users].sort() };
  });
});

httpServer.on("error", (err) => {
  console.error(`socket.io peer: ${err.message}`);
  process.exit(1);
});

httpServer.listen(port, host, () => {
  process.stdout.write(`ready ${httpServer.address().port}\n`);
});

function shutdown() {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
