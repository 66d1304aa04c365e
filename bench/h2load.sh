#!/usr/bin/env bash
# Unary throughput of the server stack against a bare tonic server, side by side in one run.
#
#   bench/h2load.sh [ROUNDS] [SECONDS]        (defaults: 3 rounds of 10 s per measurement)
#
# Starts, each pinned to core 0 (SERVER_CPU):
#   - target/release/bare-health  tonic + tonic-health, no layers           on 127.0.0.1:50099
#   - target/release/salestrainer up  (the suite in one process, SQLite)     on 127.0.0.1:50151
# and drives each with h2load pinned to core 1 (CLIENT_CPU): 16 connections x 32 streams
# (CONNECTIONS, STREAMS). Each round measures bare, then the suite's Health/Check, then
# GetPersona (through auth, membership and the config cache), then bare again, and prints
# req/s and the ratios against the mean of the two bare runs around them.
#
# Needs: h2load (apt-get install nghttp2-client), taskset, python3, and release builds:
#   cargo build --release -p salestrainer -p salestrainer-loadgen --bins
# BARE=bare-health-mimalloc measures against the bare server built with mimalloc instead of the
# system allocator (for a suite built with mimalloc).
# PERF=1 also records the suite's server with `perf record -g` during one extra GetPersona and
# one extra Health run and writes flamegraphs (inferno: cargo install inferno) to $OUT.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

rounds="${1:-3}"
secs="${2:-10}"
server_cpu="${SERVER_CPU:-0}"
client_cpu="${CLIENT_CPU:-1}"
conns="${CONNECTIONS:-16}"
streams="${STREAMS:-32}"
bin="${BIN_DIR:-target/release}"
bare="${BARE:-bare-health}"
out="${OUT:-$(mktemp -d /tmp/salestrainer-h2load.XXXXXX)}"
bare_port=50099
ours_port=50151
mkdir -p "$out"

for b in "$bare" salestrainer; do
  [[ -x "$bin/$b" ]] || { echo "missing $bin/$b: build it with cargo build --release" >&2; exit 1; }
done
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 1; }

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

data="$out/data"
mkdir -p "$data"
taskset -c "$server_cpu" "$bin/$bare" "127.0.0.1:$bare_port" >"$out/bare.log" 2>&1 &
pids+=("$!")
# Logs at warn: the load would otherwise measure the log writer.
SALESTRAINER_DATA_DIR="$data" SALESTRAINER_LISTEN="127.0.0.1:$ours_port" \
  SALESTRAINER_ADMIN_LISTEN="127.0.0.1:0" RUST_LOG="${RUST_LOG:-warn}" \
  taskset -c "$server_cpu" "$bin/salestrainer" up >"$out/ours.log" 2>&1 &
ours_pid="$!"
pids+=("$ours_pid")
"$bin/salestrainer" wait "127.0.0.1:$ours_port" --timeout-secs 120 >/dev/null

token="$(SALESTRAINER_DATA_DIR="$data" "$bin/salestrainer" token --org demo --role admin --subject demo-admin)"

# gRPC bodies: 1 flag byte + 4-byte big-endian length + the protobuf message.
python3 - "$out" <<'EOF'
import struct, sys
out = sys.argv[1]
def frame(msg): return b"\x00" + struct.pack(">I", len(msg)) + msg
def string_field(n, s):
    b = s.encode()
    return bytes([n << 3 | 2, len(b)]) + b
open(f"{out}/health.bin", "wb").write(frame(b""))  # HealthCheckRequest{service: ""}
open(f"{out}/get-persona.bin", "wb").write(
    frame(string_field(1, "organizations/demo/personas/dana")))
EOF

# Prints the req/s of one h2load run; fails when any request did not succeed.
h2() {
  local name="$1" url="$2" body="$3"; shift 3
  local log="$out/$name.txt"
  taskset -c "$client_cpu" h2load -D "$secs" --warm-up-time 2 -c "$conns" -m "$streams" -t 1 \
    -H 'content-type: application/grpc' -H 'te: trailers' "$@" -d "$body" "$url" >"$log" 2>&1
  local rps ok
  rps="$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i ~ /req\/s/) { v = $(i - 1); gsub(",", "", v); print v } }' "$log")"
  ok="$(awk '/^status codes:/ { print $3 }' "$log")"
  # h2load counts HTTP status; a gRPC error still answers 200, so also check one call.
  echo "${rps:-0} ${ok:-0}"
}

bare_url="http://127.0.0.1:$bare_port/grpc.health.v1.Health/Check"
ours_health_url="http://127.0.0.1:$ours_port/grpc.health.v1.Health/Check"
ours_persona_url="http://127.0.0.1:$ours_port/salestrainer.config.v1.ConfigService/GetPersona"
auth=(-H "authorization: Bearer $token")

# One GetPersona first: it must answer grpc-status 0 (a refused call would count as a success
# to h2load, which sees HTTP 200).
check="$(curl -sS --http2-prior-knowledge -o /dev/null -D - -X POST \
  -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" \
  --data-binary "@$out/get-persona.bin" "$ours_persona_url" 2>&1 | tr -d '\r' | grep -i '^grpc-status' || true)"
if [[ -n "$check" && "$check" != *": 0" ]]; then
  echo "GetPersona does not succeed ($check); see $out/ours.log" >&2
  exit 1
fi

printf '%-6s %12s %12s %12s %12s %10s %12s\n' round bare health persona bare-again health% persona%
sum_h=0; sum_p=0
for r in $(seq 1 "$rounds"); do
  read -r b1 _ < <(h2 "bare-$r-a" "$bare_url" "$out/health.bin")
  read -r h _ < <(h2 "health-$r" "$ours_health_url" "$out/health.bin")
  read -r p _ < <(h2 "persona-$r" "$ours_persona_url" "$out/get-persona.bin" "${auth[@]}")
  read -r b2 _ < <(h2 "bare-$r-b" "$bare_url" "$out/health.bin")
  read -r hp pp < <(python3 -c "b=($b1+$b2)/2; print(f'{100*$h/b:.1f} {100*$p/b:.1f}')")
  printf '%-6s %12.0f %12.0f %12.0f %12.0f %9s%% %11s%%\n' "$r" "$b1" "$h" "$p" "$b2" "$hp" "$pp"
done

if [[ "${PERF:-0}" == 1 ]]; then
  for what in persona health; do
    url="$ours_persona_url"; body="$out/get-persona.bin"; extra=("${auth[@]}")
    if [[ $what == health ]]; then url="$ours_health_url"; body="$out/health.bin"; extra=(); fi
    perf record -F 999 -g -p "$ours_pid" -o "$out/perf-$what.data" -- sleep "$secs" >/dev/null 2>&1 &
    rec=$!
    h2 "perf-$what" "$url" "$body" "${extra[@]}" >/dev/null
    wait "$rec" || true
    perf script -i "$out/perf-$what.data" 2>/dev/null | inferno-collapse-perf >"$out/perf-$what.folded"
    inferno-flamegraph <"$out/perf-$what.folded" >"$out/flamegraph-$what.svg"
    echo "flamegraph: $out/flamegraph-$what.svg"
  done
fi
echo "h2load logs: $out"
