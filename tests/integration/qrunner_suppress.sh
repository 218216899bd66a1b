#!/bin/bash
# qrunner_suppress: a 5.1.x bounce puts the address on the suppression list; in a later job it becomes
# suppressed without being sent to; other bounces do not; a job left with only suppressed ones finishes.
# Each failure's class (recipients --json, export, the log): only invalid-recipient and bad-domain suppress.
# event_log: one JSON line per result and finished job, matching recipients --json.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_suppress
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

fx_dns_start 'mx-host=ok.test,mx.ok.test,10' 'host-record=mx.ok.test,127.0.0.111' \
    'mx-host=gone.test,mx.gone.test,10'
fx_pysink_start "$FX/mx" "127.0.0.111:$P"
fx_pysink_start "$FX/relay" "127.0.0.112:$P"
# One recipient a transaction: a refusal after DATA refuses the whole transaction.
fx_write_conf "$FX/mxlane.conf" "smtp_port=$P" "retry_schedule=1h" "notify_sender=summary" \
    "relay_host=[127.0.0.112]:$P" "max_recipients_per_transaction=1" "event_log=$FX/events.jsonl" \
    "event_fields=subscriber_id, missing"
printf 'From: news@sender.test\nSubject: suppression\n\nbody\n' > "$FX/msg.txt"
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
state() { ctl recipients "$1" --json | "$FX_PYTHON" -c "
import json,sys
for r in json.load(sys.stdin):
    if r['address']=='$2': print(r['state'], r['attempts'])"; }
# RCPT TO commands the MX saw for an address, over every connection.
tries() { "$FX_PYTHON" -c "
import json
print(sum(1 for l in open('$FX/mx/connections.jsonl') for r in json.loads(l)['rcpts'] if r['rcpt'].lower()=='$1'))"; }

# ---- job 1: a bad mailbox (550 5.1.1) and a content refusal (554 5.6.0 after DATA)
job1=$(printf '%s\n' a@ok.test hard1@ok.test datahard1@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "5.1.1: bounced" "bounced 1" "$(state "$job1" hard1@ok.test)"
fx_check_eq "5.6.0: bounced" "bounced 1" "$(state "$job1" datahard1@ok.test)"
list=$(ctl suppress list --json)
fx_check "the bad mailbox is on the suppression list" grep -q '"hard1@ok.test"' <<<"$list"
fx_check "... with reason bounce and its job" "$FX_PYTHON" -c "
import json, sys
rows = {r['address']: r for r in json.loads(sys.argv[1])}
assert rows['hard1@ok.test']['reason'] == 'bounce' and rows['hard1@ok.test']['job'] == '$job1', rows" "$list"
fx_check "a content refusal is not" bash -c "! grep -q 'datahard1@ok.test' <<<'$list'"

# ---- job 2: the same addresses again (one in other case); only the bad mailbox is skipped
job2=$(printf '%s\n' b@ok.test HARD1@ok.test datahard1@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "suppressed without an attempt" "suppressed 0" "$(state "$job2" HARD1@ok.test)"
fx_check_eq "the MX saw hard1 once, in job 1 only" 1 "$(tries hard1@ok.test)"
fx_check_eq "not suppressed: tried again" "bounced 1" "$(state "$job2" datahard1@ok.test)"
fx_check_eq "b delivered" "delivered 1" "$(state "$job2" b@ok.test)"
fx_check "suppressed line in the log" grep -qE "$job2: to=<HARD1@ok.test>, relay=none, .*status=suppressed" "$FX/mxlane.log"

# ---- job 3: nothing but a suppressed address: the claim settles it and the job finishes (and is reported)
job3=$(printf '%s\n' hard1@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "job 3: suppressed" "suppressed 0" "$(state "$job3" hard1@ok.test)"
fx_check "job 3 is done" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' job $job3 --json | grep -q '\"state\": *\"done\"'"
fx_check "its summary lists the suppressed address" fx_wait_for -t 10 grep -q \
    "^hard1@ok.test,suppressed," "$FX/relay/127.0.0.112.mbox"
fx_check_eq "one summary per job (3 jobs), all through the relay" 3 "$(fx_pysink_count "$FX/relay")"
fx_check_eq "the MX saw each address once per job at most" "" "$(fx_pysink_rcpts "$FX/mx" | uniq -d)"

# Removing the address lets it be tried again.
ctl suppress remove hard1@ok.test >/dev/null
job4=$(printf '%s\n' hard1@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "after suppress remove: tried (and bounced) again" "bounced 1" "$(state "$job4" hard1@ok.test)"
fx_check_eq "and back on the list" 1 "$(ctl suppress list --json | grep -c '"hard1@ok.test"')"

# ---- job 5: one failure of each kind; the class says which, and only dead addresses are suppressed
# (mx.gone.test has no address: the domain cannot take mail, 5.4.4)
job5=$(printf '%s\n' hard2@ok.test dmarc1@ok.test full1@ok.test rated1@ok.test datahard2@ok.test x@gone.test c@ok.test |
       "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "classes in recipients --json" \
    "$(printf '%s\n' 'c@ok.test delivered ' 'datahard2@ok.test bounced content' 'dmarc1@ok.test bounced auth' \
       'full1@ok.test deferred mailbox-full' 'hard2@ok.test bounced invalid-recipient' \
       'rated1@ok.test deferred rate-limit' 'x@gone.test bounced bad-domain')" \
    "$(ctl recipients "$job5" --json | "$FX_PYTHON" -c "
import json,sys
for r in sorted(json.load(sys.stdin), key=lambda r: r['address']): print(r['address'], r['state'], r['class'])")"
list=$(ctl suppress list --json)
fx_check "invalid-recipient and bad-domain are suppressed" bash -c "grep -q '\"hard2@ok.test\"' <<<'$list' && grep -q '\"x@gone.test\"' <<<'$list'"
fx_check "a DMARC (auth) refusal is not: the sender is at fault, not the address" \
    bash -c "! grep -q 'dmarc1@ok.test' <<<'$list'"
fx_check "nor a content refusal" bash -c "! grep -q 'datahard2@ok.test' <<<'$list'"
fx_check "export has the class and suppression columns" bash -c "ctl() { '$FX_CTL' -c '$FX/mxlane.conf' \"\$@\"; }
    ctl export $job5 | tr -d '\\r' | head -1 | grep -qx 'address,state,attempts,last_reply,dsn,host,class,suppression' &&
    ctl export $job5 | tr -d '\\r' | grep -q '^dmarc1@ok.test,bounced,1,.*,auth,\$' &&
    ctl export $job5 | tr -d '\\r' | grep -q '^hard2@ok.test,bounced,1,.*,invalid-recipient,bounce\$'"
fx_check "the log line says the class" \
    grep -qE "$job5: to=<dmarc1@ok.test>, .*dsn=5.7.26, status=bounced \(.*DMARC.* \[class=auth\]\)" "$FX/mxlane.log"

# ---- event_fields: a personalised job's column rides along in its events ("" for a column it lacks)
job6=$(printf 'p1@ok.test\tAnn\t8812\nhard6@ok.test\tBob\t8813\n' |
    "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test --fields first_name,subscriber_id)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check "event_fields: each recipient event carries its subscriber_id" "$FX_PYTHON" -c "
import json
ev = {e['recipient']: e for e in map(json.loads, open('$FX/events.jsonl', encoding='utf-8'))
      if e['job'] == '$job6' and e['type'] != 'job'}
assert ev['p1@ok.test']['type'] == 'delivered' and ev['p1@ok.test']['fields'] == {'subscriber_id': '8812', 'missing': ''}, ev
assert ev['hard6@ok.test']['type'] == 'bounced' and ev['hard6@ok.test']['fields']['subscriber_id'] == '8813', ev
"

# ---- the event log: every line valid JSON; per job, its events match what recipients --json says
fx_check "event_log: one event per recipient result, as recipients --json says, with class and job name" \
    "$FX_PYTHON" -c "
import json, subprocess
events = [json.loads(l) for l in open('$FX/events.jsonl', encoding='utf-8')]
def rcpts(job):
    return json.loads(subprocess.check_output(['$FX_CTL', '-c', '$FX/mxlane.conf', 'recipients', job, '--json']))
for job in ['$job1', '$job2', '$job5']:
    mine = [e for e in events if e['job'] == job and e['type'] != 'job']
    got = sorted((e['recipient'], e['type'], e['class']) for e in mine)
    want = sorted((r['address'], r['state'], r['class']) for r in rcpts(job))
    assert got == want, (job, got, want)
dmarc = [e for e in events if e.get('recipient') == 'dmarc1@ok.test'][0]
assert dmarc['dsn'] == '5.7.26' and 'DMARC' in dmarc['reply'] and dmarc['host'].startswith('mx.ok.test['), dmarc
assert all(set(e) >= {'time', 'type', 'job', 'job_name'} for e in events)
done = [e['job'] for e in events if e['type'] == 'job' and e['state'] == 'done']
assert '$job1' in done and '$job3' in done, done
"
fx_done
