-- size: a body or header fields over message_size_limit get 552 5.3.4 (never 4xx: it can never fit), not counting
-- the fields Postfix inserted for missing ones; a body over 1 MiB (spilled to a file) is stored whole.
-- Globals: `mode`, "limit" or "spill"; `body_step`, where a refusal met in the body is said
-- ("body" on libmilter, "eom" on mxlane's own engine: body chunks get no answer there).
dofile(lib)
run(function()
  local c = connect()
  local line = string.rep("x", 998) .. "\r\n"
  local chunk = string.rep(line, 60)                       -- 60,000 bytes
  local body = {}
  local n = (mode == "limit") and 2 or 25                  -- 120 kB or 1.5 MB
  for i = 1, n do body[i] = chunk end
  local m = { from = "<boss@corp.test>", rcpts = { "<a@a.test>" },
              headers = { { "X-Mxlane-Job", "size-" .. mode } }, body = body }
  if mode == "limit" then
    expect("body over message_size_limit refused", c, m, body_step, SMFIR_REPLYCODE)
    -- header fields get no answer (SMFIP_NR_HDR): header fields over the limit are
    -- refused at the end of the headers, also for an MTA that waits for an answer to
    -- every field (libmilter answers "continue" for mxlane there)
    local big = { from = "<boss@corp.test>", rcpts = { "<a@a.test>" },
                  headers = { { "X-Mxlane-Job", "size-headers" } } }
    for i = 1, 110 do big.headers[i + 1] = { "X-Filler-" .. i, string.rep("y", 960) } end
    expect("header fields over message_size_limit refused at end of headers", c, big,
           "eoh", SMFIR_REPLYCODE)
    local old = connect(ANSWER_EVERY_STEP)
    expect("the same for an MTA without no-reply steps", old, big, "eoh", SMFIR_REPLYCODE)
    mt.disconnect(old)
    -- what the client sent is just under the limit; the fields Postfix's cleanup appended for the ones the
    -- client left out (Message-Id with the queue id, Date, From) push what the milter sees over it
    local function postfix_like(msgid)
      return { from = "<boss@corp.test>", macros = { "i", "QX1" }, rcpts = { "<a@a.test>" },
               headers = { { "X-Mxlane-Job", "size-fits" }, { "Subject", "fits" },
                           { "Message-Id", msgid }, { "Date", "Wed,  2 Dec 2026 07:35:19 +0000 (UTC)" },
                           { "From", "boss@corp.test" } },
               body = { string.rep(line, 50), string.rep(line, 49) .. string.rep("w", 898) .. "\r\n" } }
    end
    -- 15 + 2 + 99,900 bytes from the client, 117 more from Postfix: 100,034 in all
    expect("under the limit as the client sent it, over it with the fields Postfix inserted", c,
           postfix_like("<20261202073519.QX1@mta.pftest.test>"), "eom", SMFIR_DISCARD)
    expect("the same fields from the client count", c,
           postfix_like("<20261202073519.other@corp.test>"), body_step, SMFIR_REPLYCODE)
  else
    expect("1.5 MB body stored", c, m, "eom", SMFIR_DISCARD)
  end
  mt.disconnect(c)
end)
