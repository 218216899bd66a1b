#!/bin/bash
# qrunner_relay: delivery_mode = relay through a private Postfix (milter port: the loop token; reinjection
# port), replies from the relay, max_messages_per_hour spreading a job, AUTH to a smarthost over TLS, VERP.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_relay
fx_need_built "$FX_QRUNNER" "$FX_CTL" "$FX_MILTER"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)
SP=$(fx_port 6)

# The sink behind Postfix, and a smarthost that wants AUTH after STARTTLS.
fx_make_cert "$FX/tls" smarthost 127.0.0.72
fx_pysink_start "$FX/sink" "127.0.0.71:$P" "127.0.0.72:$SP=tls:$FX/tls/smarthost.pem:$FX/tls/smarthost.key,auth:relayuser:s3cret"
printf 's3cret\n' > "$FX/relay.pass"
chmod 600 "$FX/relay.pass"

# Postfix refuses two addresses itself; the rest goes on to the sink.
printf 'hard1@sink.test 550 5.1.1 no such user here\nsoft1@sink.test 450 4.2.0 mailbox busy\n' > "$FX/rcpt_access"
FX_POSTFIX_MILTER=$(fx_postfix_milter_spec "unix:$FX/milter.sock")
FX_POSTFIX_TRANSPORT="sink.test smtp:[127.0.0.71]:$P"
fx_postfix_start "smtpd_recipient_restrictions = check_recipient_access texthash:$FX/rcpt_access, permit_mynetworks, reject"

conf() {
    fx_write_conf "$FX/mxlane.conf" delivery_mode=relay "notify_sender=none" "retry_schedule=1h" \
        "smtp_helo_name=qrunner.mxlane.test" "max_recipients_per_transaction=10" "$@"
}
# The milter on Postfix's main port stores anything with the bulk header that lacks a valid loop token.
conf "relay_host=[127.0.0.1]:$FX_PF_PORT"
printf 'From: news@sender.test\nX-Mxlane-Job: relay-test\nSubject: via the relay\n\nbody\n' > "$FX/msg.txt"
recipients() { "$FX_CTL" -c "$FX/mxlane.conf" recipients "$1" --json; }
state() { recipients "$1" | "$FX_PYTHON" -c "
import json,sys
for r in json.load(sys.stdin):
    if r['address']=='$2': print(r['state'], r['dsn'], r['attempts'])"; }
njobs() { "$FX_CTL" -c "$FX/mxlane.conf" jobs --json | "$FX_PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

# ---- 1. the main port, with the milter attached: the loop token lets the mail through
# (the job goes in first: two processes creating a fresh store at once is not what this tests)
job=$(printf '%s\n' a@sink.test b@sink.test hard1@sink.test soft1@sink.test |
      "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
fx_milter_start "$FX/mxlane.conf"
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "accepted by the relay: relayed" "relayed 2.0.0 1" "$(state "$job" a@sink.test)"
fx_check_eq "b relayed" "relayed 2.0.0 1" "$(state "$job" b@sink.test)"
fx_check_eq "5xx from the relay: bounced" "bounced 5.1.1 1" "$(state "$job" hard1@sink.test)"
fx_check_eq "4xx from the relay: deferred" "deferred 4.2.0 1" "$(state "$job" soft1@sink.test)"
sink_rcpts() { fx_pysink_rcpts "$FX/sink" | tr '\n' ' ' | sed 's/ $//'; }
fx_check "the mail arrives at the sink through Postfix" fx_wait_eq -t 20 "a@sink.test b@sink.test" sink_rcpts
fx_check "the milter saw the loop token and gave the message back" \
    grep -q "relayed by mxlane (valid X-Mxlane-Relayed), returned to the MTA" "$FX/milter.out"
fx_check_eq "the milter did not capture it again: still one job" 1 "$(njobs)"
fx_check "the relayed copy carries the loop token" grep -q '^X-Mxlane-Relayed: ' "$FX/sink/127.0.0.71.mbox"
fx_check "envelope sender kept" grep -q '"from": "news@sender.test"' "$FX/sink/accepted.jsonl"
fx_check "relay line in the log names the relay" \
    grep -qE "$job: to=<a@sink.test>, relay=127.0.0.1\[127.0.0.1\]:$FX_PF_PORT, delay=[0-9.]+, delays=[0-9./]+, dsn=2.0.0, status=sent" "$FX/mxlane.log"
fx_check "Postfix logged the relayed mail" grep -q "to=<a@sink.test>, relay=127.0.0.71" "$FX_PF_LOG"

# ---- 2. the reinjection port (no milters): the default way to hand mail back
conf "relay_host=[127.0.0.1]:$FX_PF_REINJECT_PORT"
job2=$(printf '%s\n' c@sink.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "reinjection port: relayed" "relayed 2.0.0 1" "$(state "$job2" c@sink.test)"
fx_check "c arrives at the sink" fx_wait_for -t 20 grep -q '"c@sink.test"' "$FX/sink/accepted.jsonl"
fx_check "Postfix took it on the reinjection port" grep -q "postfix/mxlane-reinject/smtpd.*client=" "$FX_PF_LOG"
fx_check "the reinjection listener's cleanup dropped the loop header (c's copy has none)" "$FX_PYTHON" -c "
import mailbox, sys
copies = [m for m in mailbox.mbox('$FX/sink/127.0.0.71.mbox') if m['X-Sink-Rcpt-To'] == '<c@sink.test>']
sys.exit(0 if len(copies) == 1 and copies[0]['X-Mxlane-Relayed'] is None and copies[0]['Subject'] == 'via the relay' else 1)"

# ---- 3. max_messages_per_hour on the relay: 3600 an hour is one a second
conf "relay_host=[127.0.0.1]:$FX_PF_REINJECT_PORT" "max_messages_per_hour=3600"
before=$(fx_pysink_count "$FX/sink")
job3=$(printf '%s\n' r1@sink.test r2@sink.test r3@sink.test r4@sink.test |
       "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test --per-message 1 --name "rate-$RANDOM")
t0=$(date +%s.%N)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
t1=$(date +%s.%N)
fx_check "4 messages at 3600/h take 3 s or more" awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 2.8) }'
fx_check "all 4 relayed in that run" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' recipients $job3 --state relayed --json |
    '$FX_PYTHON' -c 'import json,sys; assert len(json.load(sys.stdin)) == 4'"
fx_wait_eq -t 20 $((before + 4)) fx_pysink_count "$FX/sink" >/dev/null
fx_check "the relay got them about a second apart" "$FX_PYTHON" -c "
import json
t=sorted(json.loads(l)['t'] for l in open('$FX/sink/accepted.jsonl') if json.loads(l)['rcpt'][0].startswith('r'))
gaps=[b-a for a,b in zip(t,t[1:])]
assert len(t)==4 and min(gaps) > 0.6, gaps"

# 30 an hour: one goes now, the others wait in the queue for their turn (not bounced, not deferred, no attempt).
conf "relay_host=[127.0.0.1]:$FX_PF_REINJECT_PORT" "max_messages_per_hour=30"
job4=$(printf '%s\n' s1@sink.test s2@sink.test s3@sink.test |
       "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test --per-message 1 --name "rate-$RANDOM")
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check "30/h: one relayed, two queued for later, untried" bash -c "recipients() { '$FX_CTL' -c '$FX/mxlane.conf' recipients $job4 --json; }
    recipients | '$FX_PYTHON' -c '
import json,sys,datetime
rs=json.load(sys.stdin)
st=sorted(r[\"state\"] for r in rs)
assert st==[\"queued\",\"queued\",\"relayed\"], st
now=datetime.datetime.now(datetime.timezone.utc)
for r in rs:
    if r[\"state\"]==\"queued\":
        assert r[\"attempts\"]==0, r
        due=datetime.datetime.fromisoformat(r[\"next_attempt\"].replace(\"Z\",\"+00:00\"))
        assert due > now + datetime.timedelta(seconds=60), (due, now)
'"

# ---- 4. a smarthost with AUTH: credentials go only over TLS
conf "relay_host=[127.0.0.72]:$SP" "relay_username=relayuser" "relay_password_file=$FX/relay.pass"
job5=$(printf '%s\n' auth@far.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "smarthost with AUTH: relayed" "relayed 2.0.0 1" "$(state "$job5" auth@far.test)"
fx_check "the smarthost saw TLS and the login" "$FX_PYTHON" -c "
import json
r=[json.loads(l) for l in open('$FX/sink/accepted.jsonl') if 'auth@far.test' in l]
assert len(r)==1 and r[0]['tls'] and r[0]['auth']=='relayuser', r"

# ---- 5. VERP through the main port, the milter attached: the loop token is made for the VERP sender,
# so the milter gives each copy back instead of capturing it again
conf "relay_host=[127.0.0.1]:$FX_PF_PORT" "bounce_address=bounces@sender.test"
before=$(fx_pysink_count "$FX/sink")
job6=$(printf '%s\n' v1@sink.test v2@sink.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
jobs_before=$(njobs)
valid() { grep -c "relayed by mxlane (valid X-Mxlane-Relayed), returned to the MTA" "$FX/milter.out"; }
valid_before=$(valid)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "VERP via the milter port: both relayed" "relayed 2.0.0 1, relayed 2.0.0 1" \
    "$(state "$job6" v1@sink.test), $(state "$job6" v2@sink.test)"
fx_check "both arrive at the sink" fx_wait_eq -t 20 $((before + 2)) fx_pysink_count "$FX/sink"
fx_check_eq "each in its own transaction with its VERP sender" 2 \
    "$(grep -cE '"from": "bounces\+[a-z2-7]+@sender\.test", "rcpt": \["v[12]@sink\.test"\]' "$FX/sink/accepted.jsonl")"
fx_check_eq "the milter did not capture them again" "$jobs_before" "$(njobs)"
fx_check_eq "... for their loop tokens, valid for the VERP senders (not only for our Received: line)" \
    $((valid_before + 2)) "$(valid)"

# Nothing went out twice.
fx_check_eq "no recipient received twice" "" "$(fx_pysink_rcpts "$FX/sink" | uniq -d)"
fx_done
