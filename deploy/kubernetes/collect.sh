#!/bin/sh
# Collects every node's rules (and conntrack table) from the iptviz-collect
# pods into one directory, one file per node, then compares them.
#
# usage: deploy/kubernetes/collect.sh [OUT_DIR]     (default: ./fleet)
set -eu
out="${1:-fleet}"
ns=iptviz
mkdir -p "$out"
kubectl -n "$ns" rollout status daemonset/iptviz-collect --timeout=180s
kubectl -n "$ns" get pods -l app.kubernetes.io/name=iptviz-collect \
  -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName}{"\n"}{end}' |
while read -r pod node; do
  [ -n "$node" ] || continue
  echo "reading $node" >&2
  kubectl -n "$ns" exec "$pod" -- iptviz save --live > "$out/$node.rules"
  # Conntrack fill is optional: the file may be absent (module not loaded).
  kubectl -n "$ns" exec "$pod" -- cat /proc/net/nf_conntrack > "$out/$node.conntrack" 2>/dev/null \
    || rm -f "$out/$node.conntrack"
  kubectl -n "$ns" exec "$pod" -- cat /proc/sys/net/netfilter/nf_conntrack_max \
    > "$out/$node.conntrack_max" 2>/dev/null || rm -f "$out/$node.conntrack_max"
done
iptviz fleet --ignore-endpoints --svg "$out/overview.svg" "$out"
