#!/usr/bin/env bash
# Time-boxed fuzzing campaigns that feed their finds back into the committed corpora.
#
#   fuzz/campaign.sh TARGET|all [--minutes N] [--sanitizer none|address] [--no-build]
#
# For each target: builds the targets (fuzz/build.sh; `none` by default, which works on stable;
# `address` builds with RUSTC_BOOTSTRAP=1 into its own target directory), measures the coverage
# of corpora/fuzz/TARGET, runs libFuzzer for N minutes (default 2) on a scratch copy of it,
# merges the committed and the scratch corpus into a fresh directory with `-merge=1` (a minimal
# set of inputs covering the same edges: `-set_cover_merge=1 -use_counters=0`, which keeps
# corpora to hundreds of files) and replaces corpora/fuzz/TARGET with it, then prints exec/s and
# coverage before and after (`cov`: edges; `ft`: libFuzzer's features, edges with hit counts, so
# `ft` can shrink while `cov` holds). The `seed-*` and `regression-*` files of a corpus are
# always kept. `--minutes 0` only minimises the committed corpus.
#
# A crash, timeout or out-of-memory input found by the campaign is copied to
# corpora/fuzz/TARGET/regression-<sha1>, so that `cargo test` (core/tests/corpus_replay.rs) and
# .ci/run replay it forever after; the campaign goes on with the time left (at most a few
# restarts) and the script exits with status 1 at the end. Fix the bug, keep the file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

usage() {
    echo "usage: fuzz/campaign.sh TARGET|all [--minutes N] [--sanitizer none|address] [--no-build]" >&2
    exit 2
}

target_arg=""
minutes=2
sanitizer=none
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="${2:?}"; shift 2 ;;
        --minutes=*) minutes="${1#*=}"; shift ;;
        --sanitizer|-s) sanitizer="${2:?}"; shift 2 ;;
        --sanitizer=*) sanitizer="${1#*=}"; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) usage ;;
        -*) usage ;;
        *) [ -z "$target_arg" ] || usage; target_arg="$1"; shift ;;
    esac
done
[ -n "$target_arg" ] || usage
case "$minutes" in ''|*[!0-9.]*) usage ;; esac
seconds=$(awk -v m="$minutes" 'BEGIN { print int(m * 60) }')

all_targets=$(cd "$here/fuzz_targets" && ls ./*.rs | sed 's|^\./||; s|\.rs$||')
if [ "$target_arg" = all ]; then
    targets="$all_targets"
else
    echo "$all_targets" | grep -qx "$target_arg" || { echo "unknown target $target_arg" >&2; exit 2; }
    targets="$target_arg"
fi

triple="$(rustc -vV | sed -n 's/^host: //p')"
case "$sanitizer" in
    none) bin_dir="$here/target/$triple/release" ;;
    address|memory|thread|leak) bin_dir="$here/target/$sanitizer/$triple/release" ;;
    *) usage ;;
esac
if [ "$build" = 1 ]; then
    SANITIZER="$sanitizer" "$here/build.sh" >&2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/petrel-campaign.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# "cov ft" of a corpus, from libFuzzer's INITED line; "?" when it did not get there, which
# means that an input of the corpus (a new regression input) fails.
coverage() {
    local bin="$1" dir="$2"
    "$bin" -runs=0 "$dir" 2>&1 |
        awk '/INITED/ { for (i = 1; i < NF; i++) { if ($i == "cov:") c = $(i+1); if ($i == "ft:") f = $(i+1) } }
             END { print (c == "" ? "?" : c), (f == "" ? "?" : f) }'
}

files_in() { find "$1" -maxdepth 1 -type f | wc -l; }

summary=()
found_any=0
for t in $targets; do
    bin="$bin_dir/$t"
    corpus="$root/corpora/fuzz/$t"
    [ -x "$bin" ] || { echo "missing binary $bin (run without --no-build)" >&2; exit 1; }
    mkdir -p "$corpus"
    scratch="$work/$t/scratch"
    fresh="$work/$t/merged"
    artifacts="$work/$t/artifacts"
    mkdir -p "$scratch" "$fresh" "$artifacts"

    echo "== $t: $seconds s, sanitizer $sanitizer, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    read -r cov0 ft0 < <(coverage "$bin" "$corpus")
    files0=$(files_in "$corpus")

    # Run for the time box; after a crash, go on with the time left (a few times at most).
    execs=0
    start=$(date +%s)
    restarts=0
    while :; do
        left=$(( seconds - ($(date +%s) - start) ))
        [ "$left" -ge 1 ] || break
        # (Nothing to run with --minutes 0.)
        log="$work/$t/run-$restarts.log"
        set +e
        # New inputs go to the first directory (scratch); the committed corpus is read only.
        "$bin" "$scratch" "$corpus" -max_total_time="$left" -timeout=10 -print_final_stats=1 \
            -artifact_prefix="$artifacts/" >"$log" 2>&1
        status=$?
        set -e
        n=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
        execs=$(( execs + ${n:-0} ))
        [ "$status" -ne 0 ] || break
        echo "   $t: libFuzzer stopped with status $status:" >&2
        grep -aE 'ERROR|panicked|SUMMARY' "$log" | head -n 5 | sed 's/^/     /' >&2 || true
        restarts=$((restarts + 1))
        [ "$restarts" -lt 5 ] || { echo "   $t: giving up after $restarts restarts" >&2; break; }
    done
    elapsed=$(( $(date +%s) - start ))
    [ "$elapsed" -ge 1 ] || elapsed=1

    # Findings become regression inputs of the committed corpus.
    found=0
    for a in "$artifacts"/*; do
        [ -f "$a" ] || continue
        hash=$(sha1sum "$a" | cut -c1-40)
        dest="$corpus/regression-$hash"
        if [ ! -e "$dest" ]; then
            cp "$a" "$dest"
            echo "   $t: $(basename "$a" | cut -d- -f1) saved as corpora/fuzz/$t/regression-$hash" >&2
        fi
        found=$((found + 1))
    done
    [ "$found" -eq 0 ] || found_any=1

    # Merge: the committed corpus first, then what the campaign added; only inputs that add
    # coverage land in the fresh directory. Seeds and regression inputs are kept whatever
    # they cover, and their copies under a hash name dropped.
    "$bin" -merge=1 -set_cover_merge=1 -use_counters=0 -timeout=10 -artifact_prefix="$artifacts/merge-" "$fresh" "$corpus" "$scratch" \
        >"$work/$t/merge.log" 2>&1 || {
        echo "   $t: merge failed, corpus left as it was; see the log below" >&2
        tail -n 20 "$work/$t/merge.log" >&2
        found_any=1
        continue
    }
    for keep in "$corpus"/seed-* "$corpus"/regression-*; do
        [ -f "$keep" ] || continue
        rm -f "$fresh/$(sha1sum "$keep" | cut -c1-40)"
        cp -p "$keep" "$fresh/"
    done
    find "$corpus" -maxdepth 1 -type f -delete
    cp -p "$fresh"/* "$corpus"/

    read -r cov1 ft1 < <(coverage "$bin" "$corpus")
    files1=$(files_in "$corpus")
    if [ "$seconds" -gt 0 ]; then rate=$(( execs / elapsed )); else rate=-; fi
    line=$(printf '%-16s %9s exec/s  cov %6s -> %-6s  ft %6s -> %-6s  files %4s -> %-4s  findings %s' \
        "$t" "$rate" "$cov0" "$cov1" "$ft0" "$ft1" "$files0" "$files1" "$found")
    echo "   $line" >&2
    summary+=("$line")
done

echo
echo "campaign: $seconds s per target, sanitizer $sanitizer, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${summary[@]}"
if [ "$found_any" = 1 ]; then
    echo "findings were saved as regression-* inputs: cargo test -p petrel-core --test corpus_replay"
    exit 1
fi
