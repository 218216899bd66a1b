#!/bin/bash
# ctl_verify: mxlanectl verify sorts addresses into valid, invalid, unknown and catch-all without sending anything.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init ctl_verify
[ -x "$FX_CTL" ] || fx_fatal "$FX_CTL not built"
P=$(fx_port 5)
fx_dns_start \
  'mx-host=strict.test,mx.strict.test,10' 'host-record=mx.strict.test,127.0.0.11' \
  'mx-host=catchall.test,mx.catchall.test,10' 'host-record=mx.catchall.test,127.0.0.12' \
  'mx-host=dead.test,mx.dead.test,10' 'host-record=mx.dead.test,127.0.0.13' \
  'mx-host=fallback.test,mx.dead.test,10' 'mx-host=fallback.test,mx.strict.test,20' \
  'mx-host=nullmx.test,.,0' \
  "server=/timeout.test/127.0.0.1#$FX_DEAD_PORT"
fx_pysink_start "$FX/sink" "127.0.0.11:$P=strict" "127.0.0.12:$P"
fx_write_conf "$FX/mxlane.conf" smtp_port="$P" dns_timeout=1s smtp_connect_timeout=3s smtp_helo_timeout=5s \
  smtp_mail_timeout=5s smtp_rcpt_timeout=5s smtp_tls_security_level=none
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }

# address -> expected result
declare -A want=(
  [ok-ann@strict.test]=valid [OK-Bea@Strict.Test]=valid [hard-bob@strict.test]=invalid
  [nobody@strict.test]=invalid [soft-cy@strict.test]=unknown
  [anyone@catchall.test]=catch-all [hard-x@catchall.test]=invalid
  [ok-dan@fallback.test]=valid
  [ok-eve@dead.test]=unknown [ok-fay@timeout.test]=unknown
  [ok-gus@nx.test]=invalid [ok-hal@nullmx.test]=invalid
  [not-an-address]=invalid
)
start=$SECONDS
ctl verify --json "${!want[@]}" > "$FX/verify.json" 2> "$FX/verify.err"
fx_check_eq "verify exits 0" 0 $?
fx_check_eq "verify is quiet on stderr when it is not a terminal" "" "$(cat "$FX/verify.err")"
for a in "${!want[@]}"; do
  got=$("$FX_PYTHON" -c 'import json,sys
for r in json.load(open(sys.argv[1])):
    if r["address"] == sys.argv[2]: print(r["result"])' "$FX/verify.json" "$a")
  fx_check_eq "$a is ${want[$a]}" "${want[$a]}" "$got"
done
fx_check "each result carries its reply" "$FX_PYTHON" -c 'import json,sys
d = {r["address"]: r for r in json.load(open(sys.argv[1]))}
assert d["hard-bob@strict.test"]["reply"].startswith("550 5.1.1"), d["hard-bob@strict.test"]
assert d["hard-bob@strict.test"]["host"].startswith("mx.strict.test[127.0.0.11]"), d["hard-bob@strict.test"]
assert d["soft-cy@strict.test"]["code"] == 451, d["soft-cy@strict.test"]
assert d["ok-gus@nx.test"]["dsn"] == "5.1.2", d["ok-gus@nx.test"]
assert d["ok-hal@nullmx.test"]["dsn"] == "5.1.10", d["ok-hal@nullmx.test"]
assert d["ok-dan@fallback.test"]["host"].startswith("mx.strict.test"), d["ok-dan@fallback.test"]
' "$FX/verify.json"
fx_check "well under a minute" test $((SECONDS - start)) -lt 30

# Nothing sent; one connection per domain (strict + fallback at .11, catchall at .12).
sleep 0.5
fx_check_eq "no message reached a sink" 0 "$(fx_pysink_count "$FX/sink")"
fx_check "no DATA was ever sent" bash -c "! grep -q '\"data_rejected\": [1-9]' '$FX/sink/connections.jsonl'"
fx_check_eq "one connection per domain" "2 1" "$(grep -c '"ip": "127.0.0.11"' "$FX/sink/connections.jsonl") $(grep -c '"ip": "127.0.0.12"' "$FX/sink/connections.jsonl")"

# Text output, --file with a header row, --suppress.
printf 'email,name\nhard-bob@strict.test,Bob\nok-ann@strict.test,Ann\nok-hal@nullmx.test,Hal\n' > "$FX/list.csv"
out=$(ctl verify --file "$FX/list.csv" --suppress)
fx_check_eq "verify --file exits 0" 0 $?
fx_check "text output has one row per address" bash -c "[ \$(grep -c 'strict.test\|nullmx.test' <<<'$out') -eq 3 ]"
fx_check "text row says invalid with the reply" bash -c "grep -q '^hard-bob@strict.test *invalid .*550 5.1.1' <<<'$out'"
sup=$(ctl suppress list --json)
fx_check "--suppress listed the invalid ones, not the valid one" "$FX_PYTHON" -c 'import json,sys
a = sorted(s["address"] for s in json.loads(sys.argv[1]))
assert a == ["hard-bob@strict.test", "ok-hal@nullmx.test"], a' "$sup"

# Bad arguments: exit 1 with one line.
err=$(ctl verify 2>&1 >/dev/null); rc=$?
fx_check_eq "verify without addresses exits 1" 1 "$rc"
fx_check_eq "and says so in one line" 1 "$(printf '%s\n' "$err" | wc -l)"
err=$(ctl verify --file "$FX/missing.txt" 2>&1 >/dev/null); rc=$?
fx_check_eq "verify --file with a missing file exits 1" 1 "$rc"
fx_check "and names the file" grep -q "missing.txt" <<<"$err"
err=$(ctl verify --frobnicate a@strict.test 2>&1 >/dev/null); rc=$?
fx_check_eq "verify with an unknown option exits 1" 1 "$rc"
fx_done
