-- bulk_rules: each intake rule captures (discard), ordinary mail is returned at the earliest step.
-- Filter config: bulk_min_recipients = 3, bulk_senders = news@list.test @promo.test FILE(campaigns.test),
-- bulk_sasl_users = mailer, bulk_header at its default.
dofile(lib)
run(function()
  local c = connect()
  expect("bulk by header", c, {
    from = "<boss@corp.test>", args = { "BODY=8BITMIME", "SIZE=500" },
    macros = { "i", "QH1" },
    rcpts = { "<ann@a.test>", "<bob@b.test>" },
    headers = { { "Subject", "spring\n\tfolded" }, { "X-Mxlane-Job", "spring sale" } },
    body = "Dear reader,\r\n\r\nspring.\r\n" }, "eom", SMFIR_DISCARD)
  expect("second message on the same connection joins the named job", c, {
    from = "<boss@corp.test>", rcpts = { "<cy@c.test>" },
    headers = { { "x-mxlane-job", "spring sale" } } }, "eom", SMFIR_DISCARD)
  expect("empty bulk_header value: a job of its own", c, {
    from = "<boss@corp.test>", rcpts = { "<solo@c.test>" },
    headers = { { "X-Mxlane-Job", "" } } }, "eom", SMFIR_DISCARD)
  expect("bulk by recipient count", c, {
    from = "<boss@corp.test>", rcpts = { "<r1@c.test>", "<r2@c.test>", "<r3@c.test>" },
    headers = { { "Subject", "three" } } }, "eom", SMFIR_DISCARD)
  expect("two recipients and no header: ordinary, accepted at end of headers", c, {
    from = "<boss@corp.test>", rcpts = { "<r1@c.test>", "<r2@c.test>" },
    headers = { { "Subject", "two" } } }, "eoh", SMFIR_ACCEPT)
  expect("bulk by sender user@dom", c, {
    from = "<News@List.test>", rcpts = { "<s1@c.test>" } }, "eom", SMFIR_DISCARD)
  expect("bulk by sender @dom", c, {
    from = "<x@promo.test>", rcpts = { "<s2@c.test>" } }, "eom", SMFIR_DISCARD)
  expect("bulk by sender from a pattern file (subdomain)", c, {
    from = "<y@eu.campaigns.test>", rcpts = { "<s3@c.test>" } }, "eom", SMFIR_DISCARD)
  expect("bulk by SASL login", c, {
    from = "<someone@corp.test>", macros = { "{auth_authen}", "mailer" },
    rcpts = { "<l1@c.test>" } }, "eom", SMFIR_DISCARD)
  expect("another SASL login is ordinary", c, {
    from = "<someone@corp.test>", macros = { "{auth_authen}", "alice" },
    rcpts = { "<l2@c.test>" } }, "eoh", SMFIR_ACCEPT)
  mt.disconnect(c)

  -- an MTA that offers no no-reply steps: libmilter answers "continue" where mxlane
  -- stays silent, and the decisions come at the same steps
  local old = connect(ANSWER_EVERY_STEP)
  expect("ordinary mail accepted at end of headers (MTA without no-reply steps)", old, {
    from = "<boss@corp.test>", rcpts = { "<r1@c.test>" },
    headers = { { "Subject", "one" } } }, "eoh", SMFIR_ACCEPT)
  expect("bulk by header captured (MTA without no-reply steps)", old, {
    from = "<boss@corp.test>", rcpts = { "<old@c.test>" },
    headers = { { "X-Mxlane-Job", "old mta" } } }, "eom", SMFIR_DISCARD)
  mt.disconnect(old)

  -- the same job name from another connection joins the same job
  local c2 = connect()
  expect("same job name on a second connection", c2, {
    from = "<boss@corp.test>", rcpts = { "<dee@d.test>" },
    headers = { { "X-Mxlane-Job", "  spring sale " } } }, "eom", SMFIR_DISCARD)
  mt.disconnect(c2)
end)
