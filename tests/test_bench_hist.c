/* SPDX-License-Identifier: MIT */
/* bench/hist.h, the latency histogram: percentiles within the stated relative error of the exact percentiles of the recorded samples, merging, clamping, the distribution file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/hist.h"

/* xorshift64*: the same samples on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Spread over many powers of two, as latencies are: 1 ns to ~17 s. */
static uint64_t sample_log_uniform(void)
{
	unsigned bits = 1 + (unsigned)(rng() % 34);

	return 1 + (rng() & ((1ull << bits) - 1));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The exact nearest-rank percentile: the smallest sample with at least p%
 * of the samples at or below it, found by counting, not by hist_rank(). */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
	for (size_t i = 0; i < n; i++)
		if ((double)(i + 1) * 100.0 >= p * (double)n * (1 - 1e-12))
			return sorted[i];
	return sorted[n - 1];
}

static const double pcts[] = { 0, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 99.999, 100 };

/* Every percentile lies in [exact, exact + exact / half]. */
static void check_percentiles(const struct hist *h, uint64_t *samples, size_t n)
{
	uint64_t half = 1ull << h->half_mag;

	qsort(samples, n, sizeof(*samples), cmp_u64);
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		uint64_t want = exact_percentile(samples, n, pcts[i]);
		uint64_t got = hist_percentile(h, pcts[i]);

		cr_assert_geq(got, want, "p%g: %lu below the exact %lu", pcts[i],
			      (unsigned long)got, (unsigned long)want);
		cr_assert_leq(got - want, want / half, "p%g: %lu, exact %lu: off by more than 1/%lu",
			      pcts[i], (unsigned long)got, (unsigned long)want, (unsigned long)half);
	}
}

Test(bench_hist, percentiles_within_relative_error_of_exact)
{
	enum { N = 200000 };
	uint64_t *samples = malloc(N * sizeof(*samples));
	struct hist h;

	cr_assert_not_null(samples);
	cr_assert_eq(hist_init(&h, 3600ull * 1000000000ull, 3), 0);
	for (size_t i = 0; i < N; i++) {
		samples[i] = sample_log_uniform();
		hist_record(&h, samples[i]);
	}
	check_percentiles(&h, samples, N);
	hist_free(&h);
	free(samples);
}

Test(bench_hist, every_precision_keeps_its_bound)
{
	enum { N = 20000 };
	uint64_t *samples = malloc(N * sizeof(*samples));

	cr_assert_not_null(samples);
	for (int digits = 1; digits <= 5; digits++) {
		struct hist h;

		cr_assert_eq(hist_init(&h, 1ull << 40, digits), 0);
		cr_assert_geq(1ull << h.half_mag, (uint64_t)(digits == 1 ? 10 : digits == 2 ? 100 :
							     digits == 3 ? 1000 : digits == 4 ? 10000 : 100000));
		for (size_t i = 0; i < N; i++) {
			samples[i] = sample_log_uniform();
			hist_record(&h, samples[i]);
		}
		check_percentiles(&h, samples, N);
		hist_free(&h);
	}
	free(samples);
}

Test(bench_hist, small_values_are_exact)
{
	struct hist h;

	cr_assert_eq(hist_init(&h, 1000000, 3), 0);
	for (uint64_t v = 1; v <= 100; v++)
		hist_record(&h, v);
	cr_assert_eq(hist_percentile(&h, 50), 50);
	cr_assert_eq(hist_percentile(&h, 99), 99);
	cr_assert_eq(hist_percentile(&h, 99.9), 100);
	cr_assert_eq(hist_percentile(&h, 100), 100);
	cr_assert_eq(hist_percentile(&h, 0), 1);
	cr_assert_eq(h.min, 1);
	cr_assert_eq(h.max, 100);
	cr_assert_eq(h.n, 100);
	cr_assert_eq(h.sum, 5050);
	cr_assert_float_eq(hist_mean(&h), 50.5, 1e-9);
	/* Population standard deviation of 1..100. */
	cr_assert_float_eq(hist_stddev(&h), 28.8660700477, 1e-6);
	hist_free(&h);
}

Test(bench_hist, empty_histogram_reports_zero)
{
	struct hist h;

	cr_assert_eq(hist_init(&h, 1000, 2), 0);
	cr_assert_eq(hist_percentile(&h, 99), 0);
	cr_assert_float_eq(hist_mean(&h), 0, 1e-12);
	cr_assert_float_eq(hist_stddev(&h), 0, 1e-12);
	hist_free(&h);
	cr_assert_eq(hist_init(&h, 1000, 0), -1, "0 digits is refused");
	cr_assert_eq(hist_init(&h, 1000, 6), -1, "6 digits is refused");
}

Test(bench_hist, merged_equals_recorded_together)
{
	struct hist a, b, all;

	cr_assert_eq(hist_init(&a, 1ull << 36, 3), 0);
	cr_assert_eq(hist_init(&b, 1ull << 36, 3), 0);
	cr_assert_eq(hist_init(&all, 1ull << 36, 3), 0);
	for (int i = 0; i < 50000; i++) {
		uint64_t v = sample_log_uniform();

		hist_record(i % 3 ? &a : &b, v);
		hist_record(&all, v);
	}
	cr_assert_eq(hist_add(&a, &b), 0);
	cr_assert_eq(a.n, all.n);
	cr_assert_eq(a.sum, all.sum);
	cr_assert_eq(a.min, all.min);
	cr_assert_eq(a.max, all.max);
	cr_assert_eq(memcmp(a.counts, all.counts, a.ncounts * sizeof(*a.counts)), 0);
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		cr_assert_eq(hist_percentile(&a, pcts[i]), hist_percentile(&all, pcts[i]));
	hist_free(&b);
	cr_assert_eq(hist_init(&b, 1ull << 36, 2), 0);
	cr_assert_eq(hist_add(&a, &b), -1, "differently set up: refused");
	hist_free(&a);
	hist_free(&b);
	hist_free(&all);
}

Test(bench_hist, values_above_the_range_are_clamped)
{
	struct hist h;

	cr_assert_eq(hist_init(&h, 1000000, 3), 0);
	hist_record(&h, 5);
	hist_record_n(&h, UINT64_MAX, 3);
	cr_assert_eq(h.n, 4);
	cr_assert_eq(h.max, 1000000);
	cr_assert_eq(hist_percentile(&h, 100), 1000000);
	cr_assert_eq(hist_percentile(&h, 25), 5);
	hist_reset(&h);
	cr_assert_eq(h.n, 0);
	cr_assert_eq(hist_percentile(&h, 50), 0);
	hist_free(&h);
}

/* The distribution file: HdrHistogram's columns, percentiles rising to
 * exactly 1 at the maximum, values never falling. */
Test(bench_hist, distribution_file_format)
{
	char *text = NULL, *line, *save;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct hist h;
	double last_v = -1, last_p = -1;
	int rows = 0, footer = 0;

	cr_assert_eq(hist_init(&h, 1ull << 40, 3), 0);
	for (int i = 0; i < 100000; i++)
		hist_record(&h, 1000 + (uint64_t)i * 10);
	cr_assert_eq(hist_write_distribution(&h, f, 1e3), 0);
	fclose(f);
	cr_assert(strstr(text, "Value     Percentile TotalCount 1/(1-Percentile)"), "%s", text);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		double v, p;
		unsigned long long total;

		if (line[0] == '#') {
			footer++;
			continue;
		}
		if (sscanf(line, "%lf %lf %llu", &v, &p, &total) != 3)
			continue;
		rows++;
		cr_assert_geq(v, last_v, "values rise: %s", line);
		cr_assert_gt(p, last_p, "percentiles rise: %s", line);
		cr_assert_leq(total, 100000);
		last_v = v;
		last_p = p;
	}
	cr_assert_eq(footer, 3);
	cr_assert_float_eq(last_p, 1.0, 1e-12);
	cr_assert_float_eq(last_v, (1000 + 99999 * 10) / 1e3, 1e-6);
	cr_assert_gt(rows, 50, "5 rows per halving down to 1/100000: %d", rows);
	cr_assert_lt(rows, 200);
	free(text);
	hist_free(&h);
}
