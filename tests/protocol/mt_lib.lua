-- mt_lib: helpers for the mxlane-milter protocol scripts (loaded with dofile by each script).
-- Globals from miltertest -D: sock (libmilter socket spec), lib (this file).

local names = {}
names[SMFIR_ACCEPT] = "accept"
names[SMFIR_CONTINUE] = "continue"
names[SMFIR_DISCARD] = "discard"
names[SMFIR_TEMPFAIL] = "tempfail"
names[SMFIR_REJECT] = "reject"
names[SMFIR_REPLYCODE] = "replycode"

function reply_name(r)
  return names[r] or tostring(r)
end

-- steps: the protocol steps the MTA offers (nil: all that libmilter knows).
-- ip: the SMTP client's address the MTA reports (nil: 127.0.0.1, a local client).
function connect(steps, ip)
  local conn = mt.connect(sock, 50, 0.1)
  if conn == nil then error("cannot connect to " .. sock) end
  if steps ~= nil then
    local err = mt.negotiate(conn, nil, nil, steps)
    if err ~= nil then error("negotiate: " .. err) end
  end
  if mt.test_option(conn, SMFIP_NOCONNECT) then return conn end  -- the filter does not want it
  local err = mt.conninfo(conn, "client.test", ip or "127.0.0.1")
  if err ~= nil then error("conninfo: " .. err) end
  if not mt.test_option(conn, SMFIP_NR_CONN) then
    local r = mt.getreply(conn)
    if r ~= SMFIR_CONTINUE then error("connect: got " .. reply_name(r)) end
  end
  return conn
end

-- An MTA that offers no SMFIP_NR_* step: it waits for an answer to every one
-- (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_HDR_LEADSPC).
ANSWER_EVERY_STEP = 0x00100303

-- Sends one message step by step and stops at the first answer that is not
-- "continue" (the MTA would stop there too). m = { from, args = {...}, rcpts = {...},
-- headers = { {name, value}, ... }, body = string or { chunks }, macros = { name, value, ... }
-- (MAIL stage), abort_after = step name }.
-- Returns the step name and the reply there ("eom" when it got that far).
function send(conn, m)
  local function step(name, err)
    if err ~= nil then error(name .. ": " .. err) end
    local r = mt.getreply(conn)
    if r ~= SMFIR_CONTINUE then return r end
    return nil
  end
  local r
  if m.macros then mt.macro(conn, SMFIC_MAIL, table.unpack(m.macros)) end
  r = step("mail", mt.mailfrom(conn, m.from, table.unpack(m.args or {})))
  if r then return "mail", r end
  for _, rcpt in ipairs(m.rcpts) do
    r = step("rcpt", mt.rcptto(conn, rcpt))
    if r then return "rcpt", r end
  end
  -- the MTA leaves DATA out when the milter asked for that (SMFIP_NODATA)
  if not mt.test_option(conn, SMFIP_NODATA) then
    r = step("data", mt.data(conn))
    if r then return "data", r end
  end
  for _, h in ipairs(m.headers or {}) do
    r = step("header", mt.header(conn, h[1], h[2]))
    if r then return "header", r end
  end
  r = step("eoh", mt.eoh(conn))
  if r then return "eoh", r end
  local body = m.body or "Hello.\r\n"
  if type(body) == "string" then body = { body } end
  for _, chunk in ipairs(body) do
    r = step("body", mt.bodystring(conn, chunk))
    if r then return "body", r end
  end
  if m.abort_after == "body" then
    local err = mt.abort(conn)
    if err ~= nil then error("abort: " .. err) end
    return "abort", SMFIR_CONTINUE
  end
  local err = mt.eom(conn)
  if err ~= nil then error("eom: " .. err) end
  return "eom", mt.getreply(conn)
end

-- send() and check where and how the milter answered.
function expect(what, conn, m, want_step, want_reply)
  local s, r = send(conn, m)
  if s ~= want_step or r ~= want_reply then
    error(what .. ": expected " .. reply_name(want_reply) .. " at " .. want_step ..
          ", got " .. reply_name(r) .. " at " .. s)
  end
  mt.echo("ok - " .. what)
end

-- Runs f and turns any error into a message and exit status 1 (miltertest
-- otherwise exits 1 without a word for some protocol errors).
function run(f)
  local ok, err = pcall(f)
  if not ok then
    mt.echo("not ok - " .. tostring(err))
    os.exit(1)
  end
end
