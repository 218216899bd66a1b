#!/bin/bash
# milter_protocol: miltertest scripts drive the real mxlane-milter; the store is checked with mxlanectl --json.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init milter_protocol
fx_need miltertest "$FX_PYTHON"
[ -x "$FX_MILTER" ] || fx_fatal "$FX_MILTER not built"
[ -x "$FX_CTL" ] || fx_fatal "$FX_CTL not built"
PROTO=$MXLANE_SRCDIR/tests/protocol

# mt_run NAME SOCKET SCRIPT [NAME=VALUE...]: one miltertest script against a running milter.
mt_run() {
    local name=$1 sock=$2 script=$3 d args=()
    shift 3
    for d in "$@"; do args+=(-D "$d"); done
    timeout 60 miltertest -s "$PROTO/$script" -D sock="$sock" -D lib="$PROTO/mt_lib.lua" "${args[@]}" \
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

# jobs_check CONF PYTHON-EXPR: evaluates EXPR with `jobs` (mxlanectl jobs --json) and
# `rcpts(id)` (recipients --json) in scope.
jobs_check() {
    "$FX_PYTHON" - "$FX_CTL" "$1" "$2" <<'PY'
import json, subprocess, sys
ctl, conf, expr = sys.argv[1:4]
def run(*args):
    return json.loads(subprocess.run([ctl, "-c", conf, *args, "--json"], check=True,
                                     capture_output=True, text=True).stdout)
jobs = run("jobs")
def rcpts(job_id):
    return run("recipients", job_id)
def named(name):
    return [j for j in jobs if j["name"] == name]
ok = eval(expr)
if not ok:
    print("jobs:", json.dumps(jobs, indent=1))
    sys.exit(1)
PY
}

printf '# senders whose mail is bulk\n\ncampaigns.test\n' > "$FX/senders.txt"
start_milter rules bulk_min_recipients=3 "bulk_senders=news@list.test, @promo.test, $FX/senders.txt" \
    bulk_sasl_users=mailer

fx_check "bulk rules (header, count, sender, file, SASL) and early accept" \
    mt_run rules "$SOCK_rules" bulk_rules.lua
fx_check "the named job holds all four messages' recipients" jobs_check "$CONF_rules" \
    'len(named("spring sale")) == 1 and named("spring sale")[0]["counts"]["queued"] == 4'
fx_check "every recipient of the named job is queued" jobs_check "$CONF_rules" \
    'sorted(r["address"] for r in rcpts(named("spring sale")[0]["id"]) if r["state"] == "queued") == ["ann@a.test", "bob@b.test", "cy@c.test", "dee@d.test"]'
fx_check "unnamed bulk messages are jobs of their own" jobs_check "$CONF_rules" \
    'len(named("")) == 6 and all(j["counts"]["queued"] in (1, 3) for j in named(""))'
fx_check "ordinary mail stored nothing" jobs_check "$CONF_rules" \
    'not any(r["address"] in ("l2@c.test",) for j in jobs for r in rcpts(j["id"]))'
fx_check "one log line per intake" bash -c "[ \$(grep -c ': message=[0-9]*, queue_id=' '$FX/rules/milter.out') -eq 9 ]"
fx_check "log line names job, queue id, sender, count, size, action" \
    grep -Eq 'J[0-9A-F]+: message=[0-9]+, queue_id=QH1, from=<boss@corp.test>, nrcpt=2, size=[0-9]+, job="spring sale", action=discard' "$FX/rules/milter.out"

fx_done
