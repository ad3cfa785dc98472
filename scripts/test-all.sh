#!/usr/bin/env bash
# Runs every rill test: a gcc build and a clang ASan/UBSan build, each with
# its whole ctest suite, then each libFuzzer target for FUZZ_SECONDS (30)
# over its corpus. Installs missing Debian packages first. The last line
# printed is "N passed, N failed"; the exit status is non-zero if anything
# failed (a build that fails counts as one failure).
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

# run_ctest DIR: runs the suite and adds its counts to the totals.
run_ctest() {
	local dir=$1 log summary total bad
	log=$logs/ctest-$(basename "$dir").log
	echo "=== ctest $dir"
	ctest --test-dir "$dir" -j2 --output-on-failure 2>&1 | tee "$log" || true
	summary=$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)
	if [[ -n "$summary" ]]; then
		bad=$(awk '{ print $1 }' <<<"$summary")
		total=$(awk '{ print $NF }' <<<"$summary")
		passed=$((passed + total - bad))
		failed=$((failed + bad))
		((bad == 0)) || failures+=("$bad in ctest $dir (see $log)")
	elif grep -q 'No tests were found' "$log"; then
		echo "(no tests registered in $dir)"
	else
		fail "ctest $dir gave no summary (see $log)"
	fi
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

if ((${#failures[@]})); then
	echo "=== failures:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
