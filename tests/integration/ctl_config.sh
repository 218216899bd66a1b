#!/bin/bash
# ctl_config: mxlanectl config [-n], and every program refusing a bad configuration with file:line.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init ctl_config

printf 'queue_directory = %s/queue\n# comment\nthreads = 3\n' "$FX" > "$FX/two.conf"
out=$("$FX_CTL" -c "$FX/two.conf" config -n)
fx_check_eq "config -n prints exactly the two parameters set" \
  "queue_directory = $FX/queue
threads = 3" "$out"
fx_check "config prints every parameter" bash -c "[ \$('$FX_CTL' -c '$FX/two.conf' config | wc -l) -ge 30 ]"
fx_check "config shows defaults" bash -c "'$FX_CTL' -c '$FX/two.conf' config | grep -qx 'bulk_header = X-Mxlane-Job'"
fx_check "MXLANE_CONFIG names the file" bash -c "MXLANE_CONFIG='$FX/two.conf' '$FX_CTL' config -n | grep -qx 'threads = 3'"
fx_check "config --json" bash -c "'$FX_CTL' -c '$FX/two.conf' config -n --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"threads\"]==\"3\", d'"
fx_check_eq "config -r lists the parameters a SIGHUP does not apply" \
  "dns_servers dns_timeout event_webhook event_webhook_secret http_listen log_file mail_owner milter_socket queue_directory shared_state shared_state_password_file shared_state_timeout shared_state_tls_CAfile syslog_name threads" \
  "$("$FX_CTL" -c "$FX/two.conf" config -r | cut -d' ' -f1 | sort | xargs)"

printf 'queue_directory = %s/queue\nthreads = 3\nno_such_parameter = 1\n' "$FX" > "$FX/bad.conf"
for prog in "$FX_CTL" "$FX_QRUNNER" "$FX_MILTER"; do
  [ -x "$prog" ] || continue
  name=$(basename "$prog")
  set +e
  if [ "$name" = mxlanectl ]; then err=$("$prog" -c "$FX/bad.conf" jobs 2>&1 >/dev/null); rc=$?
  else err=$(timeout 10 "$prog" -c "$FX/bad.conf" -f 2>&1 >/dev/null); rc=$?; fi
  set -e
  fx_check "$name exits non-zero on an unknown parameter" test "$rc" -ne 0
  fx_check "$name names file:line" bash -c "grep -q '$FX/bad.conf:3: unknown parameter: no_such_parameter' <<<'$err'"
  fx_check_eq "$name says it in one line" 1 "$(printf '%s\n' "$err" | wc -l)"
done
# A value only the qrunner's resolver used to parse: refused when the file is read, by every program.
printf 'queue_directory = %s/queue\n\ndns_servers = 127.0.0.1:53, bogus\n' "$FX" > "$FX/bad.conf"
for prog in "$FX_CTL" "$FX_QRUNNER" "$FX_MILTER"; do
  [ -x "$prog" ] || continue
  name=$(basename "$prog")
  set +e
  if [ "$name" = mxlanectl ]; then err=$("$prog" -c "$FX/bad.conf" config 2>&1 >/dev/null); rc=$?
  else err=$(timeout 10 "$prog" -c "$FX/bad.conf" 2>&1 >/dev/null); rc=$?; fi
  set -e
  fx_check_eq "$name (no -f) exits 1 on a bad dns_servers" 1 "$rc"
  fx_check "$name names file:line" bash -c "grep -q '$FX/bad.conf:3: dns_servers: .*bogus' <<<'$err'"
done
set +e; err=$("$FX_CTL" -c "$FX/missing.conf" jobs 2>&1); rc=$?; set -e
fx_check "missing file is an error" test "$rc" -ne 0
fx_check "missing file is named" bash -c "grep -q '$FX/missing.conf' <<<'$err'"

# providers: the shipped file starts; a bad line stops the start with FILE:LINE and a SIGHUP meeting one keeps
# the running settings (the same path as destination_policy's).
if [ -x "$FX_QRUNNER" ]; then
  fx_write_conf "$FX/prov.conf" "providers = $FX/providers" "destination_policy = $FX/destinations"
  cp "$MXLANE_SRCDIR/conf/providers" "$FX/providers"
  printf 'mx:.google.com destination_concurrency=2\nshop.test destination_concurrency=1\n' > "$FX/destinations"
  set +e; err=$(timeout 10 "$FX_QRUNNER" -c "$FX/prov.conf" --once 2>&1 >/dev/null); rc=$?; set -e
  fx_check_eq "the shipped providers file and an mx: line in destination_policy: the qrunner runs" 0 "$rc"
  fx_check "... and says nothing about them" bash -c "! grep -q -e providers -e destinations <<<'$err'"
  printf 'mx:.google.com destination_concurrency=2\n\nexample.test destination_concurrency=1\n' > "$FX/providers"
  set +e; err=$(timeout 10 "$FX_QRUNNER" -c "$FX/prov.conf" --once 2>&1 >/dev/null); rc=$?; set -e
  fx_check_eq "a domain line in the providers file: exit 1" 1 "$rc"
  fx_check "... naming FILE:LINE" grep -q "$FX/providers:3: a providers file holds mx: lines only, not example.test" <<<"$err"
  printf 'mx:. destination_concurrency=1\n' > "$FX/providers"
  set +e; err=$(timeout 10 "$FX_QRUNNER" -c "$FX/prov.conf" --once 2>&1 >/dev/null); rc=$?; set -e
  fx_check "a bad mx: pattern: exit 1 naming FILE:LINE" grep -q "$FX/providers:1: not a provider pattern" <<<"$err"
  printf 'mx:.outlook.com smtp_tls_security_level=encrypt\n' > "$FX/destinations"
  printf 'mx:.google.com destination_concurrency=2\n' > "$FX/providers"
  set +e; err=$(timeout 10 "$FX_QRUNNER" -c "$FX/prov.conf" --once 2>&1 >/dev/null); rc=$?; set -e
  fx_check "TLS on an mx: line of destination_policy: exit 1 naming FILE:LINE" \
    grep -q "$FX/destinations:1: smtp_tls_security_level is set per domain, not per provider" <<<"$err"
  printf 'shop.test destination_concurrency=1\n' > "$FX/destinations"
  "$FX_QRUNNER" -c "$FX/prov.conf" > "$FX/qrunner.start" 2>&1 || fx_fatal "the qrunner did not start: $(cat "$FX/qrunner.start")"
  fx_wait_for test -s "$FX/queue/qrunner.pid"
  qpid=$(cat "$FX/queue/qrunner.pid")
  fx_register_pid "$qpid"
  printf 'mx:.google.com smtp_tls_CAfile=/etc/ssl/ca.pem\n' > "$FX/providers"
  kill -HUP "$qpid"
  fx_check "SIGHUP with a bad providers file: refused with FILE:LINE, the running settings kept" fx_wait_for -t 10 \
    grep -q "reload refused, keeping the running configuration: $FX/providers:1: smtp_tls_CAfile is set per domain, not per provider" "$FX/mxlane.log"
  fx_check "... and the qrunner still runs" kill -0 "$qpid"
  printf 'mx:.google.com destination_concurrency=3\n' > "$FX/providers"
  kill -HUP "$qpid"
  fx_check "SIGHUP with a good providers file: reloaded" fx_wait_for -t 10 grep -q "reloaded $FX/prov.conf" "$FX/mxlane.log"
  fx_stop_pid "$qpid" || true  # a daemon is not this shell's child: its wait fails under set -e
fi

fx_check "jobs on an empty queue" bash -c "'$FX_CTL' -c '$FX/two.conf' jobs | grep -q 'Queue is empty'"
fx_check_eq "jobs --json on an empty queue" "[]" "$("$FX_CTL" -c "$FX/two.conf" jobs --json)"
set +e; "$FX_CTL" -c "$FX/two.conf" job J0000FF 2>"$FX/err"; rc=$?; set -e
fx_check_eq "unknown job exits 1" 1 "$rc"
fx_check "unknown job message" grep -q 'no such job: J0000FF' "$FX/err"
# Two messages of one job to the same address: recipients says which message each row is.
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
if [ -x "$MKJOB" ]; then
  printf 'From: a@sender.test\nSubject: hi\n\nhello\n' > "$FX/msg.txt"
  j1=$(printf 'ann@a.test\n' | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name twice)
  j2=$(printf 'ann@a.test\n' | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name twice)
  fx_check_eq "both messages join one job" "$j1" "$j2"
  fx_check_eq "recipients: a MESSAGE column, one row per message" "2 2" \
    "$("$FX_CTL" -c "$FX/two.conf" recipients "$j1" | awk 'NR == 1 && $1 == "MESSAGE" { h = 1 } $2 == "ann@a.test" { n++; m[$1] } END { print h + 1, length(m) }')"
  fx_check "recipients --json: the message of each" bash -c "'$FX_CTL' -c '$FX/two.conf' recipients $j1 --json |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); assert len({x[\"message\"] for x in r})==2, r'"
fi
set +e; "$FX_CTL" -c "$FX/two.conf" frobnicate 2>"$FX/err"; rc=$?; set -e
fx_check_eq "unknown command exits 1" 1 "$rc"
fx_done
