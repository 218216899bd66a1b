#!/bin/bash
# qrunner_http: http_listen. One-click unsubscribe (RFC 8058): the List-Unsubscribe URL of a delivered
# copy answers GET with a page whose button POSTs and unsubscribes nobody; POST (curl, as a mailbox
# provider does) puts the address on the suppression list with reason unsubscribed, and the next job
# skips it; a forged token, another method, a huge body or a slow client change nothing. GET /metrics
# parses with the Prometheus client's own parser and its counts match the store.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_http
fx_need_built "$FX_QRUNNER" "$FX_CTL"
fx_need curl
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)
H=$(fx_port 6)

fx_dns_start 'mx-host=shop.test,mx.shop.test,10' 'host-record=mx.shop.test,127.0.0.151'
fx_pysink_start "$FX/sink" "127.0.0.151:$P"
fx_write_conf "$FX/mxlane.conf" "smtp_port=$P" "notify_sender=none" "retry_schedule=1h" \
    "http_listen=127.0.0.1:$H" "unsubscribe_url=http://127.0.0.1:$H/u/" "event_log=$FX/events.jsonl"
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
printf 'From: news@sender.test\nSubject: http\n\nbody\n' > "$FX/msg.txt"

# ---- a bad http_listen stops the start
fx_write_conf "$FX/bad.conf" "smtp_port=$P" "http_listen=localhost"
out=$(timeout 30 "$FX_QRUNNER" -c "$FX/bad.conf" -f 2>&1)
fx_check_eq "http_listen without a port: exit 1" 1 $?
fx_check "... saying why" grep -q 'http_listen: no port: "localhost"' <<<"$out"

fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
qr=$FX_LAST_PID
fx_check "the qrunner serves HTTP" fx_wait_port 127.0.0.1 "$H"
# The port listens before the store is open (it is bound as root): jobs go in once the qrunner runs.
fx_check "the qrunner runs" fx_wait_for -t 10 test -s "$FX/queue/destinations.json"
j1=$(printf '%s\n' ann@shop.test bob@shop.test hard1@shop.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j1)
fx_check "the job is delivered" fx_wait_for -t 20 bash -c "ctl() { '$FX_CTL' -c '$FX/mxlane.conf' \"\$@\"; }
    [ \"\$(ctl recipients $j1 | grep -c -E 'delivered|bounced')\" -eq 3 ]"
# the first delivered copy: the URL in its List-Unsubscribe field
url=$("$FX_PYTHON" -c "
import mailbox, re
for m in mailbox.mbox('$FX/sink/127.0.0.151.mbox'):
    for u in re.findall(r'<(http[^>]+)>', m.get('List-Unsubscribe', '')):
        print(u)
" | head -n 1)
fx_check "the copy names an unsubscribe URL on http_listen" grep -q "^http://127.0.0.1:$H/u/[a-z2-7]*\$" <<<"$url"
who=$(ctl recipients "$j1" --json | "$FX_PYTHON" -c "import json,sys; print(' '.join(r['address'] for r in json.load(sys.stdin)))")

page=$(curl -s -o "$FX/page.html" -w '%{http_code}' "$url")
fx_check_eq "GET answers 200" 200 "$page"
fx_check "... with a page whose button POSTs" grep -q '<form method="post">' "$FX/page.html"
addr=$(grep -o '<b>[^<]*</b>' "$FX/page.html" | head -n 1 | sed 's/<[^>]*>//g')
fx_check "... naming one of the job's recipients" grep -qw -- "$addr" <<<"$who"
fx_check "a GET alone unsubscribes nobody" bash -c "! '$FX_CTL' -c '$FX/mxlane.conf' suppress list | grep -q '$addr'"

code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d 'List-Unsubscribe=One-Click' "$url")
fx_check_eq "one-click POST answers 200" 200 "$code"
fx_check "the address is suppressed with reason unsubscribed" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' suppress list --json |
    '$FX_PYTHON' -c '
import json,sys
rows = {r[\"address\"]: r for r in json.load(sys.stdin)}
assert rows[\"$addr\"][\"reason\"] == \"unsubscribed\", rows'"
fx_check_eq "a second POST is fine too" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d 'List-Unsubscribe=One-Click' "$url")"
fx_check_eq "one unsubscribed event, the GET and the second POST none" "$addr" \
    "$("$FX_PYTHON" -c "
import json
print(' '.join(e['recipient'] for e in map(json.loads, open('$FX/events.jsonl')) if e['type'] == 'unsubscribed'))")"

# ---- what must change nothing
n_before=$(ctl suppress list --json | "$FX_PYTHON" -c "import json,sys; print(len(json.load(sys.stdin)))")
token=${url##*/}
forged=${token:0:-1}$( [ "${token: -1}" = a ] && echo b || echo a )
fx_check_eq "a forged token: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$H/u/$forged")"
fx_check_eq "garbage: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$H/u/..%2f..%2fetc")"
fx_check_eq "DELETE: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$url")"
fx_check_eq "another path: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$H/admin")"
head -c 100000 /dev/zero | tr '\0' x > "$FX/big"
fx_check_eq "a 100 kB body: 413" 413 "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$FX/big" "$url")"
# a client that sends half a request and waits is dropped after the request timeout
start=$(date +%s)
"$FX_PYTHON" -c "
import socket
s = socket.create_connection(('127.0.0.1', $H)); s.sendall(b'POST /u/x HTTP/1.1\r\nHost: x\r\n')
s.settimeout(30)
print(len(s.recv(100)))" > "$FX/slow.out"
fx_check "a slow client is dropped within the request timeout" \
    bash -c "[ \$(( \$(date +%s) - $start )) -le 15 ] && [ \"\$(cat '$FX/slow.out')\" = 0 ]"
fx_check_eq "nothing more was suppressed" "$n_before" \
    "$(ctl suppress list --json | "$FX_PYTHON" -c "import json,sys; print(len(json.load(sys.stdin)))")"

# ---- the next job skips the unsubscribed address
j2=$(printf '%s\n' "$addr" | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j2)
fx_check "the next job does not mail it" fx_wait_for -t 20 bash -c \
    "'$FX_CTL' -c '$FX/mxlane.conf' recipients $j2 | grep -q suppressed"

# ---- /metrics: the Prometheus client's parser reads it; the counts are the store's
curl -s "http://127.0.0.1:$H/metrics" > "$FX/metrics.txt"
fx_check "/metrics parses, and its recipient counts match the store" /usr/bin/python3 -c "
import json, subprocess
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open('$FX/metrics.txt').read())}
got = {s.labels['state']: s.value for s in fams['mxlane_recipients'].samples}
want = {}
for job in json.loads(subprocess.check_output(['$FX_CTL', '-c', '$FX/mxlane.conf', 'jobs', '--json'])):
    for state, n in job['counts'].items():
        want[state] = want.get(state, 0) + n
for state, n in want.items():
    assert got.get(state, 0) == n, (state, got, want)
assert got['delivered'] == 2 and got['bounced'] == 1 and got['suppressed'] == 1, got
assert fams['mxlane_suppressed_addresses'].samples[0].value >= 2
assert fams['mxlane_store_bytes'].samples[0].value > 100000, fams['mxlane_store_bytes']
assert fams['mxlane_queue_age_seconds'].samples[0].value == 0  # nothing left to send
lat = {s.labels.get('le'): s.value for s in fams['mxlane_delivery_latency_seconds'].samples if s.name.endswith('_bucket')}
assert lat['+Inf'] == 3, lat  # ann, bob, hard1 (the suppressed one was never claimed)
res = {(s.labels['state'], s.labels['class']): s.value for s in fams['mxlane_results'].samples}
assert res[('bounced', 'invalid-recipient')] == 1 and res[('delivered', '')] == 2, res
dest = {s.labels['name']: s.value for s in fams['mxlane_destination_connections'].samples}
assert 'shop.test' in dest, dest
"
fx_check "every metric the shipped Grafana dashboard reads is served" /usr/bin/python3 -c "
import json, re
from prometheus_client.parser import text_string_to_metric_families
names = set()
for f in text_string_to_metric_families(open('$FX/metrics.txt').read()):
    names |= {s.name for s in f.samples}
dash = json.load(open('$MXLANE_SRCDIR/conf/grafana-dashboard.json'))
used = {m for p in dash['panels'] for t in p['targets'] for m in re.findall(r'mxlane_[a-z_]+', t['expr'])}
# the webhook's are served with event_webhook on (qrunner_webhook reads them)
used = {m for m in used if not m.startswith('mxlane_webhook_')}
assert used and used <= names, sorted(used - names)
"
fx_stop_pid "$qr"
fx_done
