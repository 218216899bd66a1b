-- early_accept: ordinary mail goes back to the MTA at MAIL FROM or DATA when no rule can still match.
-- Global `mode` (from -D): "sender" (bulk_header and the count rule off) or "count" (bulk_header off).
dofile(lib)
run(function()
  local c = connect()
  if mode == "sender" then
    expect("ordinary sender accepted at MAIL FROM", c, {
      from = "<clerk@corp.test>", rcpts = { "<a@a.test>" } }, "mail", SMFIR_ACCEPT)
    expect("bulk sender still captured", c, {
      from = "<news@list.test>", rcpts = { "<a@a.test>" } }, "eom", SMFIR_DISCARD)
  else
    expect("one recipient accepted at DATA", c, {
      from = "<clerk@corp.test>", rcpts = { "<a@a.test>" } }, "data", SMFIR_ACCEPT)
    expect("two recipients captured", c, {
      from = "<clerk@corp.test>", rcpts = { "<a@a.test>", "<b@b.test>" },
      headers = { { "X-Mxlane-Job", "not a rule here" } } }, "eom", SMFIR_DISCARD)
  end
  mt.disconnect(c)
end)
