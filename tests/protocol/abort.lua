-- abort: an aborted or cut-off message stores nothing; the connection goes on with the next one.
dofile(lib)
run(function()
  local c = connect()
  expect("abort after the body", c, {
    from = "<boss@corp.test>", rcpts = { "<a@a.test>", "<b@b.test>" },
    headers = { { "X-Mxlane-Job", "aborted-job" } }, abort_after = "body" }, "abort", SMFIR_CONTINUE)
  expect("the next message on the connection is captured", c, {
    from = "<boss@corp.test>", rcpts = { "<c@c.test>" },
    headers = { { "X-Mxlane-Job", "after-abort" } } }, "eom", SMFIR_DISCARD)
  -- a client that goes away mid-body: the MTA drops the milter connection
  local s, r
  if mt.mailfrom(c, "<boss@corp.test>") ~= nil then error("mail") end
  if mt.rcptto(c, "<d@d.test>") ~= nil then error("rcpt") end
  if mt.header(c, "X-Mxlane-Job", "dropped-job") ~= nil then error("header") end
  if mt.eoh(c) ~= nil then error("eoh") end
  if mt.bodystring(c, "half a body\r\n") ~= nil then error("body") end
  mt.disconnect(c, false)
  mt.echo("ok - connection dropped mid-message")
end)
