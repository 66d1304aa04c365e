#!/usr/bin/env bash
# Writes the two generated inputs of the kustomize overlays (neither is committed):
#   k8s/base/gateway/descriptor.binpb   protobuf descriptor set for Envoy's JSON transcoder
#   k8s/overlays/<env>/envoy.yaml       k8s/envoy/envoy.yaml.tmpl rendered with <env>/gateway.env
# then `kubectl kustomize k8s/overlays/<env>` builds.
#
#   k8s/prepare.sh                      # descriptor via cargo (salestrainer-descriptor)
#   k8s/prepare.sh --descriptor FILE    # use a descriptor set built already
set -euo pipefail
k8s="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$k8s/.." && pwd)"

descriptor=""
if [[ "${1:-}" == "--descriptor" ]]; then descriptor="${2:?--descriptor FILE}"; fi

out="$k8s/base/gateway/descriptor.binpb"
if [[ -n "$descriptor" ]]; then
  cp "$descriptor" "$out.tmp" && mv "$out.tmp" "$out"
else
  (cd "$root" && cargo run -q -p salestrainer-proto --bin salestrainer-descriptor "$out.tmp" >/dev/null)
  mv "$out.tmp" "$out"
fi

for envfile in "$k8s"/overlays/*/gateway.env; do
  overlay="$(dirname "$envfile")"
  (
    # KEY=VALUE lines taken literally (values hold regexes: never `source` them).
    while IFS= read -r line || [[ -n "$line" ]]; do
      [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
      key="${line%%=*}"
      [[ "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] || { echo "prepare.sh: bad line in $envfile: $line" >&2; exit 1; }
      export "$key=${line#*=}"
    done <"$envfile"
    "$k8s/envoy/render.sh" "$overlay/envoy.yaml"
  )
done
