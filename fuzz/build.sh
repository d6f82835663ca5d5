#!/usr/bin/env bash
# Builds every fuzz target, ClusterFuzzLite / OSS-Fuzz style.
#
#   fuzz/build.sh                 # AddressSanitizer (needs RUSTC_BOOTSTRAP or nightly; set here)
#   SANITIZER=none fuzz/build.sh  # no sanitizer: works on stable, ~5x faster targets
#
# With $OUT set (as OSS-Fuzz and ClusterFuzzLite do), the binaries are copied there, each with
# its seed corpus zipped beside it as <target>_seed_corpus.zip. Needs `cargo install cargo-fuzz`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
sanitizer="${SANITIZER:-address}"
triple="$(rustc -vV | sed -n 's/^host: //p')"

cd "$root"
if [ "$sanitizer" = "none" ]; then
    target_dir="$here/target"
    cargo fuzz build -O -s none --target-dir "$target_dir"
else
    # A separate target directory, so switching sanitizers does not rebuild everything.
    target_dir="$here/target/$sanitizer"
    RUSTC_BOOTSTRAP=1 cargo fuzz build -O -s "$sanitizer" --target-dir "$target_dir"
fi

targets=$(cd "$here/fuzz_targets" && ls ./*.rs | sed 's|^\./||; s|\.rs$||')
bin_dir="$target_dir/$triple/release"
for t in $targets; do
    test -x "$bin_dir/$t" || { echo "missing binary $bin_dir/$t" >&2; exit 1; }
done

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    for t in $targets; do
        cp "$bin_dir/$t" "$OUT/$t"
        if [ -d "$root/corpora/fuzz/$t" ] && command -v zip >/dev/null; then
            (cd "$root/corpora/fuzz/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
        fi
    done
    echo "copied $(echo "$targets" | wc -w) targets to $OUT"
else
    echo "built: $(echo "$targets" | tr '\n' ' ')in $bin_dir"
fi
