#!/usr/bin/env bash
# A local 3-node ringmaster cluster on 127.0.0.1-3 (udpu), run as the
# current user with sockets, state and logs in a temporary directory.
# Prints `ringctl status` of each node, installs a resource group
# (examples/demo-resources.toml: two builtin:dummy resources), shows where
# it runs, stops the node running it and shows the group on another node,
# then restarts that node and waits; Ctrl-C stops everything.
# Node i serves its metrics and status page on 127.0.0.1:$((METRICS_PORT+i-1))
# (default 9664, 9665, 9666: one host, so one port per node).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
DIR=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-demo.XXXXXX")
PIDS=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping the demo cluster"
  for p in "${PIDS[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap stop INT TERM EXIT

# A free UDP port shared by the three nodes (each has its own address).
PORT=${PORT:-$(python3 -c 'import socket,random
for _ in range(50):
    p=random.randint(20000,40000); ok=True
    for a in ("127.0.0.1","127.0.0.2","127.0.0.3"):
        s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
        try: s.bind((a,p))
        except OSError: ok=False
        s.close()
    if ok: print(p); break')}

METRICS_PORT=${METRICS_PORT:-9664}

"$BIN/ringctl" keygen -o "$DIR/authkey" 2>/dev/null
for i in 1 2 3; do
  mkdir -p "$DIR/n$i"
  cat > "$DIR/n$i/corosync.toml" <<TOML
[totem]
cluster_name = "demo"
transport = "udpu"
port = $PORT
token = 1000
crypto_cipher = "aes256"
keyfile = "$DIR/authkey"

[[node]]
nodeid = 1
name = "n1"
ring0_addr = "127.0.0.1"

[[node]]
nodeid = 2
name = "n2"
ring0_addr = "127.0.0.2"

[[node]]
nodeid = 3
name = "n3"
ring0_addr = "127.0.0.3"

[quorum]
provider = "votequorum"

[logging]
to_stderr = true
debug = false

[ipc]
socket = "$DIR/n$i/ringd.sock"

[system]
state_dir = "$DIR/n$i"

[metrics]
listen = "127.0.0.1:$((METRICS_PORT + i - 1))"

[resources]
run_dir = "$DIR/n$i/run"
startup_wait = 5000
TOML
done
start_node() {
  "$BIN/ringd" -c "$DIR/n$1/corosync.toml" --node "$1" >>"$DIR/n$1/ringd.log" 2>&1 &
  PIDS[$1]=$!
}
for i in 1 2 3; do start_node $i; done
echo "3 nodes started (udpu on 127.0.0.1-3, port $PORT); files in $DIR"

# Wait until every node reports the same 3 members.
for _ in $(seq 1 150); do
  n=0
  for i in 1 2 3; do
    c=$("$BIN/ringctl" --socket "$DIR/n$i/ringd.sock" status --json 2>/dev/null | grep -c '"nodeid"' || true)
    [ "$c" = 3 ] && n=$((n + 1))
  done
  [ $n = 3 ] && break
  sleep 0.1
done
for i in 1 2 3; do
  echo "--- ringctl --socket $DIR/n$i/ringd.sock status"
  "$BIN/ringctl" --socket "$DIR/n$i/ringd.sock" status || echo "(node $i not answering; see $DIR/n$i/ringd.log)"
done

ctl() { local i=$1; shift; "$BIN/ringctl" --socket "$DIR/n$i/ringd.sock" "$@"; }
# holder: the node where every member of group web runs ("" until then).
holder() {
  ctl "$1" crm status --json 2>/dev/null | python3 -c 'import json,sys
d=json.load(sys.stdin); r=[x for x in d["resources"] if x.get("group")=="web"]
n={x["node"] for x in r}
print(n.pop() if r and len(n)==1 and all(x["state"]=="started" for x in r) else "")' 2>/dev/null || true
}
echo
echo "--- ringctl crm apply -f examples/demo-resources.toml"
ctl 1 crm apply -f examples/demo-resources.toml
h=""
for _ in $(seq 1 300); do h=$(holder 1); [ -n "$h" ] && break; sleep 0.1; done
echo "--- ringctl crm status"
ctl 1 crm status || true
if [ -n "$h" ]; then
  i=${h#n}; o=$(( i % 3 + 1 ))
  echo; echo "--- stopping $h (kill -TERM ringd), which runs group web: a clean stop moves the group first"
  t0=$(date +%s%N); nh=""
  kill -TERM "${PIDS[$i]}"
  for _ in $(seq 1 300); do nh=$(holder $o); [ -n "$nh" ] && [ "$nh" != "$h" ] && break; sleep 0.05; done
  echo "group web moved $h -> ${nh:-nowhere} $(( ($(date +%s%N) - t0) / 1000000 )) ms after the TERM"
  wait "${PIDS[$i]}" 2>/dev/null || true
  echo "$h has left the ring"
  ctl $o crm status || true
  echo; echo "--- restarting $h: it rejoins; with resource-stickiness the group stays on $nh"
  start_node "$i"
fi
echo
echo "Try:  $BIN/ringctl --socket $DIR/n1/ringd.sock status --json"
echo "      $BIN/ringctl --socket $DIR/n1/ringd.sock events --follow"
for i in 1 2 3; do
  echo "      curl -s 127.0.0.1:$((METRICS_PORT + i - 1))/metrics   (n$i; status page: http://127.0.0.1:$((METRICS_PORT + i - 1))/)"
done
echo "      $BIN/ringctl --socket $DIR/n1/ringd.sock crm status"
echo "      $BIN/ringctl --socket $DIR/n1/ringd.sock crm resource move web n1"
echo "      kill one ringd and watch the others re-form the ring and move the group. Ctrl-C stops the demo."
wait
