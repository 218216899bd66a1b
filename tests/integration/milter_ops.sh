#!/bin/bash
# milter_ops: one milter per queue (pid lock, refused before it touches anything), a live socket is never
# taken over and only its owner removes it; the start's warnings about where the milter listens
# (inet, outside a chrooted Postfix's reach); the hint for a missing mail_owner matches the README.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init milter_ops
fx_need postconf "$FX_PYTHON"
[ -x "$FX_MILTER" ] || fx_fatal "$FX_MILTER not built"

SOCK=$FX/run/milter.sock
# answers SOCK: does a process accept connections on the unix socket?
answers() { "$FX_PYTHON" -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$1" 2>/dev/null; }
# start_fg NAME CONF [ENV=VALUE...]: a milter in the foreground, output in $FX/NAME.out; sets PID.
start_fg() {
    local name=$1 conf=$2
    shift 2
    ( umask 0111; exec env "$@" "$FX_MILTER" -c "$conf" -f ) > "$FX/$name.out" 2>&1 &
    PID=$!
    fx_register_pid "$PID"
    fx_register_log "$FX/$name.out"
    fx_wait_for grep -q 'starting: listening' "$FX/$name.out" || fx_fatal "milter $name did not start: $(tail -n 3 "$FX/$name.out")"
}
# second NAME CONF [-f]: a second milter that must refuse at once; its exit status in RC.
second() {
    local name=$1 conf=$2
    shift 2
    timeout 5 "$FX_MILTER" -c "$conf" "$@" > "$FX/$name.out" 2>&1
    RC=$?
}

# ---- a second milter on the same queue
fx_write_conf "$FX/a.conf" "queue_directory=$FX/qa" "milter_socket=unix:$SOCK"
start_fg a "$FX/a.conf"
A=$PID
ino=$(stat -c %i "$SOCK")
fx_check_eq "the pid lock names the milter" "$A" "$(cat "$FX/qa/milter.pid")"
second b "$FX/a.conf" -f
fx_check_eq "a second milter on the queue exits 1" 1 "$RC"
fx_check_eq "with one line on stderr" 1 "$(wc -l < "$FX/b.out")"
fx_check "the line names the running one" \
    grep -q "fatal: another mxlane-milter (pid $A) is running on this queue ($FX/qa/milter.pid)" "$FX/b.out"
second c "$FX/a.conf"
fx_check_eq "also when it would detach: exit 1 before detaching" 1 "$RC"
fx_check "  and says why" grep -q "another mxlane-milter (pid $A) is running" "$FX/c.out"
fx_check_eq "the socket is still the first milter's" "$ino" "$(stat -c %i "$SOCK" 2>&1)"
fx_check "the first milter still answers on it" answers "$SOCK"

# ---- another queue, the same socket: a live socket is never taken over
fx_write_conf "$FX/d.conf" "queue_directory=$FX/qd" "milter_socket=unix:$SOCK"
second d "$FX/d.conf" -f
fx_check_eq "a milter of another queue on a live socket exits 1" 1 "$RC"
fx_check "it says a running process listens there" grep -q "a running process (another mxlane-milter?) listens on $SOCK" "$FX/d.out"
fx_check_eq "the socket is untouched" "$ino" "$(stat -c %i "$SOCK" 2>&1)"
fx_check "the first milter still answers" answers "$SOCK"

# ---- stopping: logged, and the milter removes its own socket
fx_stop_pid "$A"
fx_check "it logs 'stopping'" grep -q 'mxlane/milter\[[0-9]*\]: stopping' "$FX/a.out"
fx_check "and 'stopped'" grep -q 'stopped$' "$FX/a.out"
fx_check "its socket is gone" test ! -e "$SOCK"

# ---- a killed milter's stale socket is taken over by the next one
start_fg e "$FX/a.conf"
kill -KILL "$PID"
fx_wait_for bash -c "! kill -0 $PID 2>/dev/null"
fx_check "a killed milter leaves its socket" test -S "$SOCK"
start_fg f "$FX/a.conf"
F=$PID
fx_check "the next milter starts on the stale socket" answers "$SOCK"
fx_stop_pid "$F"

# ---- detached: the pid file names the daemon, a second one is refused
fx_write_conf "$FX/g.conf" "queue_directory=$FX/qg" "milter_socket=unix:$SOCK" "log_file=$FX/g.log"
( umask 0111; "$FX_MILTER" -c "$FX/g.conf" ) > "$FX/g.out" 2>&1
fx_check_eq "the detaching milter's parent exits 0" 0 $?
fx_wait_for grep -q 'starting: listening' "$FX/g.log"
G=$(cat "$FX/qg/milter.pid")
fx_register_pid "$G"
fx_check "the pid file names the detached milter" kill -0 "$G"
second h "$FX/g.conf"
fx_check_eq "a second detaching milter exits 1" 1 "$RC"
fx_check "  naming the detached one" grep -q "another mxlane-milter (pid $G) is running" "$FX/h.out"
fx_stop_pid "$G"
fx_check "the detached milter logs stopping" grep -q 'stopping' "$FX/g.log"
fx_check "and removes its socket" test ! -e "$SOCK"

# ---- warnings at start about where the milter listens
INET=$(fx_port 3)
fx_write_conf "$FX/i.conf" "queue_directory=$FX/qi" "milter_socket=inet:$INET@127.0.0.1"
( exec "$FX_MILTER" -c "$FX/i.conf" -f ) > "$FX/i.out" 2>&1 &
PID=$!
fx_register_pid "$PID"
fx_wait_port 127.0.0.1 "$INET" || fx_fatal "the inet milter does not listen"
fx_check "an inet socket is warned about" grep -q "warning: milter_socket = inet:$INET@127.0.0.1 is a TCP socket" "$FX/i.out"
fx_stop_pid "$PID"

# A Postfix configuration like Debian's stock one: smtpd chrooted in its queue directory.
# postconf reads it through MAIL_CONFIG; no Postfix runs.
pf_conf() {  # DIR CHROOT(y|n)
    mkdir -p "$1"
    printf 'queue_directory = %s\ncompatibility_level = 3.6\n' "$FX/pfspool" > "$1/main.cf"
    printf 'smtp      inet  n       -       %s       -       -       smtpd\n' "$2" > "$1/master.cf"
    printf 'pickup    unix  n       -       %s       60      1       pickup\n' "$2" >> "$1/master.cf"
}
pf_conf "$FX/pf-chroot" y
pf_conf "$FX/pf-plain" n
fx_write_conf "$FX/j.conf" "queue_directory=$FX/qj" "milter_socket=unix:$SOCK"
start_fg j "$FX/j.conf" MAIL_CONFIG="$FX/pf-chroot"
fx_check "a socket outside a chrooted smtpd's reach is warned about" \
    grep -q "warning: milter_socket $SOCK is outside $FX/pfspool, but Postfix runs smtpd chrooted there (smtp/inet" "$FX/j.out"
fx_check "  with the fix" grep -q "use milter_socket = unix:$FX/pfspool/mxlane/milter.sock with smtpd_milters = unix:mxlane/milter.sock" "$FX/j.out"
fx_stop_pid "$PID"
start_fg k "$FX/j.conf" MAIL_CONFIG="$FX/pf-plain"
fx_check "no warning when smtpd is not chrooted" bash -c "! grep -q 'warning' '$FX/k.out'"
fx_stop_pid "$PID"
start_fg l "$FX/j.conf" MAIL_CONFIG="$FX/no-postfix-here"
fx_check "no warning and no failure without Postfix" bash -c "! grep -q 'warning' '$FX/l.out'"
fx_stop_pid "$PID"
fx_write_conf "$FX/m.conf" "queue_directory=$FX/qm" "milter_socket=unix:$FX/pfspool/mxlane/milter.sock"
start_fg m "$FX/m.conf" MAIL_CONFIG="$FX/pf-chroot"
fx_check "no warning for a socket inside the chroot" bash -c "! grep -q 'warning' '$FX/m.out'"
fx_check "the socket's directory was made" test -S "$FX/pfspool/mxlane/milter.sock"
fx_stop_pid "$PID"

# ---- a missing mail_owner: the hint is the README's command
fx_write_conf "$FX/n.conf" "queue_directory=$FX/qn" "mail_owner=no_such_user_mxl"
second n "$FX/n.conf" -f
fx_check_eq "an unknown mail_owner stops the milter" 1 "$RC"
fx_check "the hint is adduser, as in the README" grep -q "no such user (create it, e.g. adduser --system --group --home $FX/qn --no-create-home no_such_user_mxl)" "$FX/n.out"
fx_check "the README gives the same command" grep -q "adduser --system --group --home /var/spool/mxlane --no-create-home mxlane" "$MXLANE_SRCDIR/README.md"
fx_done
