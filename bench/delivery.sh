#!/bin/bash
# delivery: recipients/s that mxlane-qrunner and Postfix deliver from a pre-loaded queue to the same
# smtp-sink receivers on loopback, in the same run: (a) one-recipient messages (personalised on
# mxlane's side: a two-part QP/base64 template rendered per recipient), (b) 100-recipient
# messages, (c) recipients over 100 domains (mxlane by MX records from dnsmasq, Postfix by
# transport_maps); then a store of 1,000,000 recipients: load time, claim time, qrunner memory.
#
#   MXLANE_BUILDDIR=/path/to/build bash bench/delivery.sh
#   MXLANE_BENCH_SCALE=0.1 ...          every size a tenth (a quick run)
#   MXLANE_BENCH_SIZE=2000              message body bytes (default 2000)
#   MXLANE_BENCH_BIG_SECONDS=10         how long the qrunner delivers from the big store
#
# Both sides use their defaults: 20 connections per destination, 50 recipients per transaction.
# Postfix's clock starts at `postqueue -f` after its held queue is released and stops when its log
# shows the last recipient sent; mxlane's clock is the whole `mxlane-qrunner --once` run (open
# the store, deliver, commit every result, exit).
. "$(dirname "$0")/common.sh"
fx_init bench_delivery 2>/dev/null
fx_need smtp-source /usr/bin/time
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
CLAIM=$MXLANE_BUILDDIR/tests/tools/claim
if [ ! -x "$MKJOB" ] || [ ! -x "$CLAIM" ]; then
    make -C "$MXLANE_BUILDDIR/tests" tools/mkjob tools/claim >/dev/null 2>&1 || fx_fatal "cannot build tests/tools/mkjob and claim"
fi

N_A=$(bench_scaled 20000 100)          # (a) one-recipient messages
M_B=$(bench_scaled 200 2)              # (b) messages of 100 recipients
N_C=$(bench_scaled 20000 200)          # (c) recipients over 100 domains
N_BIG=$(bench_scaled 1000000 10000)    # recipients in the big store
SIZE=${MXLANE_BENCH_SIZE:-2000}
BIG_SECONDS=${MXLANE_BENCH_BIG_SECONDS:-10}
DOMAINS=100
P=$(fx_port 5)
SENDER=bulk@sender.test

# ---- receivers: four smtp-sinks; bench.test's MX is the first, the 100 domains share all four
for i in 1 2 3 4; do bench_sink "mx$i" "127.0.0.1$i" "$P"; done
dns=('mx-host=bench.test,mx1.bench.test,10')
transport="bench.test smtp:[127.0.0.11]:$P"
for i in 1 2 3 4; do dns+=("host-record=mx$i.bench.test,127.0.0.1$i"); done
for ((d = 0; d < DOMAINS; d++)); do
    k=$((d % 4 + 1))
    dns+=("$(printf 'mx-host=d%03d.test,mx%d.bench.test,10' "$d" "$k")")
    transport+=$'\n'"$(printf 'd%03d.test smtp:[127.0.0.1%d]:%d' "$d" "$k" "$P")"
done
fx_dns_start "${dns[@]}"

# ---- Postfix: everything it receives is held, so that the queue is loaded before the clock starts
FX_POSTFIX_TRANSPORT=$transport
fx_postfix_start "smtpd_end_of_data_restrictions = check_client_access static:HOLD"
PF_SPOOL=$FX/pf/spool

pf_sent() { awk '/status=sent/ { n++ } END { print n + 0 }' "$FX_PF_LOG" 2>/dev/null; }

# pf_deliver RECIPIENTS: release the held queue, time until the log shows RECIPIENTS more sent; sets PF_MS.
pf_deliver() {
    local want=$(( $(pf_sent) + $1 )) t0 deadline
    postsuper -c "$FX_PF_CONF" -H ALL >/dev/null 2>&1
    t0=$(bench_now_ms)
    postqueue -c "$FX_PF_CONF" -f
    deadline=$((t0 + 1800 * 1000))
    while [ "$(pf_sent)" -lt "$want" ]; do
        [ "$(bench_now_ms)" -lt "$deadline" ] || fx_fatal "Postfix did not deliver $1 recipients in 30 min"
        sleep 0.2
    done
    PF_MS=$(($(bench_now_ms) - t0))
    fx_wait_for -t 60 fx__postfix_empty
}

# pf_load_source MESSAGES RECIPIENTS_PER_MESSAGE: smtp-source into Postfix, every message held.
pf_load_source() {
    smtp-source -N -s 10 -m "$1" -r "$2" -l "$SIZE" -f "$SENDER" -S bench -t rcpt@bench.test \
        "127.0.0.1:$FX_PF_PORT" > "$FX/source.out" 2>&1 || fx_fatal "smtp-source failed: $(tail -n 2 "$FX/source.out")"
    [ "$(fx_postfix_hold_count)" -eq "$1" ] || fx_fatal "Postfix holds $(fx_postfix_hold_count) messages, not $1"
}

# pf_load_list FILE PER_MESSAGE: one SMTP session into Postfix, PER_MESSAGE recipients from FILE per message.
pf_load_list() {
    "$FX_PYTHON" - "$FX_PF_PORT" "$1" "$2" "$SENDER" "$SIZE" <<'PY' || fx_fatal "loading Postfix from $1 failed"
import smtplib, sys
port, path, per, sender, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rcpts = [l.strip() for l in open(path) if l.strip()]
body = ("x" * 76 + "\r\n") * (size // 78 + 1)
s = smtplib.SMTP("127.0.0.1", port)
for i in range(0, len(rcpts), per):
    msg = "From: %s\r\nTo: undisclosed-recipients:;\r\nSubject: bench\r\n\r\n%s" % (sender, body)
    s.sendmail(sender, rcpts[i:i + per], msg)
s.quit()
PY
}

# ---- mxlane: a fresh store per case, the same message size
{
    printf 'From: %s\nTo: undisclosed-recipients:;\nSubject: bench\n\n' "$SENDER"
    for ((i = 0; i < SIZE / 78 + 1; i++)); do printf '%076d\n' 0 | tr 0 x; done
} > "$FX/message.txt"

# mx_conf CASE [NAME=VALUE...]: an mxlane.conf for one case (its own queue and log), with the shipped
# reply_rules and providers loaded, as an installation runs them.
mx_conf() {
    local c=$1
    shift
    fx_write_conf "$FX/$c.conf" "queue_directory = $FX/q-$c" "log_file = $FX/mxlane-$c.log" \
        "smtp_port = $P" "smtp_tls_security_level = none" "notify_sender = none" "delivery_mode = direct" \
        "reply_rules = $MXLANE_SRCDIR/conf/reply_rules" "providers = $MXLANE_SRCDIR/conf/providers" "$@"
    mkdir -p "$FX/q-$c"
}

# mx_load CASE FILE PER_MESSAGE: the recipients in FILE as one job, PER_MESSAGE to a message.
mx_load() {
    "$MKJOB" "$FX/q-$1" "$FX/message.txt" --name "bench-$1" --from "$SENDER" --per-message "$3" \
        < "$2" > "$FX/mkjob-$1.out" 2>&1 || fx_fatal "mkjob failed: $(tail -n 2 "$FX/mkjob-$1.out")"
}

# mx_deliver CASE RECIPIENTS: one qrunner --once run; sets MX_MS and MX_KB (peak RSS), checks the count.
mx_deliver() {
    local t0 delivered
    t0=$(bench_now_ms)
    /usr/bin/time -f '%M' -o "$FX/time-$1" "$FX_QRUNNER" -c "$FX/$1.conf" --once > "$FX/qrunner-$1.out" 2>&1 ||
        fx_fatal "qrunner --once failed: $(tail -n 3 "$FX/qrunner-$1.out")"
    MX_MS=$(($(bench_now_ms) - t0))
    MX_KB=$(tail -n 1 "$FX/time-$1")
    delivered=$("$FX_CTL" -c "$FX/$1.conf" jobs --json | "$FX_PYTHON" -c \
        'import json,sys; print(sum(j["counts"]["delivered"] for j in json.load(sys.stdin)))')
    fx_check_eq "mxlane delivered every recipient of ($1)" "$2" "$delivered" >/dev/null ||
        fx_fatal "mxlane delivered $delivered of $2 in ($1): $(grep -v 'status=sent' "$FX/mxlane-$1.log" | tail -n 3)"
}

mb() { awk -v k="$1" 'BEGIN { printf "%.0f MB", k / 1024 }'; }

# report WHAT RECIPIENTS NOTE: prints and records one case (uses MX_MS, MX_KB, PF_MS).
report() {
    local mx pf ratio
    mx=$(bench_rate "$2" "$MX_MS")
    pf=$(bench_rate "$2" "$PF_MS")
    ratio=$(bench_ratio "$mx" "$pf")
    printf '  %-34s mxlane %6s rcpt/s (%5.1f s, peak %s)   Postfix %6s rcpt/s (%5.1f s)   ratio %s\n' \
        "$1" "$mx" "$(awk -v m="$MX_MS" 'BEGIN { print m / 1000 }')" "$(mb "$MX_KB")" \
        "$pf" "$(awk -v m="$PF_MS" 'BEGIN { print m / 1000 }')" "$ratio"
    bench_row "delivery $1 (rcpt/s)" "$mx" "$pf" "$ratio" "qrunner peak RSS $(mb "$MX_KB"); $3"
}

echo "delivery: mxlane-qrunner vs Postfix from a pre-loaded queue to smtp-sink on loopback ($(nproc) cores, body $SIZE bytes)"

# ---- (a) one-recipient messages, personalised on mxlane's side: a two-part template as mail
# libraries write it (quoted-printable text/plain, base64 text/html), {{name}} in the Subject and
# both parts, {{link}} in both; one message of N_A recipients (as mxlanectl submit stores it), each
# recipient's message rendered and re-encoded by the qrunner.
"$FX_PYTHON" - "$FX/template-a.txt" "$SENDER" "$SIZE" <<'PY' || fx_fatal "cannot write the template for (a)"
import sys
from email.message import EmailMessage
path, sender, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
para = "Hallo {{name}}, this week's offer is at {{link}} (only for you).\n"
text = "Grüße!\n" + para * max(1, size // 2 // len(para))
m = EmailMessage()
m["From"] = "Bench Shop <%s>" % sender
m["To"] = "{{name}} <{{address}}>"
m["Subject"] = "Hallo {{name}}, your offer"
m.set_content(text, charset="utf-8", cte="quoted-printable")
m.add_alternative("<html><body>" + text.replace("\n", "<br>\n") + "</body></html>\n", subtype="html",
                  charset="utf-8", cte="base64")
open(path, "w").write(m.as_string())
PY
seq 1 "$N_A" | awk '{ printf "r%d@bench.test\tJosé Müller %d\thttps://shop.test/o?id=%d&u=3D9\n", $1, $1, $1 }' > "$FX/rcpts-a"
pf_load_source "$N_A" 1
pf_deliver "$N_A"
mx_conf a
"$MKJOB" "$FX/q-a" "$FX/template-a.txt" --name bench-a --from "$SENDER" --fields name,link \
    < "$FX/rcpts-a" > "$FX/mkjob-a.out" 2>&1 || fx_fatal "mkjob failed: $(tail -n 2 "$FX/mkjob-a.out")"
mx_deliver a "$N_A"
report "(a) $N_A msgs x 1 rcpt" "$N_A" "one destination; mxlane personalised (QP/base64 template)"

# ---- (a) with the event stream on (event_log and event_webhook, a receiver answering 200 at once)
# against (a) without it, both run as daemons (only a daemon sends to the webhook), each timed from
# its start until `jobs` counts every recipient delivered; the receiver's catch-up (last run) is shown apart.
mx_daemon() {  # mx_daemon CASE RECIPIENTS: sets MX_MS; the qrunner keeps running (MX_PID)
    local t0 delivered=0
    mkdir -p "$FX/q-$1"
    "$MKJOB" "$FX/q-$1" "$FX/template-a.txt" --name "bench-$1" --from "$SENDER" --fields name,link \
        < "$FX/rcpts-a" > "$FX/mkjob-$1.out" 2>&1 || fx_fatal "mkjob failed: $(tail -n 2 "$FX/mkjob-$1.out")"
    t0=$(bench_now_ms)
    "$FX_QRUNNER" -c "$FX/$1.conf" -f > "$FX/qrunner-$1.out" 2>&1 &
    MX_PID=$!
    fx_register_pid "$MX_PID"
    while [ "$delivered" != "$2" ]; do
        sleep 0.2
        [ $(($(bench_now_ms) - t0)) -gt 600000 ] && fx_fatal "($1): $delivered of $2 delivered after 10 minutes"
        delivered=$("$FX_CTL" -c "$FX/$1.conf" jobs --json 2>/dev/null | "$FX_PYTHON" -c \
            'import json,sys; print(sum(j["counts"]["delivered"] for j in json.load(sys.stdin)))' 2>/dev/null)
    done
    MX_MS=$(($(bench_now_ms) - t0))
}
WH=$(fx_port 6)
"$FX_PYTHON" "$MXLANE_SRCDIR/tests/fixtures/webhook_sink.py" "127.0.0.1:$WH" "$FX/webhook-posts.jsonl" \
    --count-only > "$FX/webhook-sink.out" 2>&1 &
fx_register_pid $!
fx_wait_port 127.0.0.1 "$WH" || fx_fatal "the webhook receiver does not listen"
taken() { "$FX_PYTHON" -c "
import json
print(sum(json.loads(l)['count'] for l in open('$FX/webhook-posts.jsonl') if json.loads(l)['status'] == 200))" 2>/dev/null; }
# Alternately, MXLANE_BENCH_RUNS times (3) each on a fresh store; the best of each kept.
OFF_MS=0 ON_MS=0 CATCH_MS=0
for ((run = 1; run <= ${MXLANE_BENCH_RUNS:-3}; run++)); do
    mx_conf "a-off$run"
    mx_conf "a-on$run" "event_log = $FX/events-a$run.jsonl" "event_webhook = http://127.0.0.1:$WH/events" \
        "event_webhook_secret = bench"
    mx_daemon "a-off$run" "$N_A"
    [ "$OFF_MS" = 0 ] || [ "$MX_MS" -lt "$OFF_MS" ] && OFF_MS=$MX_MS
    fx_stop_pid "$MX_PID"
    mx_daemon "a-on$run" "$N_A"
    [ "$ON_MS" = 0 ] || [ "$MX_MS" -lt "$ON_MS" ] && ON_MS=$MX_MS
    t0=$(bench_now_ms)
    while [ "$(taken)" != $((run * (N_A + 1))) ]; do  # every recipient's event and the job's own, each run
        sleep 0.2
        [ $(($(bench_now_ms) - t0)) -gt 300000 ] && fx_fatal "the receiver got $(taken) of $((run * (N_A + 1))) events"
    done
    CATCH_MS=$(($(bench_now_ms) - t0))
    fx_stop_pid "$MX_PID"
done
off=$(bench_rate "$N_A" "$OFF_MS")
on=$(bench_rate "$N_A" "$ON_MS")
printf '  %-34s %6s rcpt/s with event_log + event_webhook, %6s without (daemons)   ratio %s; the receiver had all %s events %.1f s after the last delivery (%s POSTs a run)\n' \
    "(a) events on/off" "$on" "$off" "$(bench_ratio "$on" "$off")" "$((N_A + 1))" \
    "$(awk -v m="$CATCH_MS" 'BEGIN { print m / 1000 }')" "$(($(wc -l < "$FX/webhook-posts.jsonl") / ${MXLANE_BENCH_RUNS:-3}))"
bench_row "delivery (a) with events on (rcpt/s)" "$on" "-" "$(bench_ratio "$on" "$off")" \
    "event_log + event_webhook vs neither, both qrunner daemons, best of ${MXLANE_BENCH_RUNS:-3}; goal >= 0.90"

# ---- (b) 100-recipient messages
seq 1 $((M_B * 100)) | sed 's/.*/r&@bench.test/' > "$FX/rcpts-b"
pf_load_source "$M_B" 100
pf_deliver $((M_B * 100))
mx_conf b
mx_load b "$FX/rcpts-b" 100
mx_deliver b $((M_B * 100))
report "(b) $M_B msgs x 100 rcpts" $((M_B * 100)) "one destination, 50 rcpts per transaction"
PLAIN_MS=$MX_MS
# The same with VERP (bounce_address): one transaction per recipient, each with its own token.
mx_conf bv "bounce_address = bounces@bench.test"
mx_load bv "$FX/rcpts-b" 100
mx_deliver bv $((M_B * 100))
report "(b) VERP $M_B msgs x 100 rcpts" $((M_B * 100)) \
    "bounce_address: 1 rcpt per transaction; $(bench_ratio "$MX_MS" "$PLAIN_MS") times the time of (b) without"

# ---- (c) 100 domains: messages of up to 1,000 recipients, each spread over every domain
PER_C=$(( N_C < 1000 ? N_C : 1000 ))
awk -v n="$N_C" -v d="$DOMAINS" 'BEGIN { for (i = 0; i < n; i++) printf "r%d@d%03d.test\n", i, i % d }' > "$FX/rcpts-c"
pf_load_list "$FX/rcpts-c" "$PER_C"
pf_deliver "$N_C"
mx_conf c
mx_load c "$FX/rcpts-c" "$PER_C"
mx_deliver c "$N_C"
report "(c) $N_C rcpts over $DOMAINS domains" "$N_C" "$((N_C / PER_C)) msgs of $PER_C; MX via dnsmasq vs transport_maps"

# ---- a store of N_BIG recipients: loading, listing, claiming, and the qrunner's memory on it
mx_conf big
{ echo address; awk -v n="$N_BIG" -v d="$DOMAINS" 'BEGIN { for (i = 0; i < n; i++) printf "u%d@d%03d.test\n", i, i % d }'; } > "$FX/rcpts-big.csv"
t0=$(bench_now_ms)
big=$("$FX_CTL" -c "$FX/big.conf" submit --message "$FX/message.txt" --recipients "$FX/rcpts-big.csv" --name big 2>"$FX/submit.err") ||
    fx_fatal "mxlanectl submit failed: $(tail -n 2 "$FX/submit.err")"
load_ms=$(($(bench_now_ms) - t0))
t0=$(bench_now_ms)
"$FX_CTL" -c "$FX/big.conf" jobs > /dev/null
jobs_ms=$(($(bench_now_ms) - t0))
# The qrunner delivers from the big store for a while; its peak memory, and how much it got through.
"$FX_QRUNNER" -c "$FX/big.conf" -f > "$FX/qrunner-big.out" 2>&1 &
qpid=$!
fx_register_pid $qpid
sleep "$BIG_SECONDS"
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$qpid/status")
fx_stop_pid $qpid
sent_big=$(grep -c 'status=sent' "$FX/qrunner-big.out")     # -f logs to stderr
# One claim as the qrunner makes it (claim_due in one transaction), 100,000 recipients, timed as a whole
# process (open the store, claim, commit); what is left due is N_BIG minus what was delivered above.
t0=$(bench_now_ms)
claimed=$("$CLAIM" "$FX/q-big")
claim_ms=$(($(bench_now_ms) - t0))
echo "  store of $N_BIG recipients ($DOMAINS domains, one message):"
printf '    mxlanectl submit (load):           %6.1f s  (%s rcpt/s)\n' "$(awk -v m="$load_ms" 'BEGIN { print m / 1000 }')" "$(bench_rate "$N_BIG" "$load_ms")"
printf '    mxlanectl jobs:                    %6d ms\n' "$jobs_ms"
printf '    claim %s due recipients:       %6d ms  (tests/tools/claim: open, claim_due, commit)\n' "$claimed" "$claim_ms"
printf '    qrunner -f for %s s on it:          peak RSS %s, %s recipients delivered (%s rcpt/s)\n' \
    "$BIG_SECONDS" "$(mb "$hwm")" "$sent_big" "$((sent_big / BIG_SECONDS))"
bench_row "store of $N_BIG rcpts: submit (rcpt/s)" "$(bench_rate "$N_BIG" "$load_ms")" "-" "-" "mxlanectl submit, batches of 5,000"
bench_row "store of $N_BIG rcpts: claim $claimed due (ms)" "$claim_ms" "-" "-" "one claim_due transaction, whole process"
bench_row "store of $N_BIG rcpts: mxlanectl jobs (ms)" "$jobs_ms" "-" "-" ""
bench_row "store of $N_BIG rcpts: qrunner ${BIG_SECONDS}s run" "$((sent_big / BIG_SECONDS)) rcpt/s" "-" "-" "qrunner peak RSS $(mb "$hwm")"
fx_done
