-- clients: only SASL-authenticated clients and bulk_clients may use the bulk lane; job names are per sender.
-- Filter config: bulk_clients = 127.0.0.0/8 (the default) and the default bulk_header.
dofile(lib)
run(function()
  local outsider = connect(nil, "192.0.2.7")
  expect("a bulk-looking message from outside bulk_clients goes on untouched", outsider, {
    from = "<spam@outside.test>", rcpts = { "<ann@a.test>" },
    headers = { { "X-Mxlane-Job", "outsider" } } }, "eoh", SMFIR_ACCEPT)
  expect("the same client authenticated by SASL is captured", outsider, {
    from = "<mailer@corp.test>", macros = { "{auth_authen}", "mailer" }, rcpts = { "<bob@b.test>" },
    headers = { { "X-Mxlane-Job", "authenticated" } } }, "eom", SMFIR_DISCARD)
  mt.disconnect(outsider)

  local local_client = connect(nil, "127.0.0.1")
  expect("a client in bulk_clients is captured", local_client, {
    from = "<ann@corp.test>", rcpts = { "<a1@a.test>" },
    headers = { { "X-Mxlane-Job", "shared name" } } }, "eom", SMFIR_DISCARD)
  expect("another sender using the same name", local_client, {
    from = "<bob@corp.test>", rcpts = { "<b1@b.test>" },
    headers = { { "X-Mxlane-Job", "shared name" } } }, "eom", SMFIR_DISCARD)
  expect("the first sender again", local_client, {
    from = "<Ann@Corp.test>", rcpts = { "<a2@a.test>" },
    headers = { { "X-Mxlane-Job", "shared name" } } }, "eom", SMFIR_DISCARD)
  mt.disconnect(local_client)
end)
