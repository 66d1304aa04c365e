#!/usr/bin/env bash
# GetPersona of two builds of the suite, side by side in every round, against both bare servers.
#
#   BEFORE=dir AFTER=dir bench/h2load-pair.sh [ROUNDS] [SECONDS]
#
# On a shared machine the load moves between the runs of bench/h2load.sh, so a ratio taken in
# one run and a ratio taken two minutes later do not compare well. Here both suites run at
# once (each `salestrainer up` from its own directory, SQLite, server core 0, h2load core 1,
# as bench/h2load.sh), and each round measures bare-health (system allocator),
# bare-health-jemalloc, GetPersona of BEFORE, GetPersona of AFTER, Health/Check of BEFORE and of
# AFTER, then the two bare servers again, so before and after see the same moment. BEFORE needs salestrainer; AFTER needs
# salestrainer, bare-health and bare-health-jemalloc.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
rounds="${1:-3}"
secs="${2:-6}"
before="${BEFORE:?BEFORE=dir of the before binaries}"
after="${AFTER:?AFTER=dir of the after binaries}"
out="${OUT:-$(mktemp -d /tmp/salestrainer-h2pair.XXXXXX)}"
mkdir -p "$out"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# Ports away from bench/h2load.sh's, so both can run on one machine.
bare_port=50390
bare_je_port=50391
declare -A port=([before]=50392 [after]=50393) token
taskset -c 0 "$after/bare-health" "127.0.0.1:$bare_port" >"$out/bare.log" 2>&1 &
pids+=("$!")
taskset -c 0 "$after/bare-health-jemalloc" "127.0.0.1:$bare_je_port" >"$out/bare-je.log" 2>&1 &
pids+=("$!")
sleep 1
for pid in "${pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || { echo "a bare server did not start; see $out/bare*.log" >&2; exit 1; }
done
for which in before after; do
  bin="$before"; [[ $which == after ]] && bin="$after"
  mkdir -p "$out/$which-data"
  SALESTRAINER_DATA_DIR="$out/$which-data" SALESTRAINER_LISTEN="127.0.0.1:${port[$which]}" \
    SALESTRAINER_ADMIN_LISTEN="127.0.0.1:0" RUST_LOG=warn \
    taskset -c 0 "$bin/salestrainer" up >"$out/$which.log" 2>&1 &
  pids+=("$!")
  "$bin/salestrainer" wait "127.0.0.1:${port[$which]}" --timeout-secs 120 >/dev/null
  token[$which]="$(SALESTRAINER_DATA_DIR="$out/$which-data" "$bin/salestrainer" token --org demo --role admin --subject demo-admin)"
done

python3 - "$out" <<'PY'
import struct, sys
out = sys.argv[1]
def frame(m): return b"\x00" + struct.pack(">I", len(m)) + m
b = "organizations/demo/personas/dana".encode()
open(f"{out}/health.bin", "wb").write(frame(b""))
open(f"{out}/get-persona.bin", "wb").write(frame(bytes([1 << 3 | 2, len(b)]) + b))
PY

for which in before after; do
  status="$(curl -sS --http2-prior-knowledge -o /dev/null -D - -X POST \
    -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer ${token[$which]}" \
    --data-binary "@$out/get-persona.bin" \
    "http://127.0.0.1:${port[$which]}/salestrainer.config.v1.ConfigService/GetPersona" |
    tr -d '\r' | grep -i '^grpc-status' || true)"
  if [[ -n "$status" && "$status" != *": 0" ]]; then
    echo "GetPersona of $which does not succeed ($status)" >&2
    exit 1
  fi
done

h2() {
  local log="$out/$1.txt" url="$2" body="$3"; shift 3
  taskset -c 1 h2load -D "$secs" --warm-up-time 2 -c 16 -m 32 -t 1 \
    -H 'content-type: application/grpc' -H 'te: trailers' "$@" -d "$body" "$url" >"$log" 2>&1
  awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i ~ /req\/s/) { v = $(i - 1); gsub(",", "", v); print v } }' "$log"
}
health_of() { echo "http://127.0.0.1:$1/grpc.health.v1.Health/Check"; }
persona_of() { echo "http://127.0.0.1:$1/salestrainer.config.v1.ConfigService/GetPersona"; }

printf '%-6s %8s %8s %8s %8s %8s %8s %8s %8s %9s %9s %9s %9s %9s %9s\n' round bare bare-je before after bef-hc aft-hc bare2 bare-je2 bef/bare aft/bare aft/b-je aft/bef bhc/bare ahc/bare
for r in $(seq 1 "$rounds"); do
  b1="$(h2 "bare-$r-a" "$(health_of $bare_port)" "$out/health.bin")"
  m1="$(h2 "bare-je-$r-a" "$(health_of $bare_je_port)" "$out/health.bin")"
  pb="$(h2 "before-$r" "$(persona_of "${port[before]}")" "$out/get-persona.bin" -H "authorization: Bearer ${token[before]}")"
  pa="$(h2 "after-$r" "$(persona_of "${port[after]}")" "$out/get-persona.bin" -H "authorization: Bearer ${token[after]}")"
  hb="$(h2 "before-health-$r" "$(health_of "${port[before]}")" "$out/health.bin")"
  hc="$(h2 "after-health-$r" "$(health_of "${port[after]}")" "$out/health.bin")"
  m2="$(h2 "bare-je-$r-b" "$(health_of $bare_je_port)" "$out/health.bin")"
  b2="$(h2 "bare-$r-b" "$(health_of $bare_port)" "$out/health.bin")"
  python3 -c "
b = max(($b1 + $b2) / 2, 1); m = max(($m1 + $m2) / 2, 1)
print('%-6s %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.1f%% %8.1f%% %8.1f%% %8.1f%% %8.1f%% %8.1f%%' % (
  '$r', $b1, $m1, $pb, $pa, $hb, $hc, $b2, $m2, 100 * $pb / b, 100 * $pa / b, 100 * $pa / m, 100 * $pa / max($pb, 1), 100 * $hb / b, 100 * $hc / b))"
done
echo "h2load logs: $out"
