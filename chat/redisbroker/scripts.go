package redisbroker

import "github.com/redis/go-redis/v9"

// Key layout (P is the prefix, "wl:" by default). Names of users and rooms hold no space (see
// chat.ValidName), so a space separates the parts of registry entries.
//
//	P node:N        string, with the node's heartbeat TTL: node N is alive
//	P nodes         set of every node that has run
//	P nx:N          set of the registry entries node N owns ("u USER SID", "r ROOM USER SID"),
//	                so that a dead node's entries can be reaped
//	P u:USER        hash SID -> owning node: the user's sessions on every node
//	P r:ROOM        hash "USER SID" -> owning node: the room's sessions
//	P ru:ROOM       hash USER -> number of the user's sessions in the room (presence)
//	P tn:TOPIC      counter: the last position published on TOPIC
//	P t:TOPIC       stream of TOPIC's messages, ids POS-0, trimmed to about TopicKeep
//	P p:TOPIC       pub/sub channel: "POS DATA"
//	P n:N           pub/sub channel of node N: "r SID" (another node claimed SID), "c ..." (a
//	                command forwarded to N), "a ..." (the answer to one N forwarded)
//	P s:SID         hash: user, node (the holder), seq (newest outbox seq), pos:TOPIC
//	P o:SID         stream: the outbox, ids SEQ-0, fields d (the envelope) and t (unix ns)
//	P sr:SID        set of the session's rooms
//	P c:SID         hash CID -> message id: commands already published

// publish: KEYS[1] = P c:SID (or P c:), then per topic P tn:T, P t:T. ARGV = cid, id, data,
// keep, ttl ms, then per topic its channel.
var publishScript = redis.NewScript(`
local cid = ARGV[1]
if cid ~= '' then
  local prev = redis.call('HGET', KEYS[1], cid)
  if prev then return prev end
end
local n = (#KEYS - 1) / 2
for i = 1, n do
  local pos = redis.call('INCR', KEYS[2*i])
  redis.call('XADD', KEYS[2*i+1], 'MAXLEN', '~', ARGV[4], pos .. '-0', 'd', ARGV[3])
  redis.call('PUBLISH', ARGV[5+i], pos .. ' ' .. ARGV[3])
end
if cid ~= '' then
  redis.call('HSET', KEYS[1], cid, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return ''
`)

// commit: per entry KEYS P s:SID, P o:SID; ARGV = node, now ns, outbox max, ttl ms, then per
// entry topic, pos, data. Returns per entry its seq, 0 (not held here) or -1 (already had it).
var commitScript = redis.NewScript(`
local res = {}
local n = #KEYS / 2
for i = 1, n do
  local sh, ob = KEYS[2*i-1], KEYS[2*i]
  local a = 4 + (i-1)*3
  local topic, pos = ARGV[a+1], tonumber(ARGV[a+2])
  local h = redis.call('HMGET', sh, 'node', 'pos:' .. topic)
  if h[1] ~= ARGV[1] then
    res[i] = 0
  elseif topic ~= '' and pos <= tonumber(h[2] or '0') then
    res[i] = -1
  else
    if topic ~= '' then redis.call('HSET', sh, 'pos:' .. topic, pos) end
    local seq = redis.call('HINCRBY', sh, 'seq', 1)
    redis.call('XADD', ob, 'MAXLEN', '~', ARGV[3], seq .. '-0', 'd', ARGV[a+3], 't', ARGV[2])
    -- a new outbox gets the session's time to live; Keep and claims renew it
    if seq == 1 or redis.call('PTTL', ob) < 0 then redis.call('PEXPIRE', ob, ARGV[4]) end
    res[i] = seq
  end
end
return res
`)

// create: KEYS P s:SID; ARGV user, node, ttl ms.
var createScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'node', ARGV[2], 'seq', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// setPos (helper inside scripts): record a session's position in a topic (it hears what comes
// after), or raise it to pos. Recorded even at 0, so that a claim knows to catch up from there.
const setPos = `
local function setpos(sh, topic, pos)
  local cur = redis.call('HGET', sh, 'pos:' .. topic)
  if not cur or tonumber(pos) > tonumber(cur) then redis.call('HSET', sh, 'pos:' .. topic, pos) end
end
`

// addSession: KEYS P u:USER, P nx:NODE, P s:SID; ARGV user, sid, node, pos of user:USER.
var addSessionScript = redis.NewScript(setPos + `
if redis.call('HGET', KEYS[3], 'node') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[2], 'u ' .. ARGV[1] .. ' ' .. ARGV[2])
setpos(KEYS[3], 'user:' .. ARGV[1], ARGV[4])
return 1
`)

// removeSession: KEYS P u:USER, P nx:NODE; ARGV user, sid, node.
var removeSessionScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[2], 'u ' .. ARGV[1] .. ' ' .. ARGV[2])
return 1
`)

// roomJoin: KEYS P r:ROOM, P ru:ROOM, P sr:SID, P nx:NODE, P s:SID, P o:SID; ARGV room, user,
// sid, node, pos of room:ROOM, ttl ms, presence limit, now ns, outbox max. Returns {first,
// seq, data}: first is 1 if it is the user's first session in the room, 0 if not, -1 if the
// session is not held here; when the session was not in the room yet and the room has at
// most the presence limit of users, the member list is queued in the outbox in the same step
// (seq and data), so that a join and its member list never come apart, whatever node the
// session moves to.
var roomJoinScript = redis.NewScript(setPos + `
if redis.call('HGET', KEYS[5], 'node') ~= ARGV[4] then return {-1, 0, ''} end
local f = ARGV[2] .. ' ' .. ARGV[3]
local had = redis.call('HEXISTS', KEYS[1], f)
redis.call('HSET', KEYS[1], f, ARGV[4])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
redis.call('SADD', KEYS[4], 'r ' .. ARGV[1] .. ' ' .. f)
setpos(KEYS[5], 'room:' .. ARGV[1], ARGV[5])
if had == 1 then return {0, 0, ''} end
local first = 0
if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then first = 1 end
if redis.call('HLEN', KEYS[2]) > tonumber(ARGV[7]) then return {first, 0, ''} end
local users = redis.call('HKEYS', KEYS[2])
table.sort(users)
-- names are chat.ValidName: nothing in them needs escaping
local data = '{"type":"presence","room":"' .. ARGV[1] .. '","members":["' .. table.concat(users, '","') .. '"]}'
local seq = redis.call('HINCRBY', KEYS[5], 'seq', 1)
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[9], seq .. '-0', 'd', data, 't', ARGV[8])
redis.call('PEXPIRE', KEYS[6], ARGV[6])
return {first, seq, data}
`)

// roomLeave: KEYS P r:ROOM, P ru:ROOM, P sr:SID, P nx:NODE, P s:SID; ARGV room, user, sid,
// node. Returns 1 if it was the user's last session in the room.
var roomLeaveScript = redis.NewScript(`
local f = ARGV[2] .. ' ' .. ARGV[3]
if redis.call('HGET', KEYS[1], f) ~= ARGV[4] then return 0 end
redis.call('HDEL', KEYS[1], f)
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], 'r ' .. ARGV[1] .. ' ' .. f)
redis.call('HDEL', KEYS[5], 'pos:room:' .. ARGV[1])
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  return 1
end
return 0
`)

// claim: KEYS P s:SID, P o:SID, P sr:SID, P c:SID; ARGV sid, node, user (or empty), ttl ms,
// prefix. Returns false if there is no such session, else {hash, outbox, rooms, rejoined
// rooms, previous node}.
var claimScript = redis.NewScript(`
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i+1] end
if ARGV[3] ~= '' and f['user'] ~= ARGV[3] then return false end
local sid, me, P, U = ARGV[1], ARGV[2], ARGV[5], f['user']
local old = f['node'] or ''
local rooms = redis.call('SMEMBERS', KEYS[3])
local rejoined = {}
do
  redis.call('HSET', KEYS[1], 'node', me)
  redis.call('HSET', P .. 'u:' .. U, sid, me)
  local ue = 'u ' .. U .. ' ' .. sid
  if old ~= '' and old ~= me then redis.call('SREM', P .. 'nx:' .. old, ue) end
  redis.call('SADD', P .. 'nx:' .. me, ue)
  for _, r in ipairs(rooms) do
    local rf = U .. ' ' .. sid
    local re = 'r ' .. r .. ' ' .. rf
    local had = redis.call('HGET', P .. 'r:' .. r, rf)
    redis.call('HSET', P .. 'r:' .. r, rf, me)
    if old ~= '' and old ~= me then redis.call('SREM', P .. 'nx:' .. old, re) end
    redis.call('SADD', P .. 'nx:' .. me, re)
    if not had then
      if redis.call('HINCRBY', P .. 'ru:' .. r, U, 1) == 1 then table.insert(rejoined, r) end
    end
  end
  if old ~= '' and old ~= me then redis.call('PUBLISH', P .. 'n:' .. old, 'r ' .. sid) end
end
for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ARGV[4]) end
local out = redis.call('XRANGE', KEYS[2], '-', '+')
return {h, out, rooms, rejoined, old}
`)

// keep: KEYS every key of the sessions; ARGV ttl ms, node; KEYS come in fours, the first the
// session hash: only sessions held by node are refreshed.
var keepScript = redis.NewScript(`
for i = 1, #KEYS, 4 do
  if redis.call('HGET', KEYS[i], 'node') == ARGV[2] then
    for j = i, i + 3 do redis.call('PEXPIRE', KEYS[j], ARGV[1]) end
  end
end
return 1
`)

// drop: KEYS P s:SID, P o:SID, P sr:SID, P c:SID; ARGV node.
var dropScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return 1
`)

// reap: KEYS P node:DEAD, P nx:DEAD, P nodes; ARGV dead node, prefix. Removes the registry
// entries of a node whose heartbeat expired and returns {room, user, ...} for every user that
// left a room with it.
var reapScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return {} end
local dead, P = ARGV[1], ARGV[2]
local left = {}
for _, e in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local p = {}
  for w in string.gmatch(e, '%S+') do table.insert(p, w) end
  if p[1] == 'u' then
    if redis.call('HGET', P .. 'u:' .. p[2], p[3]) == dead then redis.call('HDEL', P .. 'u:' .. p[2], p[3]) end
  elseif p[1] == 'r' then
    local rf = p[3] .. ' ' .. p[4]
    if redis.call('HGET', P .. 'r:' .. p[2], rf) == dead then
      redis.call('HDEL', P .. 'r:' .. p[2], rf)
      if redis.call('HINCRBY', P .. 'ru:' .. p[2], p[3], -1) <= 0 then
        redis.call('HDEL', P .. 'ru:' .. p[2], p[3])
        table.insert(left, p[2])
        table.insert(left, p[3])
      end
    end
  end
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], dead)
return left
`)
