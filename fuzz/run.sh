#!/bin/sh
# Runs each fuzz target in turn for SECONDS (default 600), one at a time, growing corpus/<target>
# from the committed seeds/<target>. Crashes land in artifacts/<target>/; a crash in one target
# does not stop the others, but makes the script exit 1.
#   fuzz/run.sh            # all three, 10 minutes each
#   fuzz/run.sh 60 mail    # one target, one minute
cd "$(dirname "$0")" || exit 1
seconds=${1:-600}
shift 2>/dev/null || true
targets=${*:-mail config classify}
status=0
for t in $targets; do
    mkdir -p "corpus/$t"
    cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -max_len=16384 -print_final_stats=1 || status=1
done
exit $status
