#!/bin/bash
# milter_protocol: miltertest scripts drive the real mxlane-milter; the store is checked with mxlanectl --json.
. "$(dirname "$0")/../fixtures/lib.sh"
. "$(dirname "$0")/../integration/milter_mta.sh"
fx_init milter_protocol
fx_need miltertest "$FX_PYTHON"
[ -x "$FX_MILTER" ] || fx_fatal "$FX_MILTER not built"
[ -x "$FX_CTL" ] || fx_fatal "$FX_CTL not built"
PROTO=$MXLANE_SRCDIR/tests/protocol

# Where a refusal met in the body is said: at the chunk on libmilter (configure --with-libmilter),
# which answers every chunk; at end of message on mxlane's own engine, which asks for no answer.
if ldd "$FX_MILTER" | grep -q libmilter; then BODY_STEP=body; else BODY_STEP=eom; fi

# mt_run NAME SOCKET SCRIPT [NAME=VALUE...]: one miltertest script against a running milter.
mt_run() {
    local name=$1 sock=$2 script=$3 d args=()
    shift 3
    for d in "$@"; do args+=(-D "$d"); done
    timeout 60 miltertest -s "$PROTO/$script" -D sock="$sock" -D lib="$PROTO/mt_lib.lua" -D body_step="$BODY_STEP" "${args[@]}" \
        > "$FX/$name.mt" 2>&1
    local rc=$?
    cat "$FX/$name.mt"
    return $rc
}

# start_milter NAME [name=value...]: a milter with its own conf, queue and socket; sets SOCK_<NAME>, CONF_<NAME>.
start_milter() {
    local name=$1 conf=$FX/$1.conf pid
    shift
    mkdir -p "$FX/$name"
    fx_write_conf "$conf" "queue_directory=$FX/$name/queue" "milter_socket=unix:$FX/$name/milter.sock" \
        "log_file=$FX/$name/mxlane.log" "$@"
    ( umask 0111; exec "$FX_MILTER" -c "$conf" -f ) > "$FX/$name/milter.out" 2>&1 &
    pid=$!
    fx_register_pid "$pid"
    fx_register_log "$FX/$name/milter.out"
    printf -v "PID_$name" %s "$pid"
    printf -v "CONF_$name" %s "$conf"
    printf -v "SOCK_$name" %s "unix:$FX/$name/milter.sock"
    fx_wait_for test -S "$FX/$name/milter.sock" || fx_fatal "milter $name did not create its socket: $(tail -n 3 "$FX/$name/milter.out")"
}

printf '# senders whose mail is bulk\n\ncampaigns.test\n' > "$FX/senders.txt"
start_milter rules bulk_min_recipients=3 "bulk_senders=news@list.test, @promo.test, $FX/senders.txt" \
    bulk_sasl_users=mailer myhostname=mta.here.test

start_milter clients
start_milter sender "bulk_header =" bulk_senders=news@list.test
start_milter count "bulk_header =" bulk_min_recipients=2
start_milter hold intercept_action=hold
start_milter limit message_size_limit=100000
touch "$FX/down/qfile" 2>/dev/null || { mkdir -p "$FX/down"; touch "$FX/down/qfile"; }
start_milter down "queue_directory=$FX/down/qfile"
# a queue on a small file system: a big message fills it
FULL=
mkdir -p "$FX/fullfs"
# (the store takes about 80 MB when it opens: its regions and its first log file,
# zero-filled; the milter keeps 72 MB free beyond twice a message)
if mount -t tmpfs -o size=200m tmpfs "$FX/fullfs" 2>"$FX/fullfs.err"; then
    fx_on_exit "umount -l '$FX/fullfs'"
    FULL=1
    start_milter full "queue_directory=$FX/fullfs/queue"
fi

# milter_connections PID: the milter's connected stream sockets (its listening socket is not one).
milter_connections() { ss -Hxp state established 2>/dev/null | grep '^u_str' | grep -c "pid=$1,"; }

fx_check "bulk rules (header, count, sender, file, SASL) and early accept" \
    mt_run rules "$SOCK_rules" bulk_rules.lua
fx_check "the named job holds all four messages' recipients" jobs_check "$CONF_rules" \
    'len(named("spring sale")) == 1 and named("spring sale")[0]["counts"]["queued"] == 4'
fx_check "every recipient of the named job is queued" jobs_check "$CONF_rules" \
    'sorted(r["address"] for r in rcpts(named("spring sale")[0]["id"]) if r["state"] == "queued") == ["ann@a.test", "bob@b.test", "cy@c.test", "dee@d.test"]'
fx_check "an empty bulk_header value makes a job of its own; others are named by Subject, per sender" \
    jobs_check "$CONF_rules" \
    'len(named("")) == 1 and named("three")[0]["counts"]["queued"] == 3 and len(named("(no subject)")) == 4 and all(j["counts"]["queued"] == 1 for j in named("(no subject)"))'
fx_check "ordinary mail stored nothing" jobs_check "$CONF_rules" \
    'not any(r["address"] in ("l2@c.test",) for j in jobs for r in rcpts(j["id"]))'
fx_check "an MTA without no-reply steps: the bulk job is stored" jobs_check "$CONF_rules" \
    '[r["address"] for r in rcpts(named("old mta")[0]["id"])] == ["old@c.test"]'
fx_check "one log line per intake" bash -c "[ \$(grep -c ': message=[0-9]*, queue_id=' '$FX/rules/milter.out') -eq 10 ]"
fx_check "log line names job, queue id, sender, count, size, action" \
    grep -Eq 'J[0-9A-F]+: message=[0-9]+, queue_id=QH1, from=<boss@corp.test>, nrcpt=2, size=[0-9]+, job="spring sale", action=discard' "$FX/rules/milter.out"


# ---- mxlane's own engine: a thread serves one MTA connection after another (Postfix opens one
# per SMTP session); libmilter (configure --with-libmilter) keeps threads of its own
# new_threads PID SOCKET N: how many threads the milter started for N connections, one at a
# time: each stays open while the milter's threads are listed (one of them is serving it).
new_threads() {
    "$FX_PYTHON" - "$1" "${2#unix:}" "$3" <<'PY'
import os, socket, sys, time
task = "/proc/%s/task" % sys.argv[1]
before = set(os.listdir(task))
seen = set(before)
for _ in range(int(sys.argv[3])):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[2])
    time.sleep(0.05)
    seen |= set(os.listdir(task))
    s.close()
    time.sleep(0.05)
print(len(seen - before))
PY
}
if [ "$BODY_STEP" = eom ]; then
    fx_check "20 connections one after another: at most 2 new threads (one per connection before)" \
        bash -c "[ $(new_threads "$PID_rules" "$SOCK_rules" 20) -le 2 ]"
fi

# ---- the same connection after an abort, a dropped connection, a spilled body, relay tokens
fx_check "abort and dropped connection" mt_run abort "$SOCK_rules" abort.lua
fx_check "an aborted message stored nothing" jobs_check "$CONF_rules" \
    'not named("aborted-job") and len(named("after-abort")) == 1'
# miltertest has gone; the milter has acted on the dropped connection once it closed its end
fx_check "the milter closed the dropped connection" fx_wait_eq 0 milter_connections "$PID_rules"
fx_check "a dropped connection stored nothing" jobs_check "$CONF_rules" 'not named("dropped-job")'
fx_check "1.5 MB body through the spill file" mt_run spill "$SOCK_rules" size.lua mode=spill
fx_check "the spilled message is stored whole" "$FX_PYTHON" -c "
import json, subprocess, sys
jobs = json.loads(subprocess.check_output(['$FX_CTL', '-c', '$CONF_rules', 'jobs', '--json']))
j = [j for j in jobs if j['name'] == 'size-spill'][0]
m = json.loads(subprocess.check_output(['$FX_CTL', '-c', '$CONF_rules', 'job', j['id'], '--json']))['messages'][0]
sys.exit(0 if m['size'] == 25 * 60000 + 2 else 1)"
fx_check "no spill file left behind" bash -c "[ -z \"\$(ls -A '$FX/rules/queue/tmp' 2>/dev/null)\" ]"

key=$FX/rules/queue/loop.key
fx_check "the milter created loop.key, mode 0600, 32 bytes" \
    bash -c "[ \$(stat -c %a '$key') = 600 ] && [ \$(stat -c %s '$key') = 32 ]"
# token TEXT KEY: TEXT.hex(HMAC-SHA256(loop.key, TEXT + BINDING)), made here with openssl as the
# qrunner makes it in C++. BINDING is the transaction tokens.lua sends: "\n" sender "\n" recipient
# "\n" SHA-256 of the body without white space (the body is "Hello.\r\n").
binding=$(printf '\nboss@corp.test\na@a.test\n%s' "$(printf %s Hello. | sha256sum | cut -d' ' -f1)")
token() {
    local hexkey mac
    hexkey=$(od -An -tx1 -v "$2" | tr -d ' \n')
    mac=$(printf %s "$1$binding" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" | sed 's/^.*= //')
    echo "$1.$mac"
}
now=$(date +%s)
head -c 32 /dev/urandom > "$FX/other.key"
fx_check "valid, forged, stale and replayed relay tokens" mt_run tokens "$SOCK_rules" tokens.lua \
    "valid=$(token "J00002A.7.$now" "$key")" "forged=$(token "J00002A.7.$now" "$FX/other.key")" \
    "stale=$(token "J00002A.7.$((now - 7200))" "$key")"
fx_check "relayed messages were not captured, the others were" jobs_check "$CONF_rules" \
    'not named("relayed") and not named("relayed-spread") and not named("second-valid") and named("forged") and named("stale") and named("garbage")' \
    ' and named("replayed-body") and named("replayed-rcpts") and named("replayed-sender")'
fx_check "sent by this host's mxlane (its Received: line): not captured; another host's: captured" \
    jobs_check "$CONF_rules" 'not named("our-trace") and named("their-trace")'

# ---- who may use the bulk lane, and whose job names are whose
fx_check "bulk_clients and SASL decide who may send bulk" mt_run clients "$SOCK_clients" clients.lua
fx_check "nothing stored from the outsider" jobs_check "$CONF_clients" 'not named("outsider") and len(named("authenticated")) == 1'
fx_check "two senders using one job name: two jobs, the plain name shown" jobs_check "$CONF_clients" \
    'sorted(sorted(r["address"] for r in rcpts(j["id"])) for j in named("shared name")) == [["a1@a.test", "a2@a.test"], ["b1@b.test"]]'

# ---- early accept when the header rule is off
fx_check "accepted at MAIL FROM when only the sender rule is on" mt_run sender "$SOCK_sender" early_accept.lua mode=sender
fx_check "accepted at DATA when only the count rule is on" mt_run count "$SOCK_count" early_accept.lua mode=count
fx_check "count rule captured two recipients" jobs_check "$CONF_count" \
    'len(jobs) == 1 and jobs[0]["counts"]["queued"] == 2 and jobs[0]["name"] == "(no subject)"'

# ---- hold
fx_check "intercept_action = hold quarantines" mt_run hold "$SOCK_hold" hold.lua
fx_check "the held job is stored" jobs_check "$CONF_hold" 'len(named("held-job")) == 1'
fx_check "log says action=hold" grep -q 'job="held-job", action=hold' "$FX/hold/milter.out"
fx_check_eq "the admin is told once per job where the originals wait" 1 \
    "$(grep -c "J000001: the originals of this job wait in the MTA's hold queue" "$FX/hold/milter.out")"

# ---- size limit
fx_check "message_size_limit: 552 5.3.4, the fields Postfix inserted not counted" mt_run limit "$SOCK_limit" size.lua mode=limit
fx_check "the reply is permanent and says why" grep -q 'reject 552 5.3.4 mxlane: message too large' "$FX/limit/milter.out"
fx_check "no 4xx for a message that cannot fit" bash -c "! grep -q 'tempfail 452 4.3.4' '$FX/limit/milter.out'"
fx_check "nothing stored over the limit, the one that fits is" jobs_check "$CONF_limit" \
    '[j["name"] for j in jobs] == ["size-fits"]'

# ---- the store cannot be used
fx_check "queue_directory is a file: 451 4.3.0, ordinary mail flows" \
    mt_run down "$SOCK_down" store_fail.lua want=tempfail
fx_check "the reason is logged" grep -q 'tempfail 451 4.3.0 mxlane: cannot store the job: cannot open the queue store' \
    "$FX/down/milter.out"
rm -f "$FX/down/qfile"
# the milter runs as mail_owner now and cannot create it in root's $FX/down: the admin's fix
install -d -m 750 -o "$(fx_conf_get "$CONF_down" mail_owner)" "$FX/down/qfile"
sleep 5.2   # the milter tries to open a broken store again after 5 s
fx_check "the same milter stores once queue_directory is usable" \
    mt_run down2 "$SOCK_down" store_fail.lua want=discard
fx_check "the job is there" jobs_check "$CONF_down" 'len(named("store-discard")) == 1'

if [ -n "$FULL" ]; then
    fx_check "disk full: 4xx, nothing half-written" \
        mt_run full "$SOCK_full" store_fail.lua want=tempfail big=700
    fx_check "disk full: 452 4.3.1 says why" grep -q 'tempfail 452 4.3.1 mxlane: not enough free space in the queue' "$FX/full/milter.out"
    fx_check "disk full: the job is not in the store" jobs_check "$CONF_full" 'not named("store-big")'
    fx_check "disk full: a small job still goes in" mt_run full2 "$SOCK_full" store_fail.lua want=discard
else
    fx_skip_part "disk full: cannot mount a small tmpfs here ($(head -n 1 "$FX/fullfs.err"))"
fi

fx_done
