#!/bin/bash
# milter_logging: log_file is created 0640 for mail_owner and reopened after rotation (milter: SIGUSR1,
# and by itself when the file was renamed; qrunner: SIGHUP); both daemons say at start when syslog
# cannot be reached (a private /dev without or with a /dev/log listener, in a mount namespace).
. "$(dirname "$0")/../fixtures/lib.sh"
. "$(dirname "$0")/milter_mta.sh"
fx_init milter_logging
fx_need miltertest unshare mount mknod "$FX_PYTHON"
[ -x "$FX_MILTER" ] && [ -x "$FX_QRUNNER" ] || fx_fatal "mxlane-milter or mxlane-qrunner not built"
PROTO=$MXLANE_SRCDIR/tests/protocol

# one bulk message through the milter at SOCK, job NAME (an intake line in the log)
cat > "$FX/one.lua" <<'LUA'
dofile(lib)
run(function()
  local c = connect()
  expect("bulk message " .. job, c, { from = "<news@corp.test>", rcpts = { "<a@a.test>" },
    headers = { { "X-Mxlane-Job", job } } }, "eom", SMFIR_DISCARD)
  mt.disconnect(c)
end)
LUA
one() { timeout 30 miltertest -s "$FX/one.lua" -D sock="$1" -D lib="$PROTO/mt_lib.lua" -D job="$2" > "$FX/mt.$2.out" 2>&1; }

# ---- the milter, detached, logging to log_file
LOG=$FX/log/mxlane.log
mkdir -p "$FX/log"
fx_write_conf "$FX/mxlane.conf" "log_file=$LOG"
OWNER=$(fx_conf_get "$FX/mxlane.conf" mail_owner)
# the milter, running as mail_owner, reopens the file in this directory
chown "$OWNER" "$FX/log"
( umask 0022; "$FX_MILTER" -c "$FX/mxlane.conf" ) > "$FX/milter.start" 2>&1 || fx_fatal "the milter did not start: $(cat "$FX/milter.start")"
fx_wait_for grep -q 'starting: listening' "$LOG" || fx_fatal "no start line in $LOG"
PID=$(cat "$FX/queue/milter.pid")
fx_register_pid "$PID"
fx_register_log "$LOG"
SOCK=$(fx_conf_get "$FX/mxlane.conf" milter_socket)
fx_check_eq "log_file is created mode 0640 (not 0644), even under umask 022" 640 "$(stat -c %a "$LOG")"
fx_check_eq "owned by mail_owner and its group" "$OWNER:$(id -gn "$OWNER")" "$(stat -c %U:%G "$LOG")"

fx_check "a message before rotation" one "$SOCK" before
fx_check "its line is in the log" grep -q 'job="before"' "$LOG"

# ---- rotated, then SIGUSR1 (SIGHUP stops the milter)
mv "$LOG" "$LOG.1"
kill -USR1 "$PID"
fx_check "a message after SIGUSR1" one "$SOCK" after-usr1
fx_check "its line is in a new log_file" grep -q 'job="after-usr1"' "$LOG"
fx_check "not in the rotated one" bash -c "! grep -q 'after-usr1' '$LOG.1'"
fx_check_eq "the new file is 0640 too" 640 "$(stat -c %a "$LOG")"
fx_check "the milter still runs" kill -0 "$PID"

# ---- rotated without a signal (postfix logrotate style): noticed within 10 s of writing
mv "$LOG" "$LOG.2"
sleep 10.5
fx_check "a message after a rotation without a signal" one "$SOCK" after-rename
fx_check "its line is in a new log_file" grep -q 'job="after-rename"' "$LOG"
fx_check "not in the renamed one" bash -c "! grep -q 'after-rename' '$LOG.2'"

# ---- a log_file that cannot be opened anew: the lines go on into the one still open
chown root "$FX/log"
mv "$LOG" "$LOG.3"
kill -USR1 "$PID"
fx_check "a message when the directory is not writable for mail_owner" one "$SOCK" no-reopen
fx_check "its line is in the file still open" grep -q 'job="no-reopen"' "$LOG.3"
fx_check "after a warning that says why" grep -q "mxlane/milter\[$PID\]: warning: cannot reopen log_file $LOG: Permission denied" "$LOG.3"
fx_stop_pid "$PID"
fx_check "the stop is logged too" grep -q 'stopped' "$LOG.3"
chown "$OWNER" "$FX/log"

# ---- the qrunner reopens log_file on SIGHUP
QLOG=$FX/log/qrunner.log
fx_write_conf "$FX/q.conf" "log_file=$QLOG" "queue_directory=$FX/qq"
"$FX_QRUNNER" -c "$FX/q.conf" > "$FX/qrunner.start" 2>&1 || fx_fatal "the qrunner did not start: $(cat "$FX/qrunner.start")"
fx_wait_for grep -q 'starting' "$QLOG" || fx_fatal "no start line in $QLOG"
fx_wait_for test -s "$FX/qq/qrunner.pid"
QPID=$(cat "$FX/qq/qrunner.pid")
fx_register_pid "$QPID"
fx_register_log "$QLOG"
fx_check_eq "the qrunner's log_file is 0640 too" 640 "$(stat -c %a "$QLOG")"
timeout 10 "$FX_QRUNNER" -c "$FX/q.conf" > "$FX/qrunner2.out" 2>&1
fx_check_eq "a second qrunner on the queue exits 1 before detaching" 1 $?
fx_check "  saying so on stderr" grep -q "fatal: another mxlane-qrunner (pid $QPID) is running on this queue" "$FX/qrunner2.out"
mv "$QLOG" "$QLOG.1"
kill -HUP "$QPID"
fx_check "after SIGHUP the qrunner writes to a new log_file" fx_wait_for -t 10 grep -q 'reloaded' "$QLOG"
fx_check "not to the rotated one" bash -c "! grep -q 'reloaded' '$QLOG.1'"
fx_stop_pid "$QPID"

# ---- syslog unreachable: said once at start, with where the lines go instead
# A private /dev, bind-mounted over /dev in a mount namespace of the daemon's own.
DEV=$FX/dev
mkdir -p "$DEV"
mknod -m 666 "$DEV/null" c 1 3 && mknod -m 666 "$DEV/zero" c 1 5 && mknod -m 666 "$DEV/urandom" c 1 9 &&
    mknod -m 666 "$DEV/random" c 1 8 || fx_skip "cannot make device nodes here"
unshare -m true 2>/dev/null || fx_skip "no mount namespaces here"
# in_private_dev CMD...: CMD with $DEV as /dev
in_private_dev() { unshare -m --propagation private bash -c 'mount --bind "$0" /dev && exec "$@"' "$DEV" "$@"; }

fx_write_conf "$FX/s.conf" "queue_directory=$FX/qs" "milter_socket=unix:$FX/s.sock" "log_file ="
in_private_dev "$FX_MILTER" -c "$FX/s.conf" > "$FX/s.out" 2>&1
fx_check_eq "the milter without /dev/log starts" 0 $?
fx_wait_for test -s "$FX/qs/milter.pid" && fx_register_pid "$(cat "$FX/qs/milter.pid")"
fx_check "the milter says syslog is unreachable, on stderr before detaching" \
    grep -q "mxlane/milter: warning: syslog is unreachable (/dev/log: No such file or directory); log lines are lost until a syslog daemon" "$FX/s.out"
fx_check "  and how to log to a file instead" grep -q "set log_file to log to a file" "$FX/s.out"
fx_check_eq "  once" 1 "$(grep -c 'syslog is unreachable' "$FX/s.out")"
fx_stop_pid "$(cat "$FX/qs/milter.pid")"

fx_write_conf "$FX/t.conf" "queue_directory=$FX/qt" "log_file=$FX/t.log"
in_private_dev "$FX_QRUNNER" -c "$FX/t.conf" --once > "$FX/t.out" 2>&1
fx_check "the qrunner says it too, and that it logs to log_file instead" \
    grep -q "mxlane/qrunner: warning: syslog is unreachable (/dev/log: No such file or directory); logging to log_file $FX/t.log instead" "$FX/t.out"
fx_check "  also in the log_file" grep -q "warning: syslog is unreachable" "$FX/t.log"

# a syslog daemon at /dev/log: nothing to say, and the lines arrive there
"$FX_PYTHON" - "$DEV/log" "$FX/syslog.txt" > /dev/null 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
PY
fx_register_pid $!
fx_wait_for test -S "$DEV/log"
fx_write_conf "$FX/u.conf" "queue_directory=$FX/qu" "milter_socket=unix:$FX/u.sock" "log_file ="
in_private_dev "$FX_MILTER" -c "$FX/u.conf" > "$FX/u.out" 2>&1
fx_wait_for test -s "$FX/qu/milter.pid" && fx_register_pid "$(cat "$FX/qu/milter.pid")"
fx_check "with a listener at /dev/log the lines go to syslog" fx_wait_for grep -q 'mxlane/milter\[[0-9]*\]: starting: listening' "$FX/syslog.txt"
fx_check "and nothing is said about it" bash -c "! grep -q 'syslog is unreachable' '$FX/u.out'"
fx_stop_pid "$(cat "$FX/qu/milter.pid")"
fx_done
