#!/usr/bin/env bash
# Renders envoy.yaml.tmpl into an Envoy config, from environment variables.
#
#   k8s/envoy/render.sh [OUT]        # OUT defaults to stdout
#
# Every variable has a laptop default (all services on loopback, Envoy on 127.0.0.1:8080);
# the cluster values live in k8s/overlays/<env>/gateway.env. Only the variables listed in
# VARS are substituted, so `$` elsewhere in the template (regex anchors) is left as it is.
#
# JWT keys (the same ones the services verify with), first match wins:
#   ENVOY_JWKS_FILE=/path/jwks.json     a JWKS file Envoy reads (in the cluster: mounted from
#                                       the salestrainer-gateway-jwks Secret)
#   SALESTRAINER_AUTH__DEV_SECRET=...   the services' HS256 secret, inlined as an `oct` JWKS key
#   SALESTRAINER_DATA_DIR (default data) with dev-jwt.secret in it, as the services write it
#
#   k8s/envoy/render.sh --jwks          prints the JWKS of the HS256 secret (to put in the Secret)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
template="${ENVOY_TEMPLATE:-$here/envoy.yaml.tmpl}"

: "${ENVOY_NODE_ID:=salestrainer-gateway}"
: "${ENVOY_LISTEN_ADDRESS:=127.0.0.1}"
: "${ENVOY_LISTEN_PORT:=8080}"
: "${ENVOY_ADMIN_PORT:=9901}"
: "${ENVOY_XFF_TRUSTED_HOPS:=0}"
: "${ENVOY_DESCRIPTOR_PATH:=proto/descriptor.binpb}"
: "${CONFIG_HOST:=127.0.0.1}"    ; : "${CONFIG_PORT:=50061}"
: "${CALL_HOST:=127.0.0.1}"      ; : "${CALL_PORT:=50062}"
: "${GRADING_HOST:=127.0.0.1}"   ; : "${GRADING_PORT:=50063}"
: "${ANALYTICS_HOST:=127.0.0.1}" ; : "${ANALYTICS_PORT:=50064}"
: "${OTLP_HOST:=127.0.0.1}"      ; : "${OTLP_PORT:=4317}"
: "${TRACE_SAMPLING_PERCENT:=100}"
: "${JWT_ISSUER:=}"
: "${CORS_ALLOWED_ORIGIN_REGEX:=^https?://(localhost|127\\.0\\.0\\.1)(:[0-9]+)?\$}"
: "${RATE_LIMIT_CLIENT_PER_SECOND:=50}"
: "${RATE_LIMIT_CLIENT_BURST:=100}"
: "${RATE_LIMIT_GLOBAL_PER_SECOND:=2000}"
: "${RATE_LIMIT_GLOBAL_BURST:=4000}"

# base64url without padding, as JWKS wants for an `oct` key.
b64url() { base64 | tr -d '\n=' | tr '+/' '-_'; }

hs256_secret() {
  if [[ -n "${SALESTRAINER_AUTH__DEV_SECRET:-}" ]]; then
    printf '%s' "$SALESTRAINER_AUTH__DEV_SECRET"
  elif [[ -f "${SALESTRAINER_DATA_DIR:-data}/dev-jwt.secret" ]]; then
    # The services use the file's bytes as they are (see libs/runtime/src/auth.rs).
    cat "${SALESTRAINER_DATA_DIR:-data}/dev-jwt.secret"
  else
    return 1
  fi
}

hs256_jwks() {
  local secret k
  secret="$(hs256_secret)" || {
    echo "render.sh: no JWT key: set ENVOY_JWKS_FILE or SALESTRAINER_AUTH__DEV_SECRET" >&2
    return 1
  }
  k="$(printf '%s' "$secret" | b64url)"
  printf '{"keys":[{"kty":"oct","alg":"HS256","use":"sig","k":"%s"}]}' "$k"
}

if [[ "${1:-}" == "--jwks" ]]; then
  hs256_jwks
  echo
  exit 0
fi

if [[ -z "${JWT_LOCAL_JWKS:-}" ]]; then
  if [[ -n "${ENVOY_JWKS_FILE:-}" ]]; then
    JWT_LOCAL_JWKS="{ filename: \"$ENVOY_JWKS_FILE\" }"
  else
    jwks="$(hs256_jwks)"
    # A JSON string inside a YAML flow mapping: escape the quotes.
    JWT_LOCAL_JWKS="{ inline_string: \"${jwks//\"/\\\"}\" }"
  fi
fi

VARS=(ENVOY_NODE_ID ENVOY_LISTEN_ADDRESS ENVOY_LISTEN_PORT ENVOY_ADMIN_PORT ENVOY_XFF_TRUSTED_HOPS
  ENVOY_DESCRIPTOR_PATH CONFIG_HOST CONFIG_PORT CALL_HOST CALL_PORT GRADING_HOST GRADING_PORT
  ANALYTICS_HOST ANALYTICS_PORT OTLP_HOST OTLP_PORT TRACE_SAMPLING_PERCENT JWT_ISSUER JWT_LOCAL_JWKS
  CORS_ALLOWED_ORIGIN_REGEX RATE_LIMIT_CLIENT_PER_SECOND RATE_LIMIT_CLIENT_BURST
  RATE_LIMIT_GLOBAL_PER_SECOND RATE_LIMIT_GLOBAL_BURST)
shell_format=""
for v in "${VARS[@]}"; do
  export "${v?}"
  shell_format+="\${$v} "
done

command -v envsubst >/dev/null || { echo "render.sh: envsubst missing (apt-get install gettext-base)" >&2; exit 1; }

render() {
  echo "# Rendered from k8s/envoy/envoy.yaml.tmpl by k8s/envoy/render.sh. Do not edit."
  envsubst "$shell_format" <"$template"
}
if [[ $# -eq 0 || "$1" == "-" ]]; then
  render
else
  render >"$1.tmp.$$" && mv "$1.tmp.$$" "$1"
fi
