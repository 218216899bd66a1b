-- tokens: a message carrying a valid X-Mxlane-Relayed token goes back to the MTA untouched at the
-- end of the message (the token is bound to envelope and body); forged and stale tokens, and a valid
-- token copied into other mail, do not protect a bulk message from being captured. A message with this
-- host's mxlane Received: line was sent by mxlane already and is not captured either.
-- Globals (from -D): valid, forged, stale (tokens made by the test with loop.key).
dofile(lib)
local function bulk(name, token)
  return { from = "<boss@corp.test>", rcpts = { "<a@a.test>" },
           headers = { { "X-Mxlane-Relayed", token }, { "X-Mxlane-Job", name } } }
end
run(function()
  local c = connect()
  expect("valid token: returned to the MTA", c, bulk("relayed", valid), "eom", SMFIR_CONTINUE)
  local other_body = bulk("replayed-body", valid)
  other_body.body = "Cheap pills.\r\n"
  expect("valid token on another body: captured", c, other_body, "eom", SMFIR_DISCARD)
  local other_rcpts = bulk("replayed-rcpts", valid)
  table.insert(other_rcpts.rcpts, "<b@b.test>")
  expect("valid token with another recipient added: captured", c, other_rcpts, "eom", SMFIR_DISCARD)
  local other_sender = bulk("replayed-sender", valid)
  other_sender.from = "<spam@corp.test>"
  expect("valid token from another sender: captured", c, other_sender, "eom", SMFIR_DISCARD)
  local spread = bulk("relayed-spread", valid)
  spread.body = { "Hel", "lo.", "\r\n" }
  expect("valid token, body in chunks: returned", c, spread, "eom", SMFIR_CONTINUE)
  expect("forged token: captured", c, bulk("forged", forged), "eom", SMFIR_DISCARD)
  expect("stale token: captured", c, bulk("stale", stale), "eom", SMFIR_DISCARD)
  expect("garbage token: captured", c, bulk("garbage", "J1.2.3.zz"), "eom", SMFIR_DISCARD)
  local two = bulk("second-valid", forged)
  table.insert(two.headers, 1, { "X-Mxlane-Relayed", valid })
  expect("an old forged header beside a valid one: returned", c, two, "eom", SMFIR_CONTINUE)
  local ours = { from = "<boss@corp.test>", rcpts = { "<a@a.test>" },
                 headers = { { "Received", "by mta.here.test (mxlane) id J00002A.7;\r\n\tWed, 2 Dec 2026 07:00:00 +0000" },
                             { "X-Mxlane-Job", "our-trace" } } }
  expect("this host's mxlane Received: line: returned to the MTA", c, ours, "eoh", SMFIR_ACCEPT)
  local theirs = { from = "<boss@corp.test>", rcpts = { "<a@a.test>" },
                   headers = { { "Received", "by mta.elsewhere.test (mxlane) id J00002A.7;\r\n\tWed, 2 Dec 2026 07:00:00 +0000" },
                               { "X-Mxlane-Job", "their-trace" } } }
  expect("another host's mxlane Received: line: captured", c, theirs, "eom", SMFIR_DISCARD)
  mt.disconnect(c)
end)
