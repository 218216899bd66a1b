#!/bin/bash
# qrunner_dialogue: the qrunner's SMTP dialogue as receivers see it: failures after DATA, a 421
# greeting, pipelining on and off, connection reuse, personalised vs batched transactions, hostile servers.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_dialogue
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

fx_dns_start \
  'mx-host=data.test,mx.data.test,10' 'host-record=mx.data.test,127.0.0.71' \
  'mx-host=greet.test,mx1.greet.test,10' 'mx-host=greet.test,mx2.greet.test,20' \
  'host-record=mx1.greet.test,127.0.0.72' 'host-record=mx2.greet.test,127.0.0.73' \
  'mx-host=nopipe.test,mx.nopipe.test,10' 'host-record=mx.nopipe.test,127.0.0.74' \
  'mx-host=reuse.test,mx.reuse.test,10' 'host-record=mx.reuse.test,127.0.0.75' \
  'mx-host=drip.test,mx.drip.test,10' 'host-record=mx.drip.test,127.0.0.76' \
  'mx-host=garbage.test,mx.garbage.test,10' 'host-record=mx.garbage.test,127.0.0.77' \
  'mx-host=drop.test,mx.drop.test,10' 'host-record=mx.drop.test,127.0.0.78' \
  'mx-host=long.test,mx.long.test,10' 'host-record=mx.long.test,127.0.0.79'
fx_pysink_start "$FX/sink" "127.0.0.71:$P" "127.0.0.72:$P=421" "127.0.0.73:$P" "127.0.0.74:$P=nopipelining" \
  "127.0.0.75:$P" "127.0.0.76:$P=hostile-drip" "127.0.0.77:$P=hostile-garbage" "127.0.0.78:$P=hostile-dropdata" \
  "127.0.0.79:$P=hostile-longline"

fx_write_conf "$FX/mxlane.conf" "smtp_port = $P" "retry_schedule = 1h" "destination_concurrency = 1" \
  "max_messages_per_connection = 4" "smtp_helo_timeout = 3s" "smtp_data_done_timeout = 3s" \
  "smtp_rcpt_timeout = 3s" "smtp_mail_timeout = 3s" "smtp_data_init_timeout = 3s"
printf 'From: news@sender.test\nSubject: dialogue\n\nbody\n' > "$FX/msg.txt"
rcpts() { printf '%s\n' "$@"; }
# One message each for the DATA failures: the reply after the dot decides every accepted recipient.
j1=$(rcpts datahard1@data.test ok1@data.test | "$MKJOB" "$FX/queue" "$FX/msg.txt")
j2=$(rcpts datasoft1@data.test ok2@data.test | "$MKJOB" "$FX/queue" "$FX/msg.txt")
j3=$(rcpts a@greet.test b@nopipe.test d@drip.test g@garbage.test x@drop.test l@long.test | "$MKJOB" "$FX/queue" "$FX/msg.txt")
# reuse.test: 10 one-recipient messages over one connection at a time, 4 per connection.
for i in 0 1 2 3 4 5 6 7 8 9; do rcpts "r$i@reuse.test"; done | "$MKJOB" "$FX/queue" "$FX/msg.txt" --per-message 1 >/dev/null
# Personalised: one transaction per recipient; the same list as a plain message: one transaction.
printf 'From: news@sender.test\nSubject: Hello {{name}}\n\nDear {{name}}, code {{code}}\n' > "$FX/tmpl.txt"
printf 'address,name,code\np1@data.test,Ann,A1\np2@data.test,"Bob, Jr.",B2\np3@data.test,Cy,C3\n' > "$FX/list.csv"
jp=$("$FX_CTL" -c "$FX/mxlane.conf" submit --message "$FX/tmpl.txt" --recipients "$FX/list.csv" --from news@sender.test 2>&1 | grep -o 'J[0-9A-F]*' | head -1)
fx_check "personalised job submitted" test -n "$jp"
start=$(date +%s)
timeout 90 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
elapsed=$(( $(date +%s) - start ))

state() { "$FX_CTL" -c "$FX/mxlane.conf" recipients "$1" --json | /usr/bin/python3 -c "
import json,sys
for r in json.load(sys.stdin):
    if r['address']=='$2': print(r['state'], r['dsn'])"; }
fx_check_eq "554 after DATA bounces the accepted recipient" "bounced 5.6.0" "$(state "$j1" ok1@data.test)"
fx_check_eq "... and the one that asked for it" "bounced 5.6.0" "$(state "$j1" datahard1@data.test)"
fx_check_eq "451 after DATA defers the accepted recipient" "deferred 4.3.0" "$(state "$j2" ok2@data.test)"
fx_check_eq "421 greeting: the next MX delivers" "delivered 2.0.0" "$(state "$j3" a@greet.test)"
fx_check_eq "no PIPELINING offered: delivered" "delivered 2.0.0" "$(state "$j3" b@nopipe.test)"
for a in d@drip.test g@garbage.test x@drop.test l@long.test; do
  s=$(state "$j3" $a)
  fx_check "hostile $a deferred with a 4.x.x reason ($s)" bash -c "[[ '$s' == 'deferred 4.'* ]]"
done
fx_check "hostile servers did not hold the run up (${elapsed}s)" test "$elapsed" -lt 40
fx_check "the drip server's deferral says it timed out" grep -qE "to=<d@drip.test>.*status=deferred \(.*timed out" "$FX/mxlane.log"

conns() { /usr/bin/python3 -c "
import json
print(sum(1 for l in open('$FX/sink/connections.jsonl') if json.loads(l)['ip']=='$1'))"; }
fx_check_eq "10 reuse.test messages used 3 connections (4 per connection)" 3 "$(conns 127.0.0.75)"
fx_check "pipelined commands went to the pipelining sink" /usr/bin/python3 -c "
import json
c=[json.loads(l) for l in open('$FX/sink/connections.jsonl')]
assert any(x['ip']=='127.0.0.71' and x['early_commands']>0 for x in c), c"
fx_check "nothing pipelined to the sink that does not offer it" /usr/bin/python3 -c "
import json
c=[json.loads(l) for l in open('$FX/sink/connections.jsonl')]
assert all(x['early_commands']==0 for x in c if x['ip']=='127.0.0.74')"
fx_check "personalised: one transaction per recipient with its own fields" /usr/bin/python3 -c "
import json
acc=[json.loads(l) for l in open('$FX/sink/accepted.jsonl')]
p=[a for a in acc if any(r.startswith('p') for r in a['rcpt'])]
assert len(p)==3 and all(len(a['rcpt'])==1 for a in p), p"
fx_check "each personalised message carries its fields" bash -c "grep -q 'Subject: Hello Bob, Jr.' '$FX/sink/127.0.0.71.mbox' && grep -q 'Dear Cy, code C3' '$FX/sink/127.0.0.71.mbox'"
fx_done
