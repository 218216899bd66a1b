#!/bin/bash
# ctl_destinations: mxlanectl pause [--for], resume, destinations [--json] with the store's suspensions and a
# qrunner's destinations.json snapshot (live, stale, malformed); bad names and durations change nothing.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init ctl_destinations
fx_need_built "$FX_CTL"
fx_write_conf "$FX/mxlane.conf"
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
py() { "$FX_PYTHON" -c "$@"; }
one_line_error() {  # one_line_error NAME PATTERN ctl-args...: exit 1 and one line naming PATTERN
  local name=$1 pattern=$2 err rc
  shift 2
  err=$(ctl "$@" 2>&1 >/dev/null); rc=$?
  fx_check_eq "$name: exit 1" 1 "$rc"
  fx_check "$name: says '$pattern'" grep -q -- "$pattern" <<<"$err"
  fx_check_eq "$name: one line" 1 "$(printf '%s\n' "$err" | wc -l)"
}
# row NAME EXPR: EXPR (python, over the --json row r named NAME), or "absent".
row() {
  ctl destinations --json | py "import json,sys
rows=[r for r in json.load(sys.stdin) if r['name']=='$1']
f=lambda r: ($2)
print('absent' if not rows else 'twice' if len(rows)>1 else f(rows[0]))"
}

# ---- nothing paused, no qrunner
fx_check_eq "an empty list" "[]" "$(ctl destinations --json)"
fx_check "text says nothing is paused" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' destinations | grep -q 'No destinations paused'"

# ---- pause with and without --for
before=$(date +%s)
out=$(ctl pause Shop.TEST --for 1h)
after=$(date +%s)
fx_check "pause --for 1h says until when" grep -Eq '^shop\.test: paused until 20[0-9-]+T[0-9:]+Z$' <<<"$out"
fx_check_eq "pause without --for: until resumed" "mx:.google.com: paused until resumed" "$(ctl pause mx:.google.com)"
fx_check_eq "pause --json" '{"name":"mx:mx1.example.test","paused_until":"forever","reason":"paused by mxlanectl"}' \
  "$(ctl pause MX:mx1.example.test --json)"
fx_check_eq "shop.test is paused for an hour, by mxlanectl" "ok paused by mxlanectl destination" \
  "$(row shop.test "('ok' if $before+3600 <= __import__('calendar').timegm(__import__('time').strptime(r['paused_until'], '%Y-%m-%dT%H:%M:%SZ')) <= $after+3600 else r['paused_until']) + ' ' + r['reason'] + ' ' + r['kind']")"
fx_check_eq "the provider until resumed" "forever provider 0 " \
  "$(row mx:.google.com "r['paused_until'] + ' ' + r['kind'] + ' ' + str(r['queued']) + ' ' + r['mx']")"
fx_check_eq "every column as a JSON key" "connections inflight kind last_reply limit mx name paused_until provider queued reason" \
  "$(ctl destinations --json | py 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)[0])))')"
text=$(ctl destinations)
fx_check "text has the columns" grep -Eq '^NAME +MX +QUEUED +INFLIGHT +CONNECTIONS +LIMIT +PAUSED_UNTIL +REASON +LAST_REPLY$' <<<"$text"
fx_check "text: the provider until resumed" grep -Eq '^mx:\.google\.com +- +0 +0 +0 +0 +until resumed +paused by mxlanectl +-$' <<<"$text"
fx_check "text: shop.test until an ISO time" grep -Eq '^shop\.test +- +0 +0 +0 +0 +20[0-9-]+T[0-9:]+Z +paused by mxlanectl' <<<"$text"
fx_check_eq "three rows under the header" 4 "$(printf '%s\n' "$text" | wc -l)"
fx_check_eq "pausing again replaces" "forever" "$(ctl pause shop.test >/dev/null; row shop.test "r['paused_until']")"

# ---- bad input: exit 1, nothing changes
state=$(ctl destinations --json)
one_line_error "a name with a space" "not a destination or provider name: bad name" pause "bad name"
one_line_error "a one-label name" "not a destination or provider name: localhost" pause localhost
one_line_error "an address" "not a destination or provider name" pause ann@shop.test
one_line_error "mx: alone" "not a destination or provider name" pause mx:
one_line_error "a bad duration" "--for needs a duration" pause other.test --for 5x
one_line_error "a zero duration" "--for needs a duration" pause other.test --for 0s
one_line_error "--for without a value" "--for needs a value" pause other.test --for
one_line_error "no name" "pause needs a destination or provider name" pause
one_line_error "two names" "unexpected argument: b.test" pause a.test b.test
fx_check_eq "refused pauses change nothing" "$state" "$(ctl destinations --json)"

# ---- resume
fx_check_eq "resume" "shop.test: resumed" "$(ctl resume SHOP.test)"
fx_check_eq "resumed: gone from the list" absent "$(row shop.test "r['name']")"
one_line_error "resume of a name not paused" "mxlanectl: shop.test is not paused" resume shop.test
one_line_error "resume of a name never paused" "mxlanectl: never.test is not paused" resume never.test
fx_check_eq "resume --json" '{"name":"mx:mx1.example.test","resumed":true,"due":0}' "$(ctl resume mx:mx1.example.test --json)"
ctl pause short.test --for 1s >/dev/null
sleep 2
fx_check_eq "a pause that ran out is not listed" absent "$(row short.test "r['name']")"
one_line_error "nor can it be resumed" "short.test is not paused" resume short.test

# ---- a live snapshot of a running qrunner (this shell's pid, written now): merged with the store
snapshot() {  # snapshot PID WRITTEN_MS > destinations.json (as the qrunner writes it: temp file + rename)
  cat > "$FX/queue/destinations.json.tmp" <<EOF
{"pid": $1, "written": $2,
 "destinations": [
   {"name": "example.test", "kind": "destination", "provider": "mx:.google.com", "mx": "mx1.example.test,mx2.example.test",
    "queued": 12, "inflight": 3, "connections": 2, "limit": 10,
    "paused_until": 0, "reason": "", "last_reply": "250 2.0.0 ok"},
   {"name": "mx:.google.com", "kind": "provider", "provider": "", "mx": ".google.com",
    "queued": 40, "inflight": 6, "connections": 4, "limit": 10,
    "paused_until": $(( $2 + 3600000 )), "reason": "421 4.7.28 rate limited", "last_reply": "421 4.7.28 rate limited"}
 ]}
EOF
  mv "$FX/queue/destinations.json.tmp" "$FX/queue/destinations.json"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
ctl pause example.test --for 2h >/dev/null
ctl pause a-extra.test >/dev/null
snapshot $$ "$(now_ms)"
fx_check_eq "live: the snapshot's rows in its order, then the store's other suspensions" \
  "example.test mx:.google.com a-extra.test" "$(ctl destinations --json | py 'import json,sys; print(" ".join(r["name"] for r in json.load(sys.stdin)))')"
fx_check_eq "live: a suspension the snapshot lacks has no numbers" "destination 0 0 0 0  forever" \
  "$(row a-extra.test "' '.join(str(r[k]) for k in ('kind','queued','inflight','connections','limit','mx','paused_until'))")"
ctl resume a-extra.test >/dev/null
fx_check_eq "live: example.test's numbers from the snapshot, its pause from the store" \
  "mx1.example.test,mx2.example.test 12 3 2 10 paused by mxlanectl 250 2.0.0 ok mx:.google.com" \
  "$(row example.test "' '.join(str(r[k]) for k in ('mx','queued','inflight','connections','limit','reason','last_reply','provider'))")"
fx_check_eq "live: the provider paused until resumed (the store's pause wins)" "forever paused by mxlanectl 40" \
  "$(row mx:.google.com "r['paused_until'] + ' ' + r['reason'] + ' ' + str(r['queued'])")"
fx_check "live: text shows the snapshot's numbers" bash -c \
  "'$FX_CTL' -c '$FX/mxlane.conf' destinations | grep -Eq '^example\.test +mx1\.example\.test,mx2\.example\.test +12 +3 +2 +10 +20[0-9-]+T[0-9:]+Z +paused by mxlanectl +250 2\.0\.0 ok$'"
ctl resume mx:.google.com >/dev/null
fx_check_eq "live: without the store's pause, the qrunner's own shows" "421 4.7.28 rate limited" \
  "$(row mx:.google.com "r['reason'] if r['paused_until'] else 'not paused'")"

# ---- a stopped qrunner's snapshot is ignored: dead pid, or written too long ago
sleep 0 & dead=$!
wait "$dead"
snapshot "$dead" "$(now_ms)"
fx_check_eq "dead pid: only the store's suspensions" "example.test 0 " \
  "$(ctl destinations --json | py 'import json,sys; print(" ".join(r["name"] + " " + str(r["queued"]) + " " + r["mx"] for r in json.load(sys.stdin)))')"
snapshot $$ "$(( $(now_ms) - 15000 ))"
fx_check_eq "written 15 s ago: ignored" "example.test 0" \
  "$(ctl destinations --json | py 'import json,sys; print(" ".join(r["name"] + " " + str(r["queued"]) for r in json.load(sys.stdin)))')"
fx_check "nothing said about a stale snapshot" bash -c "[ -z \"\$('$FX_CTL' -c '$FX/mxlane.conf' destinations 2>&1 >/dev/null)\" ]"

# ---- a malformed snapshot: noted on stderr, the store's suspensions still shown, exit 0
printf '{"pid": %s, "written": "soon", "destinations": []}' $$ > "$FX/queue/destinations.json"
out=$(ctl destinations --json 2>"$FX/err"); rc=$?
fx_check_eq "malformed: exit 0" 0 "$rc"
fx_check "malformed: noted on stderr" grep -q "ignoring $FX/queue/destinations.json: \"written\" is not a whole number" "$FX/err"
fx_check_eq "malformed: the store's suspension shown" "example.test" \
  "$(py 'import json,sys; print(" ".join(r["name"] for r in json.loads(sys.argv[1])))' "$out")"
# ---- text from remote servers in the snapshot cannot drive the terminal
printf '{"pid": %s, "written": %s, "destinations": [{"name": "example.test", "last_reply": "421 \\u001b]0;owned\\u0007 \\u001b[2J busy"}]}' \
  $$ "$(now_ms)" > "$FX/queue/destinations.json"
fx_check_eq "a reply with escape sequences: shown with ? in the text" "421 ?]0;owned? ?[2J busy" \
  "$(ctl destinations | sed -n 's/.*paused by mxlanectl  *//p')"
fx_check_eq "and as it was in --json" "as it was" \
  "$(row example.test "'as it was' if r['last_reply'] == '421 \x1b]0;owned\x07 \x1b[2J busy' else repr(r['last_reply'])")"
rm -f "$FX/queue/destinations.json"
fx_check_eq "no snapshot: not an error" "example.test" \
  "$(ctl destinations --json 2>&1 | py 'import json,sys; print(" ".join(r["name"] for r in json.load(sys.stdin)))')"
fx_done
