-- store_fail: when the queue store cannot take the job, bulk mail gets a 4xx saying why and
-- ordinary mail still flows. Globals (from -D): want = "tempfail" or "discard"; big = body chunks.
dofile(lib)
run(function()
  local c = connect()
  local m = { from = "<boss@corp.test>", rcpts = { "<a@a.test>" },
              headers = { { "X-Mxlane-Job", "store-" .. want } } }
  if want == "tempfail" then
    if big then
      -- a large body, in 60,000-byte chunks
      local chunk = string.rep(string.rep("x", 998) .. "\r\n", 60)
      m.headers = { { "X-Mxlane-Job", "store-big" } }
      m.body = {}
      for i = 1, tonumber(big) do m.body[i] = chunk end
      local s, r = send(c, m)
      if r ~= SMFIR_REPLYCODE and r ~= SMFIR_TEMPFAIL then
        error("big body: got " .. reply_name(r) .. " at " .. s)
      end
      mt.echo("ok - big body refused with " .. reply_name(r) .. " at " .. s)
    else
      -- (the reply's code and text are checked in the milter's log by the caller)
      expect("bulk message refused with a reply", c, m, "eom", SMFIR_REPLYCODE)
    end
    expect("ordinary mail still accepted", c, {
      from = "<clerk@corp.test>", rcpts = { "<b@b.test>" }, headers = { { "Subject", "hi" } } },
      "eoh", SMFIR_ACCEPT)
  else
    expect("bulk message stored once the store is back", c, m, "eom", SMFIR_DISCARD)
  end
  mt.disconnect(c)
end)
