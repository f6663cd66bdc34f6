#!/usr/bin/env bash
# Download exactly the wheels of benchmarks/gpu_wheels.txt for the GPU image (CPython 3.12, manylinux
# x86-64) into .whl/ (git-ignored), and print their size with the working tree's: what a device call
# carries must stay under 64 MiB. Run from anywhere: `benchmarks/gpu_wheels.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=$((64 * 1024 * 1024))
mapfile -t wheels < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' benchmarks/gpu_wheels.txt)
rm -rf .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${wheels[@]}"
# one file per pinned wheel, no other: two versions of one package stop the install there
for spec in "${wheels[@]}"; do
  name=$(echo "${spec%%==*}" | tr 'A-Z-' 'a-z_')
  found=$(find .whl -maxdepth 1 -iname "${name}-${spec##*==}-*.whl" | wc -l)
  [ "$found" -eq 1 ] || { echo "gpu_wheels: expected one wheel for $spec in .whl/, found $found" >&2; exit 1; }
done
[ "$(ls .whl | wc -l)" -eq "${#wheels[@]}" ] || { echo "gpu_wheels: .whl/ holds other files than gpu_wheels.txt's" >&2; exit 1; }
wheel_bytes=$(du -cb .whl/*.whl | tail -1 | cut -f1)
# what travels: tracked files and untracked ones git does not ignore (the device tool's rule), plus .whl
tree_bytes=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$((wheel_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "wheels: ${#wheels[@]} files, $(mib "$wheel_bytes"); working tree: $(mib "$tree_bytes"); together: $(mib "$total") of the 64 MiB carry limit"
[ "$total" -lt "$limit" ] || { echo "gpu_wheels: over the 64 MiB carry limit" >&2; exit 1; }
