-- hold: with intercept_action = hold the original is quarantined (and accepted) instead of discarded.
dofile(lib)
run(function()
  local c = connect()
  if not mt.test_action(c, SMFIF_QUARANTINE) then error("quarantine not negotiated") end
  expect("held bulk message is accepted", c, {
    from = "<boss@corp.test>", rcpts = { "<a@a.test>" },
    headers = { { "X-Mxlane-Job", "held-job" } } }, "eom", SMFIR_ACCEPT)
  if not mt.eom_check(c, MT_QUARANTINE, "mxlane: job J000001") then
    error("no quarantine with reason 'mxlane: job J000001'")
  end
  mt.echo("ok - quarantined with the job id as reason")
  expect("a second message of the held job", c, {
    from = "<boss@corp.test>", rcpts = { "<b@b.test>" },
    headers = { { "X-Mxlane-Job", "held-job" } } }, "eom", SMFIR_ACCEPT)
  mt.disconnect(c)
end)
