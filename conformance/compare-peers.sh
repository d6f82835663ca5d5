#!/usr/bin/env bash
# compare-peers.sh - run the conformance library against OpenSMTPD and Postfix (Debian packages,
# started on loopback) and against Petrel, and write the side-by-side report.
#
# Run as root from anywhere in the repository (it needs what ../shared/bench/peer-bench.sh needs:
# apt, system users, mount namespaces).  `compare-peers.sh -h` for the options.
#
# How the peers are started: `peer-bench.sh install` fetches and unpacks the Debian packages
# (postfix and opensmtpd conflict, so neither is installed) and creates the system users; this
# script then starts each peer the way peer-bench.sh does (private mount namespace, private
# spool, loopback resolver), but with a configuration meant for conformance rather than load:
# STARTTLS with a throw-away self-signed certificate, mail for test.example and for the
# postmaster accepted into a maildir, AUTH where it can be had without extra packages (Petrel
# only: Postfix has no SASL without cyrus or dovecot; OpenSMTPD 6.8 from Debian 12 cannot do
# TLS at all here, see start_opensmtpd, and offers AUTH only inside TLS).  Everything listens on 127.0.0.1 only; every process started is stopped on exit.
#
# Clients are graded too when they are installed: swaks, msmtp, Python's smtplib, each against
# `petrel-conformance serve` (one scenario per connection).
set -Eeuo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BENCH=${PEER_BENCH:-$ROOT/../shared/bench/peer-bench.sh}
PEERBENCH_HOME=${PEERBENCH_HOME:-/var/tmp/peer-bench}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET_DIR/compare-peers
DOCS=0
KEEP=0
CLIENTS=1
OS_PORT=2611
PF_PORT=2612
PT_PORT=2613
SERVE_PORT=2614
DOMAIN=test.example

usage() {
  cat <<EOF
Usage: $PROG [--out DIR] [--docs] [--no-clients] [--keep]

  --out DIR      Where the reports go (default \$CARGO_TARGET_DIR/compare-peers): one
                 directory per server and side-by-side/ with all of them.
  --docs         Also rewrite the generated part of docs/conformance.md.
  --no-clients   Do not grade the SMTP clients (swaks, msmtp, smtplib).
  --keep         Keep the run directory (configurations, logs, spools).
Ports (127.0.0.1): OpenSMTPD $OS_PORT, Postfix $PF_PORT, Petrel $PT_PORT, scripted server $SERVE_PORT.
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --out) shift; OUT=${1:?} ;;
    --docs) DOCS=1 ;;
    --keep) KEEP=1 ;;
    --no-clients) CLIENTS=0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (see peer-bench.sh)"
[ -x "$BENCH" ] || die "peer-bench.sh not found at $BENCH (set PEER_BENCH)"

STARTED_PIDS=()
RUN_DIR=""
cleanup() {
  local rc=$? pid i
  trap - EXIT INT TERM
  for pid in "${STARTED_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "$RUN_DIR" ] && [ -d "$RUN_DIR" ]; then
    if [ "$KEEP" = 1 ]; then log "run directory kept: $RUN_DIR"; else rm -rf "$RUN_DIR"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_listen() {   # wait_listen PORT PID (without connecting: the scripted server counts connections)
  local i
  for i in $(seq 100); do
    port_busy "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
wait_port() {     # wait_port PORT PID
  local i
  for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- packages and binaries
log "preparing the peers (peer-bench.sh install)"
"$BENCH" --home "$PEERBENCH_HOME" install >&2
if pkg_installed postfix && [ -z "${PEERBENCH_FORCE_UNPACK:-}" ]; then PF_ROOT=""; else PF_ROOT=$PEERBENCH_HOME/postfix-root; fi
if pkg_installed opensmtpd && [ -z "${PEERBENCH_FORCE_UNPACK:-}" ]; then OS_ROOT=""; else OS_ROOT=$PEERBENCH_HOME/opensmtpd-root; fi
PF_LIBPATH=${PF_ROOT:+$PF_ROOT/usr/lib/postfix}
deb_version() {   # deb_version PKG ROOT
  if [ -z "$2" ]; then dpkg-query -W -f='${Version}' "$1"
  else dpkg-deb -f "$(ls -t "$PEERBENCH_HOME"/debs/"$1"_*.deb | head -1)" Version; fi
}
PF_VERSION=$(deb_version postfix "$PF_ROOT")
OS_VERSION=$(deb_version opensmtpd "$OS_ROOT")

log "building petreld and petrel-conformance"
(cd "$ROOT" && cargo build -q -p petrel-daemon -p petrel-conformance)
CONF=$TARGET_DIR/debug/petrel-conformance
PETRELD=$TARGET_DIR/debug/petreld
[ -x "$CONF" ] && [ -x "$PETRELD" ] || die "build products missing in $TARGET_DIR/debug"

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/compare-peers.XXXXXX"); chmod 755 "$RUN_DIR"
mkdir -p "$OUT"
NS_RESOLV=$RUN_DIR/resolv.conf
printf 'nameserver 127.0.0.1\nlookup file\noptions ndots:0 attempts:1 timeout:1\n' >"$NS_RESOLV"

# A throw-away certificate for every server's STARTTLS.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=localhost" \
  -keyout "$RUN_DIR/key.pem" -out "$RUN_DIR/cert.pem" 2>/dev/null
chmod 644 "$RUN_DIR/cert.pem"; chmod 600 "$RUN_DIR/key.pem"
PASSWORD=conformance-secret

for p in $OS_PORT $PF_PORT $PT_PORT $SERVE_PORT; do port_busy "$p" && die "port $p is already in use"; done

# ---------------------------------------------------------------- OpenSMTPD
start_opensmtpd() {
  local d=$RUN_DIR/opensmtpd smtpd=${OS_ROOT}/usr/sbin/smtpd
  mkdir -p "$d/varspool/smtpd" "$d/run" "$d/maildir"
  chmod 711 "$d/varspool/smtpd"; chown peerbench:peerbench "$d/maildir"
  cat >"$d/smtpd.conf" <<EOF
# compare-peers OpenSMTPD instance (loopback only)
#
# No TLS (and so no AUTH, which OpenSMTPD offers only inside TLS): OpenSMTPD 6.8 as packaged for
# Debian 12 fails every TLS handshake against OpenSSL 3 ("SSL routines::EVP lib", with RSA and
# ECDSA keys alike, and with openssl s_client as the client too), so its STARTTLS and AUTH
# cases would fail for a reason unrelated to SMTP.  They are skipped instead.
table vusers { "@$DOMAIN" = "peerbench", "postmaster" = "peerbench" }
# No hostname option: <postmaster> is completed with the machine's name, which "for local"
# matches.
listen on 127.0.0.1 port $OS_PORT
action "bench" maildir "$d/maildir" virtual <vusers>
match from any for domain "$DOMAIN" action "bench"
match from any for local action "bench"
EOF
  "$smtpd" -n -f "$d/smtpd.conf" >"$d/check.log" 2>&1 || { cat "$d/check.log" >&2; die "smtpd.conf rejected"; }
  local binds="mount --bind '$d/varspool' /var/spool && mount --bind '$d/run' /run"
  binds="$binds && mount --bind '$NS_RESOLV' /etc/resolv.conf"
  [ -z "$OS_ROOT" ] || binds="$binds && mount --bind '$OS_ROOT/usr/libexec/opensmtpd' /usr/libexec/opensmtpd"
  unshare -m --propagation private sh -c "$binds && exec '$smtpd' -d -f '$d/smtpd.conf'" >"$d/smtpd.log" 2>&1 &
  local pid=$!; STARTED_PIDS+=("$pid")
  wait_port "$OS_PORT" "$pid" || { tail "$d/smtpd.log" >&2; die "opensmtpd did not come up"; }
}

# ---------------------------------------------------------------- Postfix
start_postfix() {
  local d=$RUN_DIR/postfix
  mkdir -p "$d/conf" "$d/spool" "$d/data" "$d/mail"
  chown postfix:postfix "$d/data"; chown peerbench:peerbench "$d/mail"
  cp "$RUN_DIR/cert.pem" "$d/cert.pem"; install -m 600 "$RUN_DIR/key.pem" "$d/key.pem"
  cat >"$d/conf/main.cf" <<EOF
# compare-peers Postfix instance (loopback only)
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/data
daemon_directory = ${PF_ROOT}/usr/lib/postfix/sbin
command_directory = ${PF_ROOT}/usr/sbin
shlib_directory = ${PF_ROOT}/usr/lib/postfix
meta_directory = ${PF_ROOT}/etc/postfix
mail_owner = postfix
setgid_group = postdrop
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH
maillog_file_prefixes = $d
maillog_file = $d/maillog
myhostname = bench-postfix.localdomain
mydomain = localdomain
# <postmaster> without a domain becomes postmaster@test.example, a mailbox served here.
myorigin = $DOMAIN
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# The conformance client connects from 127.0.0.1, which permit_mynetworks would let relay
# anywhere: refuse other domains for everyone, as a public MX does.
smtpd_relay_restrictions = reject_unauth_destination
smtp_dns_support_level = disabled
alias_maps =
alias_database =
biff = no
smtputf8_enable = yes
smtpd_tls_security_level = may
smtpd_tls_cert_file = $d/cert.pem
smtpd_tls_key_file = $d/key.pem
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $d/mail
virtual_mailbox_maps = static:maildir/
virtual_uid_maps = static:$(id -u peerbench)
virtual_gid_maps = static:$(id -g peerbench)
EOF
  cat >"$d/conf/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n    -      n      -      -       smtpd
cleanup    unix  n       -      n      -      0       cleanup
qmgr       unix  n       -      n      300    1       qmgr
rewrite    unix  -       -      n      -      -       trivial-rewrite
bounce     unix  -       -      n      -      0       bounce
defer      unix  -       -      n      -      0       bounce
trace      unix  -       -      n      -      0       bounce
verify     unix  -       -      n      -      1       verify
flush      unix  n       -      n      1000?  0       flush
proxymap   unix  -       -      n      -      -       proxymap
proxywrite unix  -       -      n      -      1       proxymap
showq      unix  n       -      n      -      -       showq
error      unix  -       -      n      -      -       error
retry      unix  -       -      n      -      -       error
discard    unix  -       -      n      -      -       discard
local      unix  -       n      n      -      -       local
virtual    unix  -       n      n      -      -       virtual
smtp       unix  -       -      n      -      -       smtp
relay      unix  -       -      n      -      -       smtp
anvil      unix  -       -      n      -      1       anvil
scache     unix  -       -      n      -      1       scache
tlsmgr     unix  -       -      n      1000?  1       tlsmgr
postlog    unix-dgram n  -      n      -      1       postlogd
EOF
  local env=(); [ -z "$PF_LIBPATH" ] || env=(env "LD_LIBRARY_PATH=$PF_LIBPATH")
  "${env[@]}" "${PF_ROOT}/usr/sbin/postfix" -c "$d/conf" check >"$d/check.log" 2>&1 \
    || { cat "$d/check.log" >&2; die "postfix check failed"; }
  "${env[@]}" unshare -m --propagation private sh -c \
    "mount --bind '$NS_RESOLV' /etc/resolv.conf && exec '${PF_ROOT}/usr/lib/postfix/sbin/master' -c '$d/conf' -w" \
    >"$d/master.log" 2>&1 || { cat "$d/master.log" "$d/maillog" >&2 2>/dev/null; die "postfix master failed to start"; }
  local pid; pid=$(tr -d ' \n' <"$d/spool/pid/master.pid"); STARTED_PIDS+=("$pid")
  wait_port "$PF_PORT" "$pid" || die "postfix did not come up"
}

# ---------------------------------------------------------------- Petrel
start_petrel() {
  local d=$RUN_DIR/petrel
  mkdir -p "$d"
  cp "$RUN_DIR/cert.pem" "$d/cert.pem"; install -m 600 "$RUN_DIR/key.pem" "$d/key.pem"
  printf 'conformance %s\n' "$(openssl passwd -6 "$PASSWORD")" >"$d/creds"
  cat >"$d/petrel.conf" <<EOF
# compare-peers Petrel instance (loopback only)
pki localhost cert "$d/cert.pem"
pki localhost key "$d/key.pem"
table creds file:$d/creds
table everyone { "@" = "petrel" }
table accounts { "petrel" = "-:-:$d" }
listen on 127.0.0.1 port $PT_PORT hostname bench-petrel tls pki localhost auth-optional <creds>
action "local" maildir "$d/mail/%{dest.user:lowercase}" virtual <everyone> userbase <accounts>
match from any for domain "$DOMAIN" action "local"
match from any for local action "local"
EOF
  "$PETRELD" -n -f "$d/petrel.conf" >/dev/null || die "petrel.conf rejected"
  "$PETRELD" -f "$d/petrel.conf" -d "$d/data" >"$d/petreld.log" 2>&1 &
  local pid=$!; STARTED_PIDS+=("$pid")
  wait_port "$PT_PORT" "$pid" || { tail "$d/petreld.log" >&2; die "petreld did not come up"; }
}

log "starting OpenSMTPD $OS_VERSION on 127.0.0.1:$OS_PORT"; start_opensmtpd
log "starting Postfix $PF_VERSION on 127.0.0.1:$PF_PORT"; start_postfix
log "starting Petrel on 127.0.0.1:$PT_PORT"; start_petrel

# ---------------------------------------------------------------- the server runs
run_suite() {     # run_suite NAME PORT JOBS [ARGS...]
  local name=$1 port=$2 jobs=$3; shift 3
  log "running the library against $name"
  rm -rf "$OUT/$name"
  "$CONF" run --target "$name=127.0.0.1:$port" --domain "$DOMAIN" --jobs "$jobs" \
    --report-dir "$OUT/$name" "$@" >"$OUT/$name.txt" 2>&1 || true
  cat "$OUT/$name.txt" >&2
}
# OpenSMTPD 6.8 has a listen backlog of 5: one connection at a time.
run_suite opensmtpd "$OS_PORT" 1
run_suite postfix "$PF_PORT" 2
run_suite petrel "$PT_PORT" 4 --auth "conformance:$PASSWORD"
"$CONF" report --out "$OUT/side-by-side" "$OUT/petrel/report.json" \
  "$OUT/opensmtpd/report.json" "$OUT/postfix/report.json" >/dev/null

# ---------------------------------------------------------------- the client runs
CLIENT_REPORTS=()
grade_client() {  # grade_client NAME COMMAND... (run once per scenario; PORT in the command)
  local name=$1; shift
  local n; n=$("$CONF" list --scenarios | wc -l)
  log "grading the client $name"
  rm -rf "$OUT/client-$name"
  "$CONF" serve --listen "127.0.0.1:$SERVE_PORT" --client "$name" --timeout 15 --accept-timeout 70 \
    --report-dir "$OUT/client-$name" >"$OUT/client-$name.txt" 2>&1 &
  local spid=$!
  STARTED_PIDS+=("$spid")
  wait_listen "$SERVE_PORT" "$spid" || { cat "$OUT/client-$name.txt" >&2; return 0; }
  local i
  for i in $(seq "$n"); do
    timeout 60 "$@" >>"$RUN_DIR/client-$name.log" 2>&1 || true
    kill -0 "$spid" 2>/dev/null || break
  done
  wait "$spid" || true
  cat "$OUT/client-$name.txt" >&2
  [ -f "$OUT/client-$name/report.json" ] && CLIENT_REPORTS+=("$OUT/client-$name/report.json")
  return 0
}
BODY=$'first line\n.a line starting with a dot\nlast line'
if [ "$CLIENTS" = 1 ]; then
  # The clients graded (swaks comes with peer-bench.sh; its TLS needs Net::SSLeay).
  missing=()
  for p in swaks libnet-ssleay-perl msmtp; do pkg_installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || log "WARNING: could not install ${missing[*]}; those clients are not graded"
  fi
  if command -v swaks >/dev/null; then
    grade_client swaks swaks --server 127.0.0.1 --port "$SERVE_PORT" --helo client.test \
      --from alice@src.test --to bob@"$DOMAIN" --tls-optional --body "$BODY"
  fi
  if command -v msmtp >/dev/null; then
    printf 'To: bob@%s\nSubject: msmtp\n\n%s\n' "$DOMAIN" "$BODY" >"$RUN_DIR/msmtp.msg"
    # msmtp has no opportunistic STARTTLS (TLS is on, and then required, or off): graded in
    # plaintext, so its STARTTLS cases are skipped or fail "not used".
    grade_client msmtp sh -c "msmtp --host=127.0.0.1 --port=$SERVE_PORT --tls=off \
      --domain=client.test --from=alice@src.test bob@$DOMAIN <'$RUN_DIR/msmtp.msg'"
  fi
  if command -v python3 >/dev/null; then
    cat >"$RUN_DIR/grade-smtplib.py" <<'EOF'
import smtplib, sys
port = int(sys.argv[1])
msg = "From: <alice@src.test>\r\nTo: <bob@test.example>\r\nSubject: smtplib\r\n\r\nfirst line\r\n.a line starting with a dot\r\nlast line\r\n"
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=15)
s.ehlo_or_helo_if_needed()
if s.has_extn("starttls"):
    s.starttls()
try:
    s.sendmail("alice@src.test", ["bob@test.example"], msg)
except smtplib.SMTPException as e:
    print("sendmail:", e, file=sys.stderr)
s.quit()
EOF
    grade_client smtplib python3 "$RUN_DIR/grade-smtplib.py" "$SERVE_PORT"
  fi
  if [ ${#CLIENT_REPORTS[@]} -gt 0 ]; then
    "$CONF" report --out "$OUT/clients" "${CLIENT_REPORTS[@]}" >/dev/null
  fi
fi

# ---------------------------------------------------------------- versions and docs
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "petrel: $(git -C "$ROOT" rev-parse --short HEAD) ($(git -C "$ROOT" describe --always --dirty))"
  echo "opensmtpd: $OS_VERSION (Debian package, unpacked)"
  echo "postfix: $PF_VERSION (Debian package, unpacked)"
  command -v swaks >/dev/null && echo "swaks: $(swaks --version 2>&1 | head -1)"
  command -v msmtp >/dev/null && echo "msmtp: $(msmtp --version | head -1)"
  command -v python3 >/dev/null && echo "python: $(python3 --version 2>&1)"
  echo "kernel: $(uname -sr)"
} >"$OUT/versions.txt"
cat "$OUT/versions.txt" >&2

if [ "$DOCS" = 1 ]; then
  doc=$ROOT/docs/conformance.md
  [ -f "$doc" ] || die "$doc missing"
  gen=$RUN_DIR/generated.md
  {
    echo "<!-- generated by conformance/compare-peers.sh: do not edit by hand -->"
    echo
    echo '```'
    cat "$OUT/versions.txt"
    echo '```'
    echo
    echo "### The library"
    echo
    "$CONF" list --summary
    echo
    sed -E -e '1,/^## Results/d' -e 's/^(#+) /#\1 /' "$OUT/side-by-side/report.md" | sed '1s/^/### Servers\n/'
    if [ -f "$OUT/clients/report.md" ]; then
      echo
      echo "### Clients"
      sed -E -e '1,/^## Results/d' -e 's/^(#+) /##\1 /' "$OUT/clients/report.md"
    fi
    echo
    echo "<!-- end of generated part -->"
  } >"$gen"
  awk -v gen="$gen" '
    /^<!-- generated by conformance\/compare-peers.sh/ { while ((getline l < gen) > 0) print l; skip=1; next }
    /^<!-- end of generated part -->/ { skip=0; next }
    !skip { print }' "$doc" >"$doc.new"
  mv "$doc.new" "$doc"
  log "docs/conformance.md updated"
fi
log "reports: $OUT/side-by-side/report.html (servers), $OUT/clients/report.html (clients)"
