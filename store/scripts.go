package store

import "github.com/redis/go-redis/v9"

// Every script starts with a comment listing its KEYS, ARGV and return
// values. Scripts never read the clock ("now" is an argument) and never
// build a key name: every key they touch is in KEYS, and all of a script's
// keys share one hash tag.

// luaIMAC is shared by the scripts that reserve an IMAC slot.
//
// reserve_imac(counters, quota, per_visit, policy, candidates) picks a date
// from candidates (YYYY-MM-DD, in order), counts it and returns the JSON
// members to add to the ticket (each starting with a comma), or nil when no
// candidate fits. Policies:
//   - next_month: the first candidate whose month is under quota and whose
//     day is under the per-visit capacity;
//   - billable: the first candidate with day capacity; billable when its
//     month is at or over quota;
//   - force: the first candidate regardless of capacity (staff chose the
//     date); billable when its month is at or over quota.
//
// A quota or per-visit of 0 means unlimited. imac_deferred is set when the
// chosen month differs from the first candidate's.
//
// release_imac(counters, date) un-counts a reservation and returns the
// counter fields it decremented.
const luaIMAC = `
local function count(counters, field)
  return tonumber(redis.call('HGET', counters, field) or '0')
end

local function reserve_imac(counters, quota, per, policy, cands)
  local chosen, billable
  for _, d in ipairs(cands) do
    local month = string.sub(d, 1, 7)
    local full = quota > 0 and count(counters, month) >= quota
    if policy == 'force' then
      chosen, billable = d, full
      break
    end
    if per == 0 or count(counters, d) < per then
      if not full then
        chosen, billable = d, false
        break
      end
      if policy == 'billable' then
        chosen, billable = d, true
        break
      end
    end
  end
  if not chosen then
    return nil
  end
  local month = string.sub(chosen, 1, 7)
  local used = redis.call('HINCRBY', counters, month, 1)
  redis.call('HINCRBY', counters, chosen, 1)
  local f = ',"imac_date":"' .. chosen .. '","imac_quota_used":' .. used
  if quota > 0 then
    f = f .. ',"imac_quota":' .. quota
  end
  if billable then
    f = f .. ',"billable":true'
  end
  if month ~= string.sub(cands[1], 1, 7) then
    f = f .. ',"imac_deferred":true'
  end
  return f
end

local function release_imac(counters, date)
  local done = {}
  if date == '' then
    return done
  end
  for _, field in ipairs({date, string.sub(date, 1, 7)}) do
    if count(counters, field) > 0 then
      redis.call('HINCRBY', counters, field, -1)
      done[#done + 1] = field
    end
  end
  return done
end
`

// createScript creates a ticket.
var createScript = redis.NewScript(`
-- KEYS[1] P{c:C}:seq      ticket counter
-- KEYS[2] P{c:C}:tickets  ticket id -> ticket JSON
-- KEYS[3] P{c:C}:events   ticket id -> event JSON lines
-- KEYS[4] P{c:C}:dedup    dedup key -> ticket id
-- KEYS[5] P{c:C}:timers   "<id>|<kind>" scored by due ms
-- KEYS[6] P{c:C}:imac     IMAC counters ("2026-12", "2026-12-08")
-- ARGV[1] dedup key
-- ARGV[2] ticket prefix (validated: letters, digits, '_', '-')
-- ARGV[3] ticket JSON members, without braces, id and IMAC fields (may be empty)
-- ARGV[4] opened event JSON (one line)
-- ARGV[5] '1' to reserve an IMAC slot, else ''
-- ARGV[6] monthly quota, ARGV[7] per visit (0: unlimited), ARGV[8] policy
-- ARGV[9] T = number of timers, ARGV[10] N = number of IMAC candidates
-- ARGV[11 .. 10+2T] timer kind, due ms pairs; then N candidate dates
-- Returns {'1', id, ticket JSON, IMAC members} when created (the members the
-- script added to ARGV[3] besides the id: a caller that has the rest need not
-- decode it all), {'0', id, ticket JSON} when the dedup key was already used
-- (nothing changed); error "no imac slot ..." when no candidate fits.
` + luaIMAC + `
local existing = redis.call('HGET', KEYS[4], ARGV[1])
if existing then
  return {'0', existing, redis.call('HGET', KEYS[2], existing) or ''}
end

local nt = tonumber(ARGV[9])
local nc = tonumber(ARGV[10])
local imac = ''
if ARGV[5] == '1' then
  local cands = {}
  for i = 1, nc do
    cands[i] = ARGV[10 + 2 * nt + i]
  end
  imac = reserve_imac(KEYS[6], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], cands)
  if not imac then
    return redis.error_reply('no imac slot among ' .. nc .. ' candidates')
  end
end

local n = redis.call('INCR', KEYS[1])
local id = ARGV[2] .. '-' .. string.format('%04d', n)
while redis.call('HEXISTS', KEYS[2], id) == 1 do
  n = redis.call('INCR', KEYS[1])
  id = ARGV[2] .. '-' .. string.format('%04d', n)
end

local json = '{"id":"' .. id .. '"' .. imac
if ARGV[3] ~= '' then
  json = json .. ',' .. ARGV[3]
end
json = json .. '}'

redis.call('HSET', KEYS[2], id, json)
redis.call('HSET', KEYS[3], id, ARGV[4] .. '\n')
for i = 1, nt do
  local kind = ARGV[9 + 2 * i]
  local due = ARGV[10 + 2 * i]
  redis.call('ZADD', KEYS[5], due, id .. '|' .. kind)
end
redis.call('HSET', KEYS[4], ARGV[1], id)
return {'1', id, json, imac}
`)

// updateScript changes a ticket if it is still as the caller read it.
var updateScript = redis.NewScript(`
-- KEYS[1] P{c:C}:tickets       ticket id -> ticket JSON
-- KEYS[2] P{c:C}:events        ticket id -> event JSON lines
-- KEYS[3] P{c:C}:dedup         dedup key -> ticket id
-- KEYS[4] P{c:C}:timers        "<id>|<kind>" scored by due ms
-- KEYS[5] P{c:C}:timers:leased claimed timers scored by lease expiry ms
-- KEYS[6] P{c:C}:timers:due    claimed timer -> due ms
-- KEYS[7] P{c:C}:imac          IMAC counters
-- ARGV[1] ticket id
-- ARGV[2] sha1 hex of the ticket JSON the change was computed from
-- ARGV[3] new ticket JSON (without IMAC fields when ARGV[7] is 'reserve')
-- ARGV[4] event JSON line, or '' for none
-- ARGV[5] dedup key, or '' for none
-- ARGV[6] the ticket's current IMAC date, or ''
-- ARGV[7] IMAC: '' unchanged, 'release', or 'reserve' (release, then reserve)
-- ARGV[8] monthly quota, ARGV[9] per visit, ARGV[10] policy (for 'reserve')
-- ARGV[11] C = timer kinds to cancel, ARGV[12] T = timers to set,
-- ARGV[13] N = IMAC candidates; then C kinds, T (kind, due ms) pairs, N dates
-- Returns {'1', ticket JSON} when applied; {'0', ticket JSON} when the dedup
-- key was already used (nothing changed); {'-1'} when the ticket changed since
-- it was read (read again and retry); {'-2'} when there is no such ticket;
-- error "no imac slot ..." when no candidate fits.
` + luaIMAC + `
local id = ARGV[1]
local cur = redis.call('HGET', KEYS[1], id)
if not cur then
  return {'-2'}
end
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[5]) == 1 then
  return {'0', cur}
end
if redis.sha1hex(cur) ~= ARGV[2] then
  return {'-1'}
end

local json = ARGV[3]
local nk = tonumber(ARGV[11])
local nt = tonumber(ARGV[12])
local nc = tonumber(ARGV[13])
local released = {}
if ARGV[7] == 'release' or ARGV[7] == 'reserve' then
  released = release_imac(KEYS[7], ARGV[6])
end
if ARGV[7] == 'reserve' then
  local cands = {}
  for i = 1, nc do
    cands[i] = ARGV[13 + nk + 2 * nt + i]
  end
  local f = reserve_imac(KEYS[7], tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10], cands)
  if not f then
    -- undo the release: nothing of this change may be applied
    for _, field in ipairs(released) do
      redis.call('HINCRBY', KEYS[7], field, 1)
    end
    return redis.error_reply('no imac slot among ' .. nc .. ' candidates')
  end
  json = '{' .. string.sub(f, 2) .. ',' .. string.sub(json, 2)
end

for i = 1, nk do
  local m = id .. '|' .. ARGV[13 + i]
  redis.call('ZREM', KEYS[4], m)
  redis.call('ZREM', KEYS[5], m)
  redis.call('HDEL', KEYS[6], m)
end
for i = 1, nt do
  local m = id .. '|' .. ARGV[12 + nk + 2 * i]
  redis.call('ZADD', KEYS[4], ARGV[13 + nk + 2 * i], m)
  redis.call('ZREM', KEYS[5], m)
  redis.call('HDEL', KEYS[6], m)
end

redis.call('HSET', KEYS[1], id, json)
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], id, (redis.call('HGET', KEYS[2], id) or '') .. ARGV[4] .. '\n')
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[5], id)
end
return {'1', json}
`)
