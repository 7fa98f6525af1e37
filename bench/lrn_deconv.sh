#!/usr/bin/env bash
# LRN and Deconvolution against PyTorch's LocalResponseNorm and ConvTranspose2d
# (the speed sanity check of issue #15): medians of `netrun time` on
# lrn_deconv.prototxt and of lrn_deconv_torch.py, ROUNDS times alternating,
# forward and backward ms and netrun/PyTorch ratios.
# Usage: bench/lrn_deconv.sh [ROUNDS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-2}
peer_py=${PEER_PYTHON:-$HOME/.cache/netrun-peer/bin/python}
[ -x "$peer_py" ] || { echo "no peer python at $peer_py: run ../shared/bench/setup-peer.sh" >&2; exit 1; }
cargo build --release -q
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A ours theirs
before=$(cut -d' ' -f1 /proc/loadavg)
for _ in $(seq "$rounds"); do
  out=$(target/release/netrun time bench/lrn_deconv.prototxt --iterations 5 --threads "$threads")
  for l in lrn deconv; do
    read -r f b < <(awk -v l="$l" '$1 == l {print $3, $4}' <<<"$out")
    ours[$l.f]+="$f "; ours[$l.b]+="$b "
  done
  while read -r l f b; do
    theirs[$l.f]+="$f "; theirs[$l.b]+="$b "
  done < <("$peer_py" bench/lrn_deconv_torch.py "$threads" 5)
done
printf "%-8s %-9s %10s %10s %7s\n" layer pass "netrun ms" "torch ms" ratio
for l in lrn deconv; do
  for p in f b; do
    o=$(tr ' ' '\n' <<<"${ours[$l.$p]}" | grep . | median)
    t=$(tr ' ' '\n' <<<"${theirs[$l.$p]}" | grep . | median)
    printf "%-8s %-9s %10.2f %10.2f %7.2f\n" "$l" "$([ $p = f ] && echo forward || echo backward)" \
      "$o" "$t" "$(awk -v o="$o" -v t="$t" 'BEGIN {print o / t}')"
  done
done
echo "threads $threads, load $before→$(cut -d' ' -f1 /proc/loadavg)"
