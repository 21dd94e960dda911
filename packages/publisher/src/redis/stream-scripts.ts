import { LUA_NOW_MS, RedisScript } from './redis-script';

/**
 * How far a stream's offsets skip when a promoted replica appends to it for the
 * first time. With asynchronous replication the old master may have acknowledged
 * events the replica never received; readers and sessions may hold their cursors.
 * Skipping keeps those offsets from ever naming other events: a cursor from before
 * the failover resumes with `gap`, and a live session that sees the skip is told
 * to resume (and hears `gap`). Costs a `gap` for those sessions even when nothing
 * was lost: the promoted replica cannot tell.
 */
export const FAILOVER_OFFSET_SKIP = 1_000_000;

/**
 * Publishers whose last batch a user's meta remembers (`p:<publisher id>` fields),
 * so a batch retried after its reply was lost is not stored twice. The oldest
 * record goes when a new publisher appends past it.
 */
export const MAX_PUBLISHER_RECORDS = 16;

/**
 * Most users one `appendMany` call carries, and most bytes of event JSON (a user's
 * batch larger than that goes alone): one call runs without a break on Redis, so it
 * is kept to about a millisecond of its time.
 */
export const MAX_USERS_PER_CALL = 128;
export const MAX_EVENT_BYTES_PER_CALL = 128 * 1024;

/** The reply of a fenced append refused: the error text starts with it. */
export const FENCED_REPLY = 'FENCED';

/** The error of a stale batch (see {@link APPEND_MANY_FLAGS} `stale`): its text starts with it. */
export const STALE_REPLY = 'STALE';

/** The last item of each user's result in an `appendMany` reply. */
export const APPEND_MANY_FLAGS = {
  /** Appended: epoch, first offset, ts. */
  stored: 0,
  /** The meta records the batch as appended already: nothing stored again; its first offset and ts. */
  duplicate: 1,
  /** The fence's lease holds another value: nothing stored (the others of the call are). */
  fenced: 2,
  /** A Redis error for this user (its text instead of the epoch): nothing more stored for it. */
  error: 3,
  /**
   * An older batch number than the publisher's last one the meta records (a late copy of a
   * given-up attempt whose retry was stored): nothing stored; the text instead of the epoch.
   */
  stale: 4,
} as const;

/**
 * Helpers of the stream scripts. Everything that touches a user's stream runs in
 * one of the scripts below, so each step is atomic on the shard that owns the
 * user's slot.
 *
 * Stream entries: id `<offset>-0` (so XRANGE by offset is exact), fields `t`
 * (ms, Redis TIME) and `d` (the stored event JSON, as sent to subscribers).
 * Meta hash: `e` epoch, `o` last offset, `b` sum of `#d` over retained entries,
 * `w` replication id of the master that appended last (see {@link FAILOVER_OFFSET_SKIP}),
 * `f` and `g` the `t` and offset of the oldest retained entry, or lower bounds of
 * them (so an append that needs no trim reads no entry: the count is at most `o - g + 1`;
 * absent in metas written before them), `x` when an append last set the key expiries
 * (they are set again once that is half the stream's expiry margin old, not on every
 * append: see `STREAM_EXPIRY_MARGIN_MS`), `p:<publisher id>` "<batch seq> <first offset> <ts>" of
 * that publisher's last batch appended (see {@link MAX_PUBLISHER_RECORDS}).
 */
const STREAM_LUA_PRELUDE = `${LUA_NOW_MS}
local call, tonumber, fmt, sub, byte, match, unpack = redis.call, tonumber, string.format, string.sub, string.byte, string.match, unpack
local function offset_of(id)
  return tonumber(string.match(id, '^(%d+)'))
end

-- The user's epoch and last offset. A missing meta (first use, expiry, FLUSHALL,
-- eviction) starts a new epoch: cursors of the old one can never match it, so they
-- answer gap. A stream left over from the lost epoch is dropped with it.
local function ensure_meta(stream, meta, candidate)
  local m = redis.call('HMGET', meta, 'e', 'o')
  if m[1] then return m[1], tonumber(m[2] or '0') end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', candidate, 'o', 0, 'b', 0)
  return candidate, 0
end

-- Keeps at most MAX_PUBLISHER_RECORDS publishers' records in the meta: before a new
-- one is added, the one with the oldest append goes (its publisher, long gone as a
-- rule, loses only the dedup of a retry it would still make). 7 other fields: e o b w f g x.
local function make_room_for_record(meta)
  if redis.call('HLEN', meta) < ${MAX_PUBLISHER_RECORDS} + 7 then return end
  local all = redis.call('HGETALL', meta)
  local oldest, oldest_ts = nil, nil
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'p:' then
      local ts = tonumber(string.match(all[i + 1], '(%d+)$') or '0')
      if not oldest_ts or ts < oldest_ts then oldest, oldest_ts = all[i], ts end
    end
  end
  if oldest then redis.call('HDEL', meta, oldest) end
end

-- This node's replication id, and whether it has taken over from another master
-- since it started (a promoted replica: master_replid2 names the history it
-- continued; a master that merely restarted has none). Read once per script call:
-- every user of a call is on this node.
local replication_id, replication_promoted = nil, nil
local function replication()
  if replication_id == nil then
    local info = redis.call('INFO', 'replication')
    local previous = string.match(info, 'master_replid2:(%w+)')
    replication_id = string.match(info, 'master_replid:(%w+)')
    replication_promoted = previous ~= nil and string.match(previous, '^0+$') == nil
  end
  return replication_id, replication_promoted
end

-- The time of this call and its digits (TIME once per call: every user of a call gets the same ts).
local call_now, call_now_s = nil, nil
local function now_of_call()
  if call_now == nil then
    call_now = now_ms()
    call_now_s = fmt('%d', call_now)
  end
  return call_now, call_now_s
end

-- Drops the oldest entries while the stream is over its count, age or byte
-- bound, keeping the byte count exact by subtracting the size of every entry
-- dropped; returns it and the ts and offset of the oldest entry kept (nil: none
-- kept, and the stream is deleted, so the next append sees it gone). Most appends
-- drop nothing or one entry, so the first read asks for only as many entries as
-- the count bound says must go (at least 1: the oldest, for its age), not for a
-- whole batch. len: the exact count.
local function trim(stream, len, bytes, max_events, min_ts, max_bytes)
  local last = nil
  local kept, kept_offset = nil, nil
  local start = '-'
  local count = math.min(64, math.max(1, len - max_events))
  while len > 0 do
    local batch = redis.call('XRANGE', stream, start, '+', 'COUNT', count)
    if #batch == 0 then break end
    local over = true
    for _, entry in ipairs(batch) do
      local f = entry[2]
      local t, d = tonumber(f[2]), f[4]
      if len > max_events or bytes > max_bytes or t < min_ts then
        len = len - 1
        bytes = bytes - #d
        last = offset_of(entry[1])
      else
        kept, kept_offset = t, offset_of(entry[1])
        over = false
        break
      end
    end
    if not over then break end
    start = '(' .. last
    count = 64
  end
  if kept == nil then
    redis.call('DEL', stream)
    return 0, nil, nil
  end
  if last then call('XTRIM', stream, 'MINID', fmt('%d', last + 1)) end
  return bytes, kept, kept_offset
end

-- What every user of a call shares, worked out once per call rather than per user:
-- the 'p:<publisher id>' field, and the expiry renewal's half margin of these retention
-- arguments (appendMany passes one r table for all its users).
local record_field_publisher, record_field_name = nil, nil
local function record_field_of(publisher)
  if publisher ~= record_field_publisher then
    record_field_publisher, record_field_name = publisher, 'p:' .. publisher
  end
  return record_field_name
end
local half_margin_r, half_margin = nil, nil
local function half_margin_of(r)
  if r ~= half_margin_r then half_margin_r, half_margin = r, (tonumber(r[4]) - r[2]) / 2 end
  return half_margin
end

-- The times in metas ('f', 'x'), as numbers: users appended in one call share their times,
-- so each distinct text is converted once per call.
local times = {}
local function time_of(text)
  if not text then return nil end
  local t = times[text]
  if t == nil then
    t = tonumber(text) or false
    times[text] = t
  end
  return t or nil
end

-- The HSET of an append's meta fields: one table for the whole call, filled anew by each user.
local meta_fields = {}

-- Appends events[from..to] to one user's stream (r: max events, retention ms, max
-- bytes, stream ttl, meta ttl), SPUBLISHes them, trims and renews the expiries.
-- candidate: the epoch a stream started here gets, followed by suffix when there is one
-- (appendMany: the call's candidate and the user's place in the call, made only when needed).
-- publisher/seq: the batch's tag (nil: untagged). bare: the events come without their
-- opening '{' (appendMany's), else each is the whole JSON. Returns epoch, first offset,
-- ts, 1 if the meta records that publisher's batch seq as appended already
-- (nothing stored again: its first offset and ts are returned), else 0; or a text,
-- 0, 0 and the stale flag for a batch older than the one recorded (nothing stored).
-- Numbers go to Redis as strings made with '%d' (every one is an integer): a number
-- argument would be formatted by Redis with '%.17g', and '%.0f' costs several times '%d'.
-- lease/fence: the lease key that must hold the fence value for anything to be stored (nil:
-- unfenced); else nothing is written and it returns a text, 0, 0 and the fenced flag. A batch
-- recorded as appended is answered as such even when the lease moved since: it was stored
-- while the lease held.
local function append_events(stream, meta, candidate, channel, r, publisher, seq, events, from, to, bare, suffix, lease, fence)
  local max_events, retention_ms, max_bytes, stream_ttl, meta_ttl = r[1], r[2], r[3], r[4], r[5]
  local record_field = nil
  if publisher then
    record_field = publisher == record_field_publisher and record_field_name or record_field_of(publisher)
  end
  local m = call('HMGET', meta, 'e', 'o', 'b', 'w', 'f', 'g', 'x', record_field or 'e')
  local epoch, offset, bytes, writer, oldest, oldest_offset, renewed
  -- exists: the stream may exist (false: known to be gone); len: its exact count, when known.
  local exists, len = true, nil
  local fresh = not m[1]
  if not fresh then
    epoch, offset, bytes, writer = m[1], tonumber(m[2] or '0'), tonumber(m[3] or '0'), m[4]
    oldest, oldest_offset, renewed = time_of(m[5]), tonumber(m[6] or ''), time_of(m[7])
    -- This publisher's batch was appended already (its reply was lost, and it tries
    -- again: on the same master after a reconnect, or on a promoted replica that had
    -- received it): answer what was stored, store nothing.
    local record = record_field and m[8] or nil
    if record then
      -- '<batch seq> <first offset> <ts>': only a record that starts with this seq is read.
      local digits = #seq
      if byte(record, digits + 1) == 32 and sub(record, 1, digits) == seq then
        local r_seq, r_first, r_ts = match(record, '^(%d+) (%d+) (%d+)$')
        if r_seq == seq then return epoch, tonumber(r_first), tonumber(r_ts), 1 end
      end
      -- An older batch than the one recorded: a late copy of an attempt the publisher gave up
      -- on (it timed out while a Cluster failed over; the retry was stored, then a later
      -- batch of the user). Its events are stored already: nothing is stored again. An
      -- outbox's batch numbers only grow, and a user's next batch is numbered only once the
      -- last one was stored or given up (its callers told so).
      local recorded = match(record, '^(%d+) ')
      if recorded and (#recorded > digits or (#recorded == digits and recorded > seq)) then
        return 'an older batch than the last one stored by this publisher', 0, 0, ${APPEND_MANY_FLAGS.stale}
      end
    end
  end
  -- Fenced: checked before the first write (the record's room, a new epoch's DEL).
  if lease and call('GET', lease) ~= fence then
    return 'the lease is no longer held by this writer', 0, 0, ${APPEND_MANY_FLAGS.fenced}
  end
  if not fresh then
    if record_field and not m[8] then make_room_for_record(meta) end
  else
    -- A missing meta (first use, expiry, FLUSHALL, eviction) starts a new epoch:
    -- cursors of the old one can never match it, so they answer gap. A stream left
    -- over from the lost epoch is dropped with it.
    epoch, offset, bytes = suffix and candidate .. suffix or candidate, 0, 0
    call('DEL', stream)
    exists, len = false, 0
  end
  local replid, promoted = replication_id, replication_promoted
  if replid == nil then replid, promoted = replication() end
  -- The last append was made by another master and this node was promoted since:
  -- replication is asynchronous, so that master may have acknowledged (and
  -- SPUBLISHed) events this node never received. Their offsets must never be
  -- given to other events: skip far ahead, so every cursor from before the
  -- failover reads as a gap rather than resuming past a silent hole.
  if writer and writer ~= replid and promoted then offset = offset + ${FAILOVER_OFFSET_SKIP} end
  local ts, ts_s = call_now, call_now_s
  if ts == nil then ts, ts_s = now_of_call() end
  local first = offset + 1
  local off_s, first_s = nil, nil
  for i = from, to do
    offset = offset + 1
    off_s = fmt('%d', offset)
    if i == from then first_s = off_s end
    -- The event JSON comes as {"event":...}; the stored form puts type, cursor
    -- and ts first, exactly as the in-memory bus serialises an EventFrame (and
    -- as readStoredFramePosition reads it back).
    local stored = '{"type":"event","cursor":"' .. epoch .. ':' .. off_s .. '","ts":' .. ts_s .. ',' .. (bare and events[i] or sub(events[i], 2))
    if max_events > 0 then
      local id = off_s .. '-0'
      -- The first XADD tells (NOMKSTREAM) whether the stream vanished on its own
      -- (expiry, eviction) while the meta lived on: then nothing is retained any
      -- more, the byte count must say so, and the oldest entry is this one.
      if not (exists and i == from and call('XADD', stream, 'NOMKSTREAM', id, 't', ts_s, 'd', stored)) then
        if i == from then
          exists, len, bytes = false, 0, 0
        end
        call('XADD', stream, id, 't', ts_s, 'd', stored)
      end
      if len then len = len + 1 end
      bytes = bytes + #stored
    end
    call('SPUBLISH', channel, stored)
  end
  if not off_s then off_s = fmt('%d', offset) end
  if not first_s then first_s = fmt('%d', first) end
  local oldest_changed = false
  if not exists and max_events > 0 then oldest, oldest_offset, oldest_changed = ts, first, true end
  -- Trimmed only when over a bound. The bytes are in the meta; the oldest entry's
  -- age too ('f'); so is an upper bound of the count ('g': offsets grow by one per
  -- entry, or skip after a failover): an append within them reads no entry. A meta
  -- without 'f' or 'g' (written before them) reads the stream once.
  local min_ts = ts - retention_ms
  local trim_needed = max_events == 0 or bytes > max_bytes or oldest == nil or oldest < min_ts
  if not trim_needed and not len and (oldest_offset == nil or offset - oldest_offset + 1 > max_events) then
    len = call('XLEN', stream)
  end
  if trim_needed or (len and len > max_events) then
    if not len then len = call('XLEN', stream) end
    if len > 0 then
      bytes, oldest, oldest_offset = trim(stream, len, bytes, max_events, min_ts, max_bytes)
      oldest_changed = oldest ~= nil
    end
  end
  local fields = meta_fields
  fields[1], fields[2], fields[3], fields[4] = 'o', off_s, 'b', fmt('%d', bytes)
  local n = 4
  -- 'w' is written only when it changes.
  if writer ~= replid then
    fields[n + 1], fields[n + 2], n = 'w', replid, n + 2
  end
  if fresh then
    fields[n + 1], fields[n + 2], n = 'e', epoch, n + 2
  end
  if oldest_changed then
    fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4], n = 'f', fmt('%d', oldest), 'g', fmt('%d', oldest_offset), n + 4
  end
  if record_field then
    fields[n + 1], fields[n + 2], n = record_field, seq .. ' ' .. first_s .. ' ' .. ts_s, n + 2
  end
  -- The expiries are set again once the last setting is half the stream's margin
  -- (its TTL past the retention age) old, not on every append: the stream still
  -- outlives the retention age of its newest entry by half the margin or more.
  local renew = not exists or not renewed or ts < renewed or ts - renewed >= (r == half_margin_r and half_margin or half_margin_of(r))
  if renew then
    fields[n + 1], fields[n + 2], n = 'x', ts_s, n + 2
  end
  call('HSET', meta, unpack(fields, 1, n))
  if renew then
    call('PEXPIRE', stream, stream_ttl)
    call('PEXPIRE', meta, meta_ttl)
  end
  return epoch, first, ts, 0
end

-- One user's append (KEYS: stream, meta; ARGV: see streamScripts.appendAndNotify).
local function append_and_notify(keys, args, lease, fence)
  -- A tagged batch has '<publisher id> <batch number>' before its events (an event's
  -- JSON starts with '{'); untagged calls (and the company fan-out's copy of this
  -- function) start their events right there.
  local first_event, publisher, seq = 8, nil, nil
  if args[8] and string.sub(args[8], 1, 1) ~= '{' then
    publisher, seq = string.match(args[8], '^(%S+) (%d+)$')
    first_event = 9
  end
  local r = { tonumber(args[3]), tonumber(args[4]), tonumber(args[5]), args[6], args[7] }
  local epoch, first, ts, flag = append_events(keys[1], keys[2], args[1], args[2], r, publisher, seq, args, first_event, #args, nil, nil, lease, fence)
  if flag == ${APPEND_MANY_FLAGS.fenced} then return redis.error_reply('${FENCED_REPLY} ' .. epoch) end
  return { epoch, first, ts, flag }
end

`;

/**
 * The user's stream scripts (KEYS: stream, meta, see `userKeys`):
 *
 * - `appendAndNotify` ARGV: epoch candidate, channel, max events, retention ms, max bytes,
 *   stream ttl ms, meta ttl ms, then for a tagged batch '<publisher id> <batch number>',
 *   then the event JSON... (each starts with '{', which tells the tag from an event). Returns { epoch, first offset, ts, 1 if the meta records that publisher's batch seq
 *   as appended already (nothing stored again: its first offset and ts are returned), else 0 }; for a
 *   batch older than that publisher's last one recorded, { text, 0, 0, 4 } (`stale`: nothing stored).
 * - `appendMany`: the same for several users in one call (see {@link APPEND_MANY_FLAGS}).
 *   KEYS: per user stream, meta, and the fence's lease key when it has a fence. ARGV: user
 *   count, max events, retention ms, max bytes, stream ttl ms, meta ttl ms, publisher id ('':
 *   untagged), epoch candidate (a user whose stream starts in this call gets it followed by its
 *   place in the call, 1 to n), then per user: batch seq ('' untagged) for one event and no fence,
 *   else '#<event count, negative when fenced> <batch seq>'; the fence value (fenced users
 *   only); each event's JSON without its opening '{' (the stored frame
 *   puts its own fields before the rest: one copy fewer in Lua)... Returns per user { epoch (or the error text),
 *   first offset, ts, flag }. Each user is appended on its own (a fenced or failed user does
 *   not stop the others); `INFO replication` and `TIME` are read once per call.
 * - `readSince` ARGV: epoch candidate, meta ttl ms, retention ms, cursor epoch, cursor offset,
 *   holes ('1': every retained event after the cursor, missing ones or not; '' or absent: `gap`
 *   at any missing one). Returns { epoch, head, 'ok' | 'gap', d... }.
 * - `head` ARGV: epoch candidate, meta ttl ms. Returns { epoch, head }.
 */
export const streamScripts = {
  appendAndNotify: new RedisScript(`${STREAM_LUA_PRELUDE}
return append_and_notify(KEYS, ARGV)
`),
  appendMany: new RedisScript(`${STREAM_LUA_PRELUDE}
-- One user of an appendMany call, run in pcall: a fenced user (the lease, in the user's
-- slot, holds anything else) or a failing one (a key of the wrong type, the lease's too)
-- answers for itself and the others of the call go on.
local function append_one(stream, meta, lease, fence, candidate, u, channel, r, publisher, seq, events, from, to)
  return append_events(stream, meta, candidate, channel, r, publisher, seq, events, from, to, true, u, lease, fence)
end

-- The text of an error caught by pcall: a Redis error reply is a table { err = text }.
local function error_text(res)
  if type(res) == 'table' and type(res.err) == 'string' then return res.err end
  return tostring(res)
end

local function append_many(keys, args)
  local n = tonumber(args[1])
  local r = { tonumber(args[2]), tonumber(args[3]), tonumber(args[4]), args[5], args[6] }
  local publisher = args[7] ~= '' and args[7] or nil
  local candidate = args[8]
  local out = {}
  local k, a, base = 1, 9, 0
  for u = 1, n do
    -- The user's batch seq ('' untagged) for one unfenced event; else '#<event count> <seq>',
    -- the count negative for a fenced user: its fence value follows, its lease
    -- key the meta (stored only while the lease holds the writer's value).
    local seq, count = args[a], 1
    if byte(seq, 1) == 35 then
      local c, s = match(seq, '^#(%-?%d+) (%d*)$')
      count, seq = tonumber(c), s
    end
    local stream, meta = keys[k], keys[k + 1]
    -- The channel is the stream key with 'n' for its last letter (userKeys: '<base>:s', '<base>:n').
    local channel = sub(stream, 1, -2) .. 'n'
    local lease, fence = nil, nil
    local from = a + 1
    k = k + 2
    if count < 0 then
      count = -count
      fence = args[from]
      from = from + 1
      lease = keys[k]
      k = k + 1
    end
    local to = from + count - 1
    a = to + 1
    local ok, epoch, first, ts, flag = pcall(append_one, stream, meta, lease, fence, candidate, u, channel, r, seq ~= '' and publisher or nil, seq ~= '' and seq or nil, args, from, to)
    if not ok then
      epoch, first, ts, flag = error_text(epoch), 0, 0, ${APPEND_MANY_FLAGS.error}
    end
    -- Four items per user at fixed places, none of them nil (a nil would end the reply there
    -- and shift every later user's values).
    if epoch == nil then epoch = '' end
    if first == nil then first = '' end
    if ts == nil then ts = '' end
    if flag == nil then flag = '' end
    out[base + 1], out[base + 2], out[base + 3], out[base + 4] = epoch, first, ts, flag
    base = base + 4
  end
  return out
end

return append_many(KEYS, ARGV)
`),
  readSince: new RedisScript(`${STREAM_LUA_PRELUDE}
local function read_since(keys, args)
  local stream, meta = keys[1], keys[2]
  local epoch, top = ensure_meta(stream, meta, args[1])
  redis.call('PEXPIRE', meta, args[2])
  local min_ts = now_ms() - tonumber(args[3])
  local after = tonumber(args[5])
  if args[4] ~= epoch or after > top then return { epoch, top, 'gap' } end
  if after == top then return { epoch, top, 'ok' } end
  local entries = redis.call('XRANGE', stream, string.format('%.0f', after + 1) .. '-0', string.format('%.0f', top) .. '-0')
  if args[6] == '1' then
    -- What the stream holds, holes and all (a reader that only asks what was published).
    local out = { epoch, top, 'ok' }
    for _, entry in ipairs(entries) do out[#out + 1] = entry[2][4] end
    return out
  end
  -- The entry right after the cursor must still be there (and not past the
  -- retention age), else the client missed events: gap, never a partial replay.
  local first = entries[1]
  if not first or offset_of(first[1]) ~= after + 1 then return { epoch, top, 'gap' } end
  local out = { epoch, top, 'ok' }
  local expected = after + 1
  for _, entry in ipairs(entries) do
    if tonumber(entry[2][2]) < min_ts then return { epoch, top, 'gap' } end
    -- Offsets skip only where a failover may have lost events: a gap too.
    if offset_of(entry[1]) ~= expected then return { epoch, top, 'gap' } end
    expected = expected + 1
    out[#out + 1] = entry[2][4]
  end
  return out
end

return read_since(KEYS, ARGV)
`),
  head: new RedisScript(`${STREAM_LUA_PRELUDE}
local function head(keys, args)
  local epoch, offset = ensure_meta(keys[1], keys[2], args[1])
  redis.call('PEXPIRE', keys[2], args[2])
  return { epoch, offset }
end

return head(KEYS, ARGV)
`),
} as const;

/**
 * `appendAndNotify` fenced by a lease: KEYS gain the lease key (in the user's slot), ARGV the
 * value the lease must hold (`owner|token`) as its last item. Appends nothing and answers an
 * error starting with {@link FENCED_REPLY} when the lease holds anything else (expired, or
 * taken by another owner): a stale holder's publish is refused in the very step that would
 * store it, so it can never land after the next holder's.
 */
export const fencedAppendScript = fencedVariant(streamScripts.appendAndNotify.source);

function fencedVariant(source: string): RedisScript {
  const call = 'return append_and_notify(KEYS, ARGV)';
  if (!source.includes(call)) throw new Error('appendAndNotify no longer ends with its call');
  return new RedisScript(
    source.replace(
      call,
      `local fence = table.remove(ARGV)
return append_and_notify(KEYS, ARGV, KEYS[3], fence)`,
    ),
  );
}
