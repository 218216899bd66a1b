#!/bin/bash
# qrunner_webhook: event_webhook. A mixed job (delivered, bounced, deferred) delivered while the receiver
# is down waits in webhook.spool, through a restart of the qrunner; the receiver, started late and
# answering 500 first, then gets every event of event_log exactly once, in signed JSON-array batches.
# A receiver answering with a 10 MB body does no harm; /metrics has the backlog and the POSTs;
# a --once run leaves its events to the next daemon; a bad URL stops the start.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_webhook
fx_need_built "$FX_QRUNNER" "$FX_CTL"
fx_need curl
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
SINK=$MXLANE_SRCDIR/tests/fixtures/webhook_sink.py
P=$(fx_port 1)
W=$(fx_port 2)
H=$(fx_port 3)
SECRET='s3cret key'

fx_dns_start 'mx-host=ok.test,mx.ok.test,10' 'host-record=mx.ok.test,127.0.0.111'
fx_pysink_start "$FX/mx" "127.0.0.111:$P"
fx_write_conf "$FX/mxlane.conf" "smtp_port=$P" "retry_schedule=1h" "max_recipients_per_transaction=1" \
    "event_log=$FX/events.jsonl" "event_webhook=http://127.0.0.1:$W/hooks/mail" \
    "event_webhook_secret=$SECRET" "http_listen=127.0.0.1:$H"
printf 'From: news@sender.test\nSubject: webhook\n\nbody\n' > "$FX/msg.txt"
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
decided() {  # recipients of job $1 no longer queued or in flight
    ctl recipients "$1" --json | "$FX_PYTHON" -c "
import json,sys
print(sum(1 for r in json.load(sys.stdin) if r['state'] in ('delivered','bounced','deferred')))"; }
metric() { curl -s "http://127.0.0.1:$H/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
lines() { [ -f "$1" ] && wc -l < "$1" || echo 0; }
# The events the receiver took (answered 200), one per line as the event_log line would parse.
taken() { "$FX_PYTHON" -c "
import json
for l in open('$FX/posts.jsonl'):
    p = json.loads(l)
    if p['status'] == 200:
        for e in p['events']: print(json.dumps(e, sort_keys=True))" | sort; }
logged() { "$FX_PYTHON" -c "
import json
for l in open('$FX/events.jsonl'): print(json.dumps(json.loads(l), sort_keys=True))" | sort; }

# ---- a URL that does not parse stops the start
fx_write_conf "$FX/bad.conf" "smtp_port=$P" "event_webhook=ftp://127.0.0.1/x"
out=$(timeout 30 "$FX_QRUNNER" -c "$FX/bad.conf" -f 2>&1)
fx_check_eq "a bad event_webhook: exit 1" 1 $?
fx_check "... saying why" grep -q 'event_webhook: must start with http:// or https://' <<<"$out"

# ---- a --once run writes the spool and sends nothing (the receiver is down anyway)
j0=$(printf '%s\n' once@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j0)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check "--once: its events are in the spool" grep -q '"recipient":"once@ok.test"' "$FX/queue/webhook.spool"
fx_check "--once: it did not try to send" bash -c "! grep -q 'event_webhook' '$FX/mxlane.log'"
fx_check_eq "--once: nothing acknowledged" "" "$(cat "$FX/queue/webhook.offset" 2>/dev/null)"

# ---- a daemon delivers a mixed job while the receiver is down
fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
qr=$FX_LAST_PID
fx_check "the qrunner serves HTTP" fx_wait_port 127.0.0.1 "$H"
fx_check "the qrunner runs" fx_wait_for -t 10 test -s "$FX/queue/destinations.json"
j1=$(printf '%s\n' ann@ok.test bob@ok.test hard1@ok.test full1@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j1)
fx_check "the job is delivered, bounced, deferred" fx_wait_eq -t 30 4 decided "$j1"
fx_check "event_log has its events (and j0's and j0's done)" fx_wait_eq -t 10 6 lines "$FX/events.jsonl"
fx_check "POSTs fail while the receiver is down" fx_wait_for -t 10 bash -c \
    "[ \"\$(curl -s http://127.0.0.1:$H/metrics | awk '\$1 == \"mxlane_webhook_posts_total{result=\\\"failed\\\"}\" {print \$2}')\" -ge 1 ]"
fx_check_eq "the backlog is the whole spool" "$(stat -c %s "$FX/queue/webhook.spool")" "$(metric mxlane_webhook_backlog_bytes)"
fx_check "a warning says so" grep -q 'event_webhook 127.0.0.1:[0-9]*: cannot deliver events (Connection refused)' "$FX/qrunner.out"
sleep 4  # retries with backoff (1 s, 2 s ...): still one warning
fx_check_eq "one warning per outage" 1 "$(grep -c 'cannot deliver events' "$FX/qrunner.out")"
fx_check_eq "nothing acknowledged" "" "$(cat "$FX/queue/webhook.offset" 2>/dev/null)"
fx_stop_pid "$qr"

# ---- the receiver starts (answering 500 once), and so does a new qrunner: nothing was lost
fx_spawn sink "$FX_PYTHON" "$SINK" "127.0.0.1:$W" "$FX/posts.jsonl" --secret "$SECRET" --fail-first 1
sink=$FX_LAST_PID
fx_check "the receiver listens" fx_wait_port 127.0.0.1 "$W"
fx_spawn qrunner2 "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
qr=$FX_LAST_PID
fx_check "the batch refused with 500 comes again, and is taken" fx_wait_eq -t 20 2 lines "$FX/posts.jsonl"
fx_check_eq "first 500, then 200" "500 200" "$("$FX_PYTHON" -c "
import json; print(' '.join(str(json.loads(l)['status']) for l in open('$FX/posts.jsonl')))")"
fx_check_eq "the same batch both times" 1 "$("$FX_PYTHON" -c "
import json; print(len(set(json.dumps(json.loads(l)['events']) for l in open('$FX/posts.jsonl'))))")"
fx_check "the log says the receiver takes events again" fx_wait_for -t 5 grep -q 'the receiver takes events again' "$FX/qrunner2.out"
fx_check_eq "every event of event_log, exactly once" "$(logged)" "$(taken)"
fx_check_eq "the backlog is empty" 0 "$(metric mxlane_webhook_backlog_bytes)"

# ---- with the receiver up, new events arrive within seconds
j2=$(printf '%s\n' cat@ok.test dan@ok.test hard2@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j2)
fx_check "j2 is decided" fx_wait_eq -t 30 3 decided "$j2"
fx_check "its events reach the receiver" fx_wait_for -t 10 bash -c \
    "[ \"\$(grep -c '\"$j2\"' '$FX/events.jsonl')\" -ge 4 ] && grep -q 'hard2@ok.test' '$FX/posts.jsonl'"
sleep 1.5
fx_check_eq "every event of event_log, exactly once" "$(logged)" "$(taken)"

# ---- a receiver answering with a 10 MB body: taken as a 200, nothing stored, the qrunner goes on
fx_stop_pid "$sink"
fx_spawn sink2 "$FX_PYTHON" "$SINK" "127.0.0.1:$W" "$FX/posts.jsonl" --secret "$SECRET" --big-body 10485760
fx_check "the receiver listens again" fx_wait_port 127.0.0.1 "$W"
ok_before=$(metric 'mxlane_webhook_posts_total{result="ok"}')
j3=$(printf '%s\n' eve@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j3)
fx_check "j3 is decided" fx_wait_eq -t 30 1 decided "$j3"
fx_check "its events reach the receiver" fx_wait_for -t 10 grep -q 'eve@ok.test' "$FX/posts.jsonl"
fx_check "the POST counts as ok" fx_wait_for -t 5 bash -c \
    "[ \"\$(curl -s http://127.0.0.1:$H/metrics | awk '\$1 == \"mxlane_webhook_posts_total{result=\\\"ok\\\"}\" {print \$2}')\" -gt $ok_before ]"
sleep 1.5
fx_check_eq "sent once: the big answer did not make it a failure" "$(logged)" "$(taken)"
fx_check "the qrunner still runs" kill -0 "$qr"
fx_check_eq "no failure since the 500" 1 "$(grep -c 'cannot deliver events' "$FX/qrunner2.out")"
fx_check_eq "its memory stays small (VmRSS below 200 MB)" 1 "$(awk '/VmRSS/ {print ($2 < 204800)}' /proc/$qr/status)"

# ---- every POST: a JSON array, application/json, correctly signed; events went in batches
fx_check "every POST is a signed JSON array" "$FX_PYTHON" -c "
import json
posts = [json.loads(l) for l in open('$FX/posts.jsonl')]
assert posts and all(p['raw_ok'] and p['signature_ok'] and p['content_type'] == 'application/json' for p in posts), posts
assert max(len(p['events']) for p in posts) > 1, 'one event per POST'
"
fx_check "the events match recipients --json" "$FX_PYTHON" -c "
import json, subprocess
taken = [e for l in open('$FX/posts.jsonl') for p in [json.loads(l)] if p['status'] == 200 for e in p['events']]
for job in ['$j0', '$j1', '$j2', '$j3']:
    got = sorted((e['recipient'], e['type']) for e in taken if e['job'] == job and e['type'] != 'job')
    want = sorted((r['address'], r['state']) for r in json.loads(subprocess.check_output(
        ['$FX_CTL', '-c', '$FX/mxlane.conf', 'recipients', job, '--json'])))
    assert got == want, (job, got, want)
"
fx_stop_pid "$qr"

# ---- https: a receiver whose certificate the system's CA store does not vouch for gets nothing
T=$(fx_port 4)
fx_make_selfsigned "$FX/tls" hook 127.0.0.1
fx_spawn sink3 "$FX_PYTHON" "$SINK" "127.0.0.1:$T" "$FX/posts-tls.jsonl" --tls "$FX/tls/hook.pem" "$FX/tls/hook.key"
fx_check "the https receiver listens" fx_wait_port 127.0.0.1 "$T"
fx_write_conf "$FX/tls.conf" "smtp_port=$P" "retry_schedule=1h" "event_log=$FX/events.jsonl" \
    "event_webhook=https://127.0.0.1:$T/hooks/mail" "http_listen=127.0.0.1:$H"
fx_spawn qrunner3 "$FX_QRUNNER" -c "$FX/tls.conf" -f
qr=$FX_LAST_PID
j4=$(printf '%s\n' fay@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j4)
fx_check "j4 is decided" fx_wait_eq -t 30 1 decided "$j4"
fx_check "https: the untrusted certificate is refused" fx_wait_for -t 10 grep -q \
    'event_webhook 127.0.0.1:[0-9]*: cannot deliver events (.*certificate verify failed' "$FX/qrunner3.out"
fx_check_eq "... and the receiver got nothing" "" "$(cat "$FX/posts-tls.jsonl" 2>/dev/null)"
fx_check "j4's events wait in the spool" bash -c "[ \"\$(curl -s http://127.0.0.1:$H/metrics | awk '\$1 == \"mxlane_webhook_backlog_bytes\" {print \$2}')\" -gt 0 ]"
fx_stop_pid "$qr"
fx_done
