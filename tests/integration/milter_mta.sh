# milter_mta.sh - helpers shared by the milter's tests against Postfix, Sendmail and miltertest (sourced).

# jobs_check CONF PYTHON-EXPR: evaluates EXPR with `jobs` (mxlanectl jobs --json),
# `rcpts(id)` (recipients --json) and `named(name)` (jobs with that name) in scope.
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

# job_addresses CONF NAME STATE: the addresses of job NAME in STATE, sorted, one line.
job_addresses() {
    "$FX_PYTHON" - "$FX_CTL" "$1" "$2" "$3" <<'PY'
import json, subprocess, sys
ctl, conf, name, state = sys.argv[1:5]
def run(*args):
    return json.loads(subprocess.check_output([ctl, "-c", conf, *args, "--json"]))
out = []
for j in run("jobs"):
    if j["name"] == name:
        out += [r["address"] for r in run("recipients", j["id"]) if r["state"] == state]
print(" ".join(sorted(out)))
PY
}

# mta_send PORT OUTFILE FROM TO[,TO...] [swaks options...]: one message through the MTA; exit status of swaks.
mta_send() {
    local port=$1 out=$2 from=$3 to=$4
    shift 4
    timeout 30 swaks --server 127.0.0.1 --port "$port" --helo client.test --from "$from" --to "$to" \
        --header "Subject: test $(basename "$out")" --body "Hello from the $(basename "$out") test." \
        "$@" > "$out" 2>&1
}

# mta_reply OUTFILE: the outcome swaks printed: the first error reply's code (e.g. 451),
# or 250 when the message was queued.
mta_reply() {
    local err
    err=$(sed -n 's/^<\*\* *\([0-9][0-9][0-9]\)[ -].*/\1/p' "$1" | head -n 1)
    if [ -n "$err" ]; then echo "$err"
    elif grep -Eq '^<[-~ ]* *250[ -].*(queued|Message accepted|accepted for delivery)' "$1"; then echo 250
    fi
}

# kill_midrun PORT CONF MILTER_PID N: sends N one-recipient bulk messages (job "midrun") one
# after another and kills the milter with SIGKILL after the first third. Every message the
# MTA accepted must be in the store (nothing lost); every refused one must have had a 4xx.
kill_midrun() {
    local port=$1 conf=$2 pid=$3 n=$4 i code ok=() refused=() bad=()
    for i in $(seq 1 "$n"); do
        [ "$i" -eq $((n / 3)) ] && kill -KILL "$pid" 2>/dev/null
        mta_send "$port" "$FX/midrun.$i" news@corp.test "r$i@midrun.test" --header "X-Mxlane-Job: midrun"
        code=$(mta_reply "$FX/midrun.$i")
        case $code in
            250) ok+=("r$i@midrun.test") ;;
            4??) refused+=("r$i@midrun.test") ;;
            *) bad+=("$i:$code") ;;
        esac
    done
    fx_check_eq "killed milter: every answer was 250 or 4xx" "" "${bad[*]}"
    fx_check "killed milter: some were accepted before, some refused after" \
        test ${#ok[@]} -gt 0 -a ${#refused[@]} -gt 0
    local stored
    stored=" $(job_addresses "$conf" midrun queued) "
    local lost=() a
    for a in "${ok[@]}"; do [[ $stored == *" $a "* ]] || lost+=("$a"); done
    fx_check_eq "killed milter: every accepted message is in the store" "" "${lost[*]}"
}
