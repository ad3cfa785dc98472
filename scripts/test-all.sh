#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every rill test: a gcc build and a clang ASan/UBSan (+LeakSanitizer)
# build, each with its whole ctest suite including the kernel-feature
# fallback matrix; a clang ThreadSanitizer build with the cross-thread
# programs of tests/tsan/; then each libFuzzer target for FUZZ_SECONDS (30)
# over its corpus. Installs missing Debian packages first. A failed test is
# run once more alone; one that passes then is listed as flaky. The last
# line printed is "N passed, N failed"; the exit status is non-zero if
# anything failed (a build that fails counts as one failure).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
rill_install_deps

jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-30}
passed=0
failed=0
failures=()
flaky=()
logs=build/logs
mkdir -p "$logs"

fail() {
	failed=$((failed + 1))
	failures+=("$1")
}

# build DIR CC CMAKE_ARGS...: configures and builds; returns non-zero on
# failure, which counts as one failed test.
build() {
	local dir=$1 cc=$2
	shift 2
	echo "=== build $dir ($cc $*)"
	if ! cmake -S . -B "$dir" -DCMAKE_C_COMPILER="$cc" -DCMAKE_ASM_COMPILER="$cc" \
		-DRILL_WERROR=ON "$@" || ! cmake --build "$dir" -j"$jobs"; then
		fail "build $dir"
		return 1
	fi
}

# run_ctest DIR: runs the suite and adds its counts to the totals. A test
# that fails is run once more on its own: Criterion itself sometimes cannot
# spawn a test process on a loaded 2-core machine ("Could not spawn test
# instance"). One that passes then counts as passed but is listed as flaky
# at the end, so a flaky test is seen, not hidden.
run_ctest() {
	local dir=$1 log relog summary total bad names name
	log=$logs/ctest-$(basename "$dir").log
	echo "=== ctest $dir"
	ctest --test-dir "$dir" -j2 --output-on-failure 2>&1 | tee "$log" || true
	summary=$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)
	if [[ -z "$summary" ]]; then
		if grep -q 'No tests were found' "$log"; then
			echo "(no tests registered in $dir)"
		else
			fail "ctest $dir gave no summary (see $log)"
		fi
		return
	fi
	bad=$(awk '{ print $1 }' <<<"$summary")
	total=$(awk '{ print $NF }' <<<"$summary")
	if ((bad > 0)); then
		names=$(sed -n '/The following tests FAILED:/,$p' "$log" |
			grep -Eo '^[[:space:]]*[0-9]+ - [^ ]+' | awk '{ print $3 }')
		relog=$logs/ctest-$(basename "$dir")-rerun.log
		echo "=== ctest $dir: running the $bad failed test(s) once more"
		ctest --test-dir "$dir" --rerun-failed --output-on-failure 2>&1 | tee "$relog" || true
		summary=$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "$relog" | tail -n1 || true)
		if [[ -n "$summary" ]]; then
			for name in $names; do
				grep -F -- ": $name " "$relog" | grep -q 'Passed' &&
					flaky+=("$name ($dir)")
			done
			bad=$(awk '{ print $1 }' <<<"$summary")
		fi
	fi
	passed=$((passed + total - bad))
	failed=$((failed + bad))
	((bad == 0)) || failures+=("$bad in ctest $dir (see $log)")
}

# (1) gcc, warnings as errors.
if build build/gcc gcc; then
	run_ctest build/gcc
fi

# (2) clang with AddressSanitizer and UndefinedBehaviorSanitizer.
if build build/asan clang -DRILL_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		LSAN_OPTIONS=suppressions=$root/tests/lsan.supp \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_ctest build/asan
fi

# (3) clang with ThreadSanitizer: the cross-thread and multi-loop programs
# of tests/tsan/ (Criterion cannot run under TSan).
if build build/tsan clang -DRILL_SANITIZE=thread -DRILL_BUILD_BENCH=OFF \
	-DRILL_BUILD_EXAMPLES=OFF; then
	run_ctest build/tsan
fi

# (4) libFuzzer targets, each for a while over its corpus. New inputs go to
# a scratch directory so the corpus in the repository stays as committed.
shopt -s nullglob
fuzzers=(fuzz/*.c)
shopt -u nullglob
if ((${#fuzzers[@]})) && command -v clang >/dev/null 2>&1; then
	if build build/fuzz clang -DRILL_FUZZ=ON -DRILL_BUILD_TESTS=OFF \
		-DRILL_BUILD_BENCH=OFF -DRILL_BUILD_EXAMPLES=OFF; then
		mkdir -p build/fuzz/artifacts
		for src in "${fuzzers[@]}"; do
			name=$(basename "$src" .c)
			exe=build/fuzz/fuzz/$name
			log=$logs/fuzz-$name.log
			scratch=$(mktemp -d)
			corpus=()
			[[ -d fuzz/corpus/$name ]] && corpus=("fuzz/corpus/$name")
			echo "=== fuzz $name for ${fuzz_seconds}s"
			if timeout -k 10 $((fuzz_seconds + 120)) "$exe" \
				-max_total_time="$fuzz_seconds" -timeout=25 \
				-artifact_prefix="build/fuzz/artifacts/$name-" \
				"$scratch" "${corpus[@]}" >"$log" 2>&1; then
				passed=$((passed + 1))
				tail -n 3 "$log"
			else
				tail -n 40 "$log"
				fail "fuzz $name (see $log)"
			fi
			rm -rf "$scratch"
		done
	fi
fi

if ((${#flaky[@]})); then
	echo "=== flaky (failed, then passed when run again alone):"
	printf '  %s\n' "${flaky[@]}"
fi
if ((${#failures[@]})); then
	echo "=== failures:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
