#!/usr/bin/env bash
# Makes the generated samples with the real iptables: each ruleset in src/
# is loaded into a fresh network namespace, a little traffic is sent over
# its loopback so that counters move, and the kernel's view is saved with
# `iptables-save -c` (or ip6tables-save). Needs root, iptables, iproute2.
# Only namespaces made here are touched, and they are deleted afterwards.
#
#   samples/generate.sh [OUTDIR]     (default: samples/)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
mkdir -p "$out"
ns="iptviz-samples-$$"
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT

gen() { # NAME FAMILY(4|6)
  local name=$1 fam=$2 save restore cmd
  if [ "$fam" = 6 ]; then save=ip6tables-save; restore=ip6tables-restore; cmd=ip6tables
  else save=iptables-save; restore=iptables-restore; cmd=iptables; fi
  cleanup
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" "$restore" < "$here/src/$name.rules"
  # Some traffic over loopback so that the counters are not all zero.
  ip netns exec "$ns" ping -c 3 -i 0.2 -W 1 "$([ "$fam" = 6 ] && echo ::1 || echo 127.0.0.1)" >/dev/null 2>&1 || true
  ip netns exec "$ns" "$save" -c > "$out/$name.rules"
  if [ "$name" = docker-host ]; then
    { for t in filter nat; do echo "# $cmd -t $t -S"; ip netns exec "$ns" "$cmd" -t "$t" -S; done; } > "$out/$name.S.txt"
  fi
  echo "wrote $out/$name.rules"
}

gen docker-host 4
gen kube-proxy 4
gen router-nat 4
gen server-ipv6 6
