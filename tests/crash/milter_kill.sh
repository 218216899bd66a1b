#!/bin/bash
# milter_kill: mxlane-milter is killed with SIGKILL twice while clients send bulk mail through
# Postfix in parallel. Clients see 250 or 4xx, nothing else; every message a client got 250 for is
# in the store; no stored job is partial (all its recipients, and a text the qrunner delivers whole).
. "$(dirname "$0")/../fixtures/lib.sh"
. "$(dirname "$0")/../integration/milter_mta.sh"
fx_init milter_kill
fx_need swaks "$FX_PYTHON"
fx_need_built
start=$SECONDS

WORKERS=4 PER_WORKER=${CRASH_MESSAGES:-25} RCPTS=20
P=$(fx_port 5)
fx_dns_start 'mx-host=d.test,mx.d.test,10' 'host-record=mx.d.test,127.0.0.81'
fx_smtp_sink out 127.0.0.81 "$P"
# An inet socket: Postfix reaches it whichever user the milter runs as.
fx_write_conf "$FX/mxlane.conf" "smtp_port = $P" "smtp_tls_security_level = none" "notify_sender = none" \
    "mail_owner = nobody" "milter_socket = inet:$(fx_port 6)@127.0.0.1" "max_recipients_per_transaction = $RCPTS"
fx_milter_start "$FX/mxlane.conf"
FX_POSTFIX_MILTER=$(fx_postfix_milter_spec "$FX_MILTER_SOCKET")
FX_POSTFIX_RELAYHOST="[127.0.0.81]:$P"   # Postfix accepts the recipients; bulk mail never gets there
fx_postfix_start
PF=$FX_PF_PORT
mkdir -p "$FX/out"

restart_milter() {
    cat "$FX/milter.out" >> "$FX/milter.all" 2>/dev/null
    fx_milter_start "$FX/mxlane.conf"
}
fx_register_log "$FX/milter.all"

# One worker: messages w-1 .. w-N one after another, each to RCPTS recipients, each its own job.
worker() {
    local w=$1 i id to j
    for i in $(seq 1 "$PER_WORKER"); do
        id=m$w-$i
        to=$(for j in $(seq 1 $RCPTS); do printf '%s,' "$id-r$j@d.test"; done)
        mta_send "$PF" "$FX/out/$id" news@corp.test "${to%,}" --header "X-Mxlane-Job: $id"
        mta_reply "$FX/out/$id" > "$FX/out/$id.code"
    done
}
pids=()
for w in $(seq 1 $WORKERS); do
    worker "$w" &
    pids+=($!)
    fx_register_pid $!
done

# Two kills at random moments of the intake, each followed by a restart.
kills=0
for k in 1 2; do
    sleep "$((RANDOM % 2 + 1)).$((RANDOM % 10))"
    kill -KILL "$FX_MILTER_PID" && kills=$((kills + 1))
    wait "$FX_MILTER_PID" 2>/dev/null
    sleep "0.$((RANDOM % 9 + 1))"
    restart_milter
done
for p in "${pids[@]}"; do wait "$p"; done
fx_check_eq "milter killed twice during intake" 2 "$kills"
fx_check "every client finished its messages" \
    test "$(ls "$FX"/out/*.code | wc -l)" -eq $((WORKERS * PER_WORKER))

# ---- what the clients saw
declare -A code
ok=0 refused=0 other=()
for f in "$FX"/out/*.code; do
    id=$(basename "$f" .code)
    code[$id]=$(cat "$f")
    case ${code[$id]} in
        250) ok=$((ok + 1)) ;;
        4??) refused=$((refused + 1)) ;;
        *) other+=("$id:${code[$id]:-none}") ;;
    esac
done
fx_log "clients: $ok accepted, $refused refused with 4xx, ${#other[@]} other"
fx_check_eq "every client got 250 or 4xx" "" "${other[*]}"
fx_check "some messages were refused with 4xx while the milter was down" test "$refused" -gt 0
fx_check "some messages were accepted" test "$ok" -gt 0

# ---- the qrunner, first to read the store after the kills: the milter stores each message's
# recipients packed in one record, and the qrunner expands them before it claims (a message whose
# intake was cut by a kill is either all there or not at all). It delivers each job's text to each
# of its recipients, once.
timeout 120 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once > "$FX/qrunner.out" 2>&1
fx_check_eq "qrunner --once over the stored jobs exits 0" 0 $?

# ---- the store: accepted => stored whole; stored => whole
"$FX_PYTHON" - "$FX_CTL" "$FX/mxlane.conf" "$FX/out" $RCPTS > "$FX/store.check" <<'PY'
import json, os, subprocess, sys
ctl, conf, out, rcpts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def run(*a):
    return json.loads(subprocess.check_output([ctl, "-c", conf, *a, "--json"]))
jobs = {j["name"]: j for j in run("jobs")}
accepted = {f[:-5] for f in os.listdir(out) if f.endswith(".code") and open(os.path.join(out, f)).read().strip() == "250"}
problems = []
for name in sorted(accepted - set(jobs)):
    problems.append(f"{name}: client got 250 but the job is not in the store")
for name, j in sorted(jobs.items()):
    want = sorted(f"{name}-r{i}@d.test" for i in range(1, rcpts + 1))
    got = sorted(r["address"] for r in run("recipients", j["id"]))
    detail = run("job", j["id"])
    if got != want:
        problems.append(f"{name}: {len(got)} recipients stored, {rcpts} sent")
    if j["state"] not in ("active", "done") or detail.get("messages") in (0, None, []):
        problems.append(f"{name}: state {j['state']}, messages {detail.get('messages')}")
stored_refused = len(set(jobs) - accepted)
print(len(jobs), stored_refused)
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
fx_check_eq "every accepted message stored, every stored job whole" 0 $?
read -r stored stored_refused < "$FX/store.check"
fx_log "store: $stored jobs, $stored_refused of them from messages whose client got 4xx (it retries: allowed twice)"

fx_check "each stored job's text arrived whole at each of its recipients, once" "$FX_PYTHON" - "$FX_CTL" "$FX/mxlane.conf" \
    "$FX/sinks/out/dump" $RCPTS <<'PY'
import collections, json, re, subprocess, sys
ctl, conf, dump, rcpts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
jobs = json.loads(subprocess.check_output([ctl, "-c", conf, "jobs", "--json"]))
got = collections.defaultdict(set)
rcpt = []
for line in open(dump, errors="replace"):
    if line.startswith("X-Rcpt-Args: "):
        rcpt.append(line.split()[1].strip("<>"))
    m = re.match(r"Hello from the (m\d+-\d+) test\.", line)
    if m:
        for a in rcpt:
            if a.startswith(m.group(1) + "-r"):
                got[m.group(1)].add(a)
        rcpt = []
bad = [j["name"] for j in jobs if len(got[j["name"]]) != rcpts or j["counts"]["delivered"] != rcpts]
assert not bad, f"incomplete text or delivery for {bad[:10]}"
sent = collections.Counter(line.split()[1].strip("<>") for line in open(dump, errors="replace")
                           if line.startswith("X-Rcpt-Args: "))
twice = [a for a, n in sent.items() if n > 1]
assert not twice, f"delivered more than once: {twice[:10]}"
PY
echo "crash figures: milter kills=$kills accepted=$ok refused=$refused stored=$stored seconds=$((SECONDS - start))"
fx_done
