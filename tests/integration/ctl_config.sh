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
  "dns_servers dns_timeout log_file mail_owner milter_socket queue_directory syslog_name threads" \
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
