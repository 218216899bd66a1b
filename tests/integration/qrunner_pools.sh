#!/bin/bash
# qrunner_pools: source_pools: a pool's mail leaves from its addresses only, each with its own EHLO name;
# default_pool and submit --pool; warm-up caps per address and provider per day (a new day releases the rest);
# a source-scope throttle holds one address towards one provider only; mxlanectl pools; bad input.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_pools
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

fx_dns_start \
  'mx-host=pools.test,mx.pools.test,10' 'host-record=mx.pools.test,127.0.0.131' \
  'mx-host=ms.test,mx.ms.test,10' 'host-record=mx.ms.test,127.0.0.132' \
  'host-record=out2.pools.test,127.0.0.2' 'host-record=out3.pools.test,127.0.0.3' \
  'host-record=out4.pools.test,127.0.0.4'
fx_pysink_start "$FX/sink" "127.0.0.131:$P" "127.0.0.132:$P=throttle-from:127.0.0.2"
cat > "$FX/pools" <<'POOLS'
# pool    address     HELO name
news      127.0.0.2   out2.pools.test
news      127.0.0.3   out3.pools.test
notices   127.0.0.4   out4.pools.test   # transactional mail keeps its own reputation
POOLS
printf 'mx:.ms.test destination_concurrency=4\n' > "$FX/providers"
printf '/4\\.7\\.650/   source   throttle 1/h 90m\n' > "$FX/rules"
printf 'From: news@sender.test\nSubject: pools\n\nbody\n' > "$FX/msg.txt"
base=("smtp_port=$P" "source_pools=$FX/pools" "providers=$FX/providers" "reply_rules=$FX/rules"
      "retry_schedule=1h" "max_recipients_per_transaction=1")
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
# "peer helo rcpt" of every accepted message, sorted
accepted() { "$FX_PYTHON" -c "
import json,sys
for l in open('$FX/sink/accepted.jsonl'):
    r = json.loads(l)
    for a in r['rcpt']: print(r['peer'].rsplit(':',1)[0], r['helo'], a)" | sort; }
states() { ctl recipients "$1" --json | "$FX_PYTHON" -c "
import json,sys,collections
print(' '.join('%s=%d' % kv for kv in sorted(collections.Counter(r['state'] for r in json.load(sys.stdin)).items())))"; }

# ---- 1. pools: default_pool news for a job naming none; submit --pool notices; each address its EHLO
fx_write_conf "$FX/mxlane.conf" "${base[@]}" "default_pool=news"
ja=$(printf 'news%d@pools.test\n' 1 2 3 4 5 6 | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name ja)
printf 'address\n' > "$FX/notes.csv"
printf 'note%d@pools.test\n' 1 2 3 >> "$FX/notes.csv"
jb=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/notes.csv" --pool notices)
fx_check_eq "submit --pool notices: a job" 0 $?
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "every recipient delivered" "delivered=6 delivered=3" "$(states "$ja") $(states "$jb")"
fx_check_eq "news (default_pool) left from 127.0.0.2 and .3 only, in turn, each with its own EHLO name" \
  "$(printf '127.0.0.2 out2.pools.test %s\n' news1 news3 news5; printf '127.0.0.3 out3.pools.test %s\n' news2 news4 news6)" \
  "$(accepted | grep ' news' | sed 's/@pools.test//' | sort -k1,1 -k3,3)"
fx_check_eq "notices left from 127.0.0.4 only, with out4.pools.test" \
  "$(printf '127.0.0.4 out4.pools.test note%d@pools.test\n' 1 2 3)" "$(accepted | grep ' note')"
fx_check "no connection carried both pools' mail" "$FX_PYTHON" -c "
import json
for l in open('$FX/sink/connections.jsonl'):
    c = json.loads(l)
    kinds = {r['rcpt'][:4] for r in c['rcpts']}
    assert len(kinds) <= 1, c"
err=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/notes.csv" --pool nosuch 2>&1); rc=$?
fx_check_eq "submit --pool nosuch: exit 1" 1 "$rc"
fx_check_eq "... saying why" "mxlanectl: --pool: unknown pool nosuch (not in $FX/pools)" "$err"

# ---- 2. an unknown pool named by a job (a pool_header value, or a pool since removed): the job is held
jc=$(printf 'lost1@pools.test\n' | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name jc --pool gone)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "the job is held with the reason" "held: unknown pool gone (not in source_pools $FX/pools)" \
  "$(ctl job "$jc" --json | "$FX_PYTHON" -c "
import json,sys
j = json.load(sys.stdin)
print('%s: %s' % (j['state'], j['hold_reason']))")"
fx_check_eq "... nothing sent for it" 0 "$(accepted | grep -c lost1)"

# ---- 3. warm-up: 2 a day per address and provider on day 1, 3 on day 2; the rest waits for the next day
rm -rf "$FX/queue"
fx_write_conf "$FX/mxlane.conf" "${base[@]}" "warmup_schedule=2 3"
jw=$(printf 'warm%d@pools.test\n' 1 2 3 4 5 6 7 | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name jw --pool news)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "day 1: two from each address, three wait (queued, not deferred, no attempt counted)" \
  "delivered=4 queued=3" "$(states "$jw")"
fx_check "... due at the next UTC midnight" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' recipients $jw --json | '$FX_PYTHON' -c '
import json,sys,datetime
midnight = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).strftime(\"%Y-%m-%dT00:00:00\")
for r in json.load(sys.stdin):
    assert r[\"state\"] == \"delivered\" or (r[\"next_attempt\"].startswith(midnight) and r[\"attempts\"] == 0), r'"
fx_check_eq "... per address: 2 and 2" "2 2" \
  "$(accepted | grep -c '^127.0.0.2 .* warm') $(accepted | grep -c '^127.0.0.3 .* warm')"
fx_check "the log says why they wait" grep -q "warm-up: .* wait for the next day: every address of their pool is at its cap" "$FX/mxlane.log"
fx_check_eq "mxlanectl pools: day, count and cap per address and provider" \
  "$(printf '%s\n' 'news 127.0.0.2 out2.pools.test 1 mx:mx.pools.test 2 2' 'news 127.0.0.3 out3.pools.test 1 mx:mx.pools.test 2 2' \
                   'notices 127.0.0.4 out4.pools.test 1 None 0 2')" \
  "$(ctl pools --json | "$FX_PYTHON" -c "
import json,sys
for r in json.load(sys.stdin): print(r['pool'], r['address'], r['helo'], r['day'], r['provider'], r['sent_today'], r['cap'])")"
fx_check "mxlanectl pools (text): a row per address and provider" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' pools |
  grep -qE '^news +127.0.0.2 +out2.pools.test +1 +mx:mx.pools.test +2 +2 '"
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "another run the same day sends none of them" "delivered=4 queued=3" "$(states "$jw")"
# A new day, without waiting for one: the addresses move to day 2 of their warm-up (as an admin does
# for addresses warmed up elsewhere), which makes the mail waiting for the next day due, as midnight would.
ctl pools warmup 127.0.0.2 2 >/dev/null
fx_check_eq "pools warmup: day 2, the waiting mail due now" \
  '{"address":"127.0.0.3","day":2,"due":0}' "$(ctl pools warmup 127.0.0.3 2 --json)"
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "day 2: the waiting three are sent" "delivered=7" "$(states "$jw")"
fx_check "mxlanectl pools: day 2, cap 3" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' pools --json | '$FX_PYTHON' -c '
import json,sys
rows = {r[\"address\"]: r for r in json.load(sys.stdin)}
assert rows[\"127.0.0.2\"][\"day\"] == 2 and rows[\"127.0.0.2\"][\"cap\"] == 3, rows
assert rows[\"127.0.0.2\"][\"sent_today\"] + rows[\"127.0.0.3\"][\"sent_today\"] == 3, rows'"
err=$(ctl pools warmup 127.0.0.9 2 2>&1); rc=$?
fx_check_eq "pools warmup of an address not in source_pools: exit 1" 1 "$rc"

# ---- 4. a source-scope throttle: 451 4.7.650 to 127.0.0.2 from ms.test throttles that address towards
# mx:.ms.test only; 127.0.0.3 goes on, and 127.0.0.2 still sends to pools.test
rm -rf "$FX/queue"
fx_write_conf "$FX/mxlane.conf" "${base[@]}" "default_pool=news"
j1=$(printf 'ms%d@ms.test\n' 1 2 3 4 | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j1)  # makes the queue first
fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
qr=$FX_LAST_PID
fx_check "127.0.0.2 is throttled towards mx:.ms.test" fx_wait_for -t 30 \
  grep -q "sending address src:127.0.0.2/mx:.ms.test backing off after \"451 4.7.650 " "$FX/qrunner.out"
# mxlanectl pools merges the running qrunner's shaping: the throttle lives in its memory, not in the store
pools_throttles() { ctl pools --json | "$FX_PYTHON" -c "
import json,sys
for r in json.load(sys.stdin):
    if r['provider'] == 'mx:.ms.test':
        print(r['address'], r['throttle_per_hour'], r['throttled_until'] is not None, r['reason'][:11])"; }
fx_check "mxlanectl pools: 127.0.0.2 throttled to 1/h towards mx:.ms.test, 127.0.0.3 not" fx_wait_eq -t 10 \
  "$(printf '%s\n' '127.0.0.2 1 True 451 4.7.650' '127.0.0.3 None False ')" pools_throttles
fx_check "mxlanectl pools (text): the THROTTLE and THROTTLED_UNTIL columns" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' pools |
  grep -qE '^news +127.0.0.2 +out2.pools.test +1 +mx:.ms.test +[0-9]+ +- +[0-9]+ +1/h +20[0-9-]+T'"
count_from() { accepted | grep -c "^$1 .* $2"; }  # ADDRESS RCPT-REGEX: messages accepted from it
fx_check "127.0.0.3 delivers its share" fx_wait_eq -t 30 2 count_from 127.0.0.3 'ms[0-9]@ms.test'

j2=$(printf 'later%d@ms.test\n' 1 2 3 4 | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j2)
j3=$(printf 'other%d@pools.test\n' 1 2 | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j3)
fx_check "later mail to ms.test goes from 127.0.0.3 only" fx_wait_eq -t 30 4 count_from 127.0.0.3 later
fx_check_eq "... none of it from the throttled address" 0 "$(accepted | grep -c '^127.0.0.2 .* later')"
fx_check "127.0.0.2 still sends to another provider" fx_wait_eq -t 30 "delivered=2" states "$j3"
fx_check_eq "... one of them from 127.0.0.2" 1 "$(accepted | grep -c '^127.0.0.2 out2.pools.test other')"

# SIGHUP with a bad source_pools file: refused with FILE:LINE, the running settings kept
printf 'news 127.0.0.2 out2.pools.test\nnews 127.0.0.2 again.pools.test\n' > "$FX/pools.bad"
cp "$FX/pools" "$FX/pools.good" && cp "$FX/pools.bad" "$FX/pools"
kill -HUP "$qr"
fx_check "SIGHUP with a duplicate address: reload refused naming FILE:LINE" fx_wait_for -t 10 \
  grep -q "reload refused, keeping the running configuration: $FX/pools:2: duplicate address 127.0.0.2" "$FX/qrunner.out"
j4=$(printf 'after%d@pools.test\n' 1 2 | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j4)
fx_check "... and mail still goes from the pool's addresses" fx_wait_eq -t 30 "delivered=2" states "$j4"
fx_stop_pid "$qr"
cp "$FX/pools.good" "$FX/pools"
fx_check_eq "qrunner stopped: mxlanectl pools shows what the store has (no throttle, no connections)" "None None" \
  "$(ctl pools --json | "$FX_PYTHON" -c "
import json,sys
r = [r for r in json.load(sys.stdin) if r['address'] == '127.0.0.2' and r['provider'] == 'mx:.ms.test'][0]
print(r['throttle_per_hour'], r['connections'])")"

# ---- 5. bad input at start: duplicate address, malformed line, unknown default_pool, an address not here
start_error() {  # conf args...: the qrunner's exit status and first line of stderr
  fx_write_conf "$FX/bad.conf" "$@"
  local out rc
  out=$(timeout 20 "$FX_QRUNNER" -c "$FX/bad.conf" --once 2>&1 >/dev/null); rc=$?
  echo "$rc $(head -1 <<<"$out")"
}
fx_check "a duplicate address: exit 1, FILE:LINE" grep -q "^1 .*$FX/pools.bad:2: duplicate address 127.0.0.2 (already in pool news)" \
  <<<"$(start_error "smtp_port=$P" "source_pools=$FX/pools.bad")"
printf 'news 127.0.0.2\n' > "$FX/pools.short"
fx_check "a malformed line: exit 1, FILE:LINE" grep -q "^1 .*$FX/pools.short:1: expected POOL ADDRESS HELO_NAME" \
  <<<"$(start_error "smtp_port=$P" "source_pools=$FX/pools.short")"
fx_check "an unknown default_pool: exit 1" grep -q "^1 .*default_pool: no pool nosuch in source_pools" \
  <<<"$(start_error "smtp_port=$P" "source_pools=$FX/pools" "default_pool=nosuch")"
if command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
  # In a network namespace of its own the loopback interface is down: ::1 is not on that machine.
  printf 'v6 ::1 out6.pools.test\n' > "$FX/pools.v6"
  fx_write_conf "$FX/bad.conf" "smtp_port=$P" "source_pools=$FX/pools.v6"
  out=$(timeout 20 unshare -n "$FX_QRUNNER" -c "$FX/bad.conf" --once 2>&1 >/dev/null); rc=$?
  fx_check_eq "an address not on this machine: exit 1 at start" 1 "$rc"
  fx_check "... saying so" grep -q "source_pools $FX/pools.v6: cannot send from ::1 (pool v6): .*is the address on this machine" <<<"$out"
else
  fx_skip_part "unshare -n is not available: the unbindable address case"
fi

# ---- 6. IPv6: a pool address ::1 reaches an MX on ::1 from it, with its EHLO name
if "$FX_PYTHON" -c "import socket; s=socket.socket(socket.AF_INET6); s.bind(('::1', 0))" 2>/dev/null; then
  rm -rf "$FX/queue" "$FX/sink6"
  fx_stop_pid "$FX_PYSINK_PID"
  fx_dns_stop
  fx_dns_start 'mx-host=six.test,mx.six.test,10' 'host-record=mx.six.test,::1'
  fx_pysink_start "$FX/sink6" "::1:$P"
  printf 'v6 ::1 out6.pools.test\nv4 127.0.0.2 out2.pools.test\n' > "$FX/pools.v6"
  fx_write_conf "$FX/mxlane.conf" "smtp_port=$P" "source_pools=$FX/pools.v6" "default_pool=v6"
  j6=$(printf 'six%d@six.test\n' 1 2 | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j6)
  timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
  fx_check_eq "IPv6: delivered" "delivered=2" "$(states "$j6")"
  fx_check_eq "... from ::1 with out6.pools.test" "::1 out6.pools.test" \
    "$("$FX_PYTHON" -c "
import json
print(' '.join(sorted({json.loads(l)['peer'].rsplit(':',1)[0] + ' ' + json.loads(l)['helo'] for l in open('$FX/sink6/accepted.jsonl')})))")"
else
  fx_skip_part "no IPv6 on ::1 here"
fi
fx_done
