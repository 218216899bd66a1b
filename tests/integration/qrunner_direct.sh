#!/bin/bash
# qrunner_direct: direct delivery by MX against dnsmasq and loopback sinks, one --once run.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_direct
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

fx_dns_start \
  'mx-host=ok.test,mx.ok.test,10' 'host-record=mx.ok.test,127.0.0.61' \
  'mx-host=multi.test,mx1.multi.test,10' 'mx-host=multi.test,mx2.multi.test,20' \
  'host-record=mx1.multi.test,127.0.0.69' 'host-record=mx2.multi.test,127.0.0.62' \
  'host-record=nomx.test,127.0.0.63' \
  'mx-host=cname.test,alias.cname.test,10' 'cname=alias.cname.test,mx.ok.test' \
  'mx-host=nullmx.test,.,0' \
  'mx-host=down.test,mx.down.test,10' 'host-record=mx.down.test,127.0.0.68' \
  "server=/timeout.test/127.0.0.1#$FX_DEAD_PORT"
fx_pysink_start "$FX/sink" "127.0.0.61:$P" "127.0.0.62:$P" "127.0.0.63:$P"

fx_write_conf "$FX/mxlane.conf" "smtp_port = $P" "dns_timeout = 1s" "retry_schedule = 1h" \
  "smtp_helo_name = qrunner.mxlane.test" "max_recipients_per_transaction = 2"
printf 'From: news@sender.test\nSubject: direct test\n\n.leading dot\nbody\n' > "$FX/msg.txt"
job=$(printf '%s\n' a@ok.test b@ok.test c@ok.test hard1@ok.test soft1@ok.test \
        m@multi.test n@nomx.test x@cname.test z@nullmx.test q@nxdomain.test t@timeout.test d@down.test |
      "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
fx_check "job created" test -n "$job"

timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?

state() { "$FX_CTL" -c "$FX/mxlane.conf" recipients "$job" --json | /usr/bin/python3 -c "
import json,sys
for r in json.load(sys.stdin):
    if r['address']=='$1': print(r['state'], r['dsn'], r['attempts'])"; }
fx_check_eq "a@ok.test delivered" "delivered 2.0.0 1" "$(state a@ok.test)"
fx_check_eq "c@ok.test delivered" "delivered 2.0.0 1" "$(state c@ok.test)"
fx_check_eq "550 at RCPT bounces" "bounced 5.1.1 1" "$(state hard1@ok.test)"
fx_check_eq "451 at RCPT defers" "deferred 4.3.0 1" "$(state soft1@ok.test)"
fx_check_eq "first MX down: second MX delivers" "delivered 2.0.0 1" "$(state m@multi.test)"
fx_check_eq "no MX: implicit MX delivers" "delivered 2.0.0 1" "$(state n@nomx.test)"
fx_check_eq "CNAME'd MX target delivers" "delivered 2.0.0 1" "$(state x@cname.test)"
fx_check_eq "null MX bounces 5.1.10" "bounced 5.1.10 1" "$(state z@nullmx.test)"
fx_check_eq "NXDOMAIN bounces 5.1.2" "bounced 5.1.2 1" "$(state q@nxdomain.test)"
fx_check_eq "DNS timeout defers 4.4.3" "deferred 4.4.3 1" "$(state t@timeout.test)"
fx_check "unreachable MX defers 4.4.x" bash -c "[[ '$(state d@down.test)' == 'deferred 4.4.'* ]]"

# What the sinks saw: every accepted recipient exactly once, nothing for the failures.
rcpts=$(/usr/bin/python3 -c "
import json
seen=[r for l in open('$FX/sink/accepted.jsonl') for r in json.loads(l)['rcpt']]
print(' '.join(sorted(seen)))")
fx_check_eq "sinks received exactly the delivered recipients" "a@ok.test b@ok.test c@ok.test m@multi.test n@nomx.test x@cname.test" "$rcpts"
fx_check "mail from and helo" grep -q '"from": "news@sender.test"' "$FX/sink/accepted.jsonl"
fx_check "helo name used" grep -q '"helo": "qrunner.mxlane.test"' "$FX/sink/accepted.jsonl"
fx_check "dot-stuffing undone at the sink" grep -q '^\.leading dot' "$FX/sink/127.0.0.61.mbox"
# max_recipients_per_transaction = 2: ok.test's 3 accepted recipients came in 2+1 (cname shares the MX set).
fx_check "recipients batched per transaction (at most 2)" /usr/bin/python3 -c "
import json
n=[len(json.loads(l)['rcpt']) for l in open('$FX/sink/accepted.jsonl')]
assert max(n) <= 2 and max(n) == 2, n"

# Log lines in Postfix's shape, counted by pflogsumm.
log=$FX/mxlane.log
fx_check "sent line shape" grep -qE "mxlane/qrunner\[[0-9]+\]: $job: to=<a@ok.test>, relay=mx.ok.test\[127.0.0.61\]:$P, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2.0.0, status=sent \(250 " "$log"
fx_check "bounce line names the host and command" grep -qE "to=<hard1@ok.test>, .*dsn=5.1.1, status=bounced \(host mx.ok.test\[127.0.0.61\] said: 550 5.1.1 .*\(in reply to RCPT TO command\) \[class=invalid-recipient\]\)" "$log"
fx_check "deferred line" grep -qE "to=<t@timeout.test>, relay=none, .*dsn=4.4.3, status=deferred" "$log"
if command -v pflogsumm >/dev/null; then
  sum=$(pflogsumm --syslog-name=mxlane "$log" 2>/dev/null)
  fx_check "pflogsumm counts 6 delivered" grep -qE '^ +6 +delivered' <<<"$sum"
  fx_check "pflogsumm counts 3 bounced" grep -qE '^ +3 +bounced' <<<"$sum"
else
  fx_skip_part "pflogsumm counts: pflogsumm is not installed"
fi
fx_check "job counts" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' jobs --json | /usr/bin/python3 -c '
import json,sys; j=json.load(sys.stdin)[0]; c=j[\"counts\"]
assert (c[\"delivered\"],c[\"bounced\"],c[\"deferred\"])==(6,3,3), c'"

# A second --once run takes nothing: the deferred ones are not due for an hour.
timeout 30 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "second run delivers nothing new" 6 "$(fx_pysink_rcpts "$FX/sink" | wc -l)"
fx_done
