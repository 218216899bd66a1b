#!/bin/bash
# demo.sh: installs what is missing, builds, and runs the whole product on loopback: a private Postfix
# with mxlane-milter attached, mxlane-qrunner in combined mode, dnsmasq, and sinks that accept, refuse
# and defer; one bulk job goes through Postfix, is delivered, retried once and reported.
#
#   bash scripts/demo.sh            (as root, Debian 12)
#   MXLANE_DEMO_KEEP=1 bash scripts/demo.sh     keeps the run's directory (logs, queue, configs)
#
# Everything it starts listens on 127.0.0.x only, runs under one temporary directory and is stopped
# by its pid when the demo ends (also on Ctrl-C or an error); the machine's own mail system is not used.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "demo: run it as root (it installs packages and runs a private Postfix)" >&2; exit 1; }
bash "$top/scripts/deps.sh"
bash "$top/scripts/build.sh"
export MXLANE_SRCDIR=$top MXLANE_BUILDDIR=${MXLANE_BUILD:-$top/build}
[ -n "${MXLANE_DEMO_KEEP:-}" ] && export FX_KEEP=1

# The test fixtures start and stop every server by pid (they turn errexit off).
. "$top/tests/fixtures/lib.sh"
fx_init demo 2>/dev/null
fx_need_built
set -u

PY=$FX_PYTHON
CONF=$FX/mxlane.conf
SMTP_PORT=$(fx_port 5)
JOB_NAME=spring-newsletter
SENDER=news@shop.test
T0=$(date +%s%N)

section() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
ctl() { "$FX_CTL" -c "$CONF" "$@"; }
elapsed() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

# counts: one line of recipient counts of the demo's job, the states that are not zero.
counts() {
    ctl job "$JOB" --json | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
order = ["queued", "delivered", "relayed", "deferred", "bounced", "suppressed", "expired", "held"]
parts = ["%s %d" % (s, j["counts"][s]) for s in order if j["counts"].get(s)]
print("  ".join(parts) + ("  (in flight %d)" % j["inflight"] if j["inflight"] else ""))'
}
# settled: nothing queued and nothing in flight.
settled() {
    ctl job "$JOB" --json | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
sys.exit(0 if j["counts"]["queued"] == 0 and j["inflight"] == 0 else 1)'
}

# ---------------------------------------------------------------------------------------------
section "Setting up on loopback (ports $FX_PORT-$((FX_PORT + 19)), files in $FX)"

# Receiving MX hosts, all Postfix smtp-sink on $SMTP_PORT at their own address. They answer the
# end of DATA after 1 s, as a remote server might, so that the progress below has something to show.
fx_smtp_sink mx-a 127.0.0.11 "$SMTP_PORT" -w 1
fx_smtp_sink mx-b 127.0.0.12 "$SMTP_PORT" -w 1
fx_smtp_sink mx-c 127.0.0.13 "$SMTP_PORT" -w 1
fx_smtp_sink mx-refuse 127.0.0.14 "$SMTP_PORT" -f RCPT -B "550 5.1.1 Recipient address rejected: User unknown"
fx_smtp_sink mx-grey 127.0.0.15 "$SMTP_PORT" -r RCPT -b "451 4.7.1 Greylisted, please try again later"
GREY_PID=$FX_SMTP_SINK_PID
# The relay's own next hop (a smarthost upstream of the host Postfix).
fx_smtp_sink upstream 127.0.0.20 "$SMTP_PORT"

fx_dns_start \
    'mx-host=news-a.test,mx.news-a.test,10' 'host-record=mx.news-a.test,127.0.0.11' \
    'mx-host=news-b.test,mx.news-b.test,10' 'host-record=mx.news-b.test,127.0.0.12' \
    'mx-host=news-c.test,mx.news-c.test,10' 'host-record=mx.news-c.test,127.0.0.13' \
    'mx-host=refuse.test,mx.refuse.test,10' 'host-record=mx.refuse.test,127.0.0.14' \
    'mx-host=grey.test,mx.grey.test,10' 'host-record=mx.grey.test,127.0.0.15' \
    'mx-host=down.test,mx.down.test,10' 'host-record=mx.down.test,127.0.0.16'

say "DNS      dnsmasq on $FX_DNS with MX records for six domains"
say "MX       news-a/b/c.test  127.0.0.11-13  accept every recipient"
say "         refuse.test      127.0.0.14     550 5.1.1 for every recipient"
say "         grey.test        127.0.0.15     451 4.7.1 (greylisting) for every recipient"
say "         down.test        127.0.0.16     nothing listens: connection refused"

# mxlane: the milter takes over every message with the job header; the qrunner delivers direct
# by MX, and hands what fails temporarily to the host Postfix's reinjection listener. Small
# transactions and few connections per domain, so that the progress is visible.
HELO=qrunner.shop.test
fx_write_conf "$CONF" \
    "myhostname = mta.shop.test" \
    "intercept_action = discard" \
    "delivery_mode = combined" \
    "relay_host = [127.0.0.1]:$(fx_port 2)" \
    "smtp_port = $SMTP_PORT" \
    "smtp_helo_name = $HELO" \
    "smtp_tls_security_level = none" \
    "dns_timeout = 2s" \
    "destination_concurrency = 2" \
    "max_recipients_per_transaction = 20" \
    "retry_schedule = 10m 30m 1h" \
    "notify_sender = none"
fx_milter_start "$CONF"
say "milter   mxlane-milter on $FX_MILTER_SOCKET (bulk_header X-Mxlane-Job, intercept_action discard)"

# The host Postfix: smtpd on port 1 with the milter, reinjection listener on port 2 (no milter),
# everything it delivers goes to the upstream smarthost. Its postmaster has paused grey.test
# for mail arriving from the qrunner (450 from an access map), so grey.test recipients stay
# in mxlane's queue, deferred, instead of moving to Postfix's.
printf '%s relay_paused\n' "$HELO" > "$FX/relay_helo"
printf 'grey.test 450 4.7.1 <grey.test>: relay paused for this domain by the postmaster\n' > "$FX/relay_paused"
FX_POSTFIX_MILTER=$(fx_postfix_milter_spec "$FX_MILTER_SOCKET")
FX_POSTFIX_RELAYHOST="[127.0.0.20]:$SMTP_PORT"
# smtpd_error_sleep_time: Postfix otherwise slows a client down by a second per refusal after ten.
fx_postfix_start \
    "smtpd_error_sleep_time = 0" \
    "smtpd_restriction_classes = relay_paused" \
    "relay_paused = check_recipient_access texthash:$FX/relay_paused, permit_mynetworks, reject" \
    "smtpd_recipient_restrictions = check_helo_access texthash:$FX/relay_helo, permit_mynetworks, reject"
say "Postfix  smtpd 127.0.0.1:$FX_PF_PORT (milter attached), reinjection 127.0.0.1:$FX_PF_REINJECT_PORT -> upstream 127.0.0.20"
say "         (the reinjection listener answers 450 for grey.test: the postmaster paused it)"
say "qrunner  delivery_mode combined, relay_host [127.0.0.1]:$FX_PF_REINJECT_PORT"

# ---------------------------------------------------------------------------------------------
section "Sending the bulk job \"$JOB_NAME\" into Postfix (swaks, 3 messages x 100 recipients)"
rcpts=()
add() { local dom=$1 n=$2 i; for ((i = 1; i <= n; i++)); do rcpts+=("$(printf 'reader%03d@%s' "$i" "$dom")"); done; }
add news-a.test 100; add news-b.test 80; add news-c.test 60
add refuse.test 20; add grey.test 20; add down.test 20
t=$(date +%s%N)
for m in 0 1 2; do
    list=$(IFS=,; echo "${rcpts[*]:$((m * 100)):100}")
    timeout 60 swaks --server 127.0.0.1 --port "$FX_PF_PORT" --helo client.shop.test --from "$SENDER" \
        --to "$list" --header "X-Mxlane-Job: $JOB_NAME" --header "Subject: Spring newsletter, part $((m + 1))" \
        --body "Hello from the shop: spring is here." > "$FX/swaks.$m" 2>&1 ||
        die "swaks could not send message $((m + 1)): $(grep '^<\*\*' "$FX/swaks.$m" | head -n 1)"
    say "message $((m + 1)): $(grep -E '^<- *250 .*queued' "$FX/swaks.$m" | sed 's/^<- *//')"
done
say "Postfix took 3 messages (300 recipients) in $(elapsed "$t") s"
JOB=$(ctl jobs --json | "$PY" -c "import json,sys; print(next(j['id'] for j in json.load(sys.stdin) if j['name']=='$JOB_NAME'))") ||
    die "no job named $JOB_NAME in mxlane's queue"
say "Postfix's queue now: $(fx_postfix_queue_count) messages ($(grep -c 'milter-discard' "$FX_PF_LOG") logged milter-discard)"
say "mxlane's queue:      job $JOB: $(counts)"

# ---------------------------------------------------------------------------------------------
section "Delivering: mxlane-qrunner, combined mode (counts every second)"
fx_spawn qrunner "$FX_QRUNNER" -c "$CONF" -f
QRUNNER_PID=$FX_LAST_PID
t=$(date +%s%N)
while :; do
    sleep 1
    printf '   %5ss  %s\n' "$(elapsed "$t")" "$(counts)"
    settled && break
    fx__alive "$QRUNNER_PID" || die "mxlane-qrunner stopped: $(tail -n 3 "$FX/qrunner.out")"
    [ "$(elapsed "$t" | cut -d. -f1)" -lt 60 ] || die "delivery did not settle in 60 s"
done
fx_stop_pid "$QRUNNER_PID"
say "qrunner stopped; deferred recipients wait for their retry time (retry_schedule 10m 30m 1h)"

# ---------------------------------------------------------------------------------------------
section "Retry pass: grey.test's MX accepts again; mxlanectl flush, then mxlane-qrunner --once"
fx_stop_pid "$GREY_PID"
fx_smtp_sink mx-grey-again 127.0.0.15 "$SMTP_PORT"
say "$ mxlanectl flush $JOB"
ctl flush "$JOB" | sed 's/^/   /'
t=$(date +%s%N)
timeout 60 "$FX_QRUNNER" -c "$CONF" --once > "$FX/qrunner-once.out" 2>&1 || die "mxlane-qrunner --once failed: $(tail -n 3 "$FX/qrunner-once.out")"
say "retry pass done in $(elapsed "$t") s: $(counts)"

# ---------------------------------------------------------------------------------------------
section "Job report: mxlanectl job $JOB"
ctl job "$JOB" | sed 's/^/   /'
section "Bounced recipients: mxlanectl recipients $JOB --state bounced (first 3)"
ctl recipients "$JOB" --state bounced | head -n 4 | cut -c1-150 | sed 's/^/   /'
say "suppression list now holds $(ctl suppress list --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))') addresses"

# ---------------------------------------------------------------------------------------------
# The qrunner under -f logs to stderr; the --once pass to log_file. Both lines have syslog's shape.
LOG=$FX/mxlane-all.log
cat "$FX/qrunner.out" "$FX/mxlane.log" > "$LOG"
section "Log lines (one per recipient and attempt, in Postfix's shape)"
show_log() { grep -m1 -E "$1" "$LOG" | sed 's/^[A-Z][a-z][a-z] [ 0-9]* [0-9:]* [^ ]* //' | cut -c1-250 | sed 's/^/   /' || true; }
show_log 'to=<reader001@news-a.test>, .*status=sent'
show_log 'to=<reader001@refuse.test>, .*status=bounced'
show_log 'to=<reader001@down.test>, .*status=deferred'
show_log 'to=<reader001@down.test>, .*status=sent'
show_log 'to=<reader001@grey.test>, .*status=deferred .*handing over'
show_log 'to=<reader001@grey.test>, .*status=deferred \(host 127'
show_log 'to=<reader001@grey.test>, .*status=sent'

section "What the receivers got"
sink_rcpts() { fx_smtp_sink_rcpt_count "$1"; }
say "news-a.test MX: $(sink_rcpts mx-a) recipients   news-b.test MX: $(sink_rcpts mx-b)   news-c.test MX: $(sink_rcpts mx-c)"
say "grey.test MX (on the retry): $(sink_rcpts mx-grey-again) recipients"
fx_wait_for -t 15 fx__postfix_empty
say "upstream of Postfix (relayed): $(sink_rcpts upstream) recipients; Postfix's queue: $(fx_postfix_queue_count) messages"

if command -v pflogsumm >/dev/null; then
    section "pflogsumm --syslog-name=mxlane (its totals)"
    pflogsumm --syslog-name=mxlane "$LOG" 2>/dev/null |
        sed -n '/^Grand Totals/,/^Per-Day/p' | grep -E '^ +[0-9]+ +(delivered|deferred|bounced)' | sed 's/^/ /'
fi

# ---------------------------------------------------------------------------------------------
section "Stopping everything the demo started"
fx_stop_pid "${FX_PIDS[@]}"
left=$(ss -Hlntu 2>/dev/null | awk '{print $5}' | sed 's/.*://' |
       awk -v lo="$FX_PORT" -v hi=$((FX_PORT + 19)) '$1 >= lo && $1 <= hi' | wc -l)
[ "$left" -eq 0 ] || die "$left listeners still open on the demo's ports"
say "all ${#FX_PIDS[@]} processes stopped; nothing listens on ports $FX_PORT-$((FX_PORT + 19))"
say "demo done in $(elapsed "$T0") s"
