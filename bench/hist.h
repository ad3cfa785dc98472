/* SPDX-License-Identifier: MIT */
/* bench/hist.h: a latency histogram with bounded relative error, after
 * HdrHistogram (Gil Tene's design, as wrk2 uses it).
 *
 * Values are non-negative integers (rill-load records nanoseconds). The
 * range [0, highest] is cut into buckets by powers of two; each bucket is
 * cut into `half` equal sub-buckets, so a value v >= half lands in a slot
 * whose width is at most v / half. With d significant decimal digits,
 * half is the power of two at or above 10^d, so every recorded value is
 * known to within 10^-d of itself (3 digits: within 1/1024, 0.1%), and
 * values below 2 x half are exact. Memory is fixed at init: for 3 digits
 * and an hour in nanoseconds, 33 x 1024 counters (264 KiB).
 *
 * Percentiles use the nearest-rank definition: the smallest recorded value
 * v such that at least p% of the samples are <= v. hist_percentile()
 * returns the highest value equivalent to that sample (the top of its
 * slot, never above the recorded maximum), so it lies in [v, v + v / half].
 * min, max, count and sum are kept exactly.
 */
#ifndef RILL_BENCH_HIST_H
#define RILL_BENCH_HIST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hist {
	uint64_t *counts;
	unsigned ncounts;
	unsigned half_mag;	/* log2(half) */
	uint64_t highest;	/* larger values are recorded as this */
	uint64_t n, sum, min, max;
};

/* Sub-bucket index bits for `digits` significant decimal digits (1..5). */
static inline unsigned hist__half_mag(int digits)
{
	uint64_t want = 1;
	unsigned mag = 0;

	for (int i = 0; i < digits; i++)
		want *= 10;
	while ((1ull << mag) < want)
		mag++;
	return mag;
}

/* Sets h up for values in [0, highest] with `digits` significant decimal
 * digits (1 to 5). Returns 0, or -1 on bad arguments or no memory. The
 * caller owns the counters: hist_free(). */
static inline int hist_init(struct hist *h, uint64_t highest, int digits)
{
	unsigned buckets = 1;

	memset(h, 0, sizeof(*h));
	if (digits < 1 || digits > 5 || highest < 2)
		return -1;
	h->half_mag = hist__half_mag(digits);
	h->highest = highest;
	h->min = UINT64_MAX;
	/* Bucket 0 covers [0, 2 x half) exactly; each next one doubles. */
	for (uint64_t top = 2ull << h->half_mag; top <= highest && top < (1ull << 62); top <<= 1)
		buckets++;
	h->ncounts = (buckets + 1) << h->half_mag;
	h->counts = calloc(h->ncounts, sizeof(*h->counts));
	return h->counts ? 0 : -1;
}

static inline void hist_free(struct hist *h)
{
	free(h->counts);
	h->counts = NULL;
}

/* Forgets every sample; the configuration stays. */
static inline void hist_reset(struct hist *h)
{
	memset(h->counts, 0, h->ncounts * sizeof(*h->counts));
	h->n = h->sum = h->max = 0;
	h->min = UINT64_MAX;
}

/* The counter of v: bucket b is where v's top bit lies above the
 * sub-bucket bits, the sub-bucket is v >> b. */
static inline unsigned hist__index(const struct hist *h, uint64_t v)
{
	uint64_t mask = (2ull << h->half_mag) - 1;
	unsigned b = (unsigned)(64 - __builtin_clzll(v | mask)) - (h->half_mag + 1);
	unsigned sub = (unsigned)(v >> b);

	return ((b + 1) << h->half_mag) + sub - (1u << h->half_mag);
}

/* The lowest value of counter i, and the width of its slot. */
static inline uint64_t hist__value_at(const struct hist *h, unsigned i, uint64_t *width)
{
	int b = (int)(i >> h->half_mag) - 1;
	uint64_t sub = (i & ((1u << h->half_mag) - 1)) + (1u << h->half_mag);

	if (b < 0) {
		sub -= 1u << h->half_mag;
		b = 0;
	}
	*width = 1ull << b;
	return sub << b;
}

static inline void hist_record_n(struct hist *h, uint64_t v, uint64_t count)
{
	if (v > h->highest)
		v = h->highest;
	h->counts[hist__index(h, v)] += count;
	h->n += count;
	h->sum += v * count;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

static inline void hist_record(struct hist *h, uint64_t v)
{
	hist_record_n(h, v, 1);
}

/* Adds src's samples to dst. Both must have been set up alike. Returns 0,
 * or -1 when they were not. */
static inline int hist_add(struct hist *dst, const struct hist *src)
{
	if (dst->ncounts != src->ncounts || dst->half_mag != src->half_mag)
		return -1;
	for (unsigned i = 0; i < src->ncounts; i++)
		dst->counts[i] += src->counts[i];
	dst->n += src->n;
	dst->sum += src->sum;
	if (src->n && src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	return 0;
}

/* The nearest rank of percentile p (0..100) among n samples, 1..n. The
 * tiny slack keeps 99.9% of 1000 at rank 999 despite binary rounding. */
static inline uint64_t hist_rank(double p, uint64_t n)
{
	double x = p / 100.0 * (double)n;
	uint64_t k = x > 0 ? (uint64_t)x : 0;

	if ((double)k < x - x * 1e-12)
		k++;	/* ceil, without libm */
	return k < 1 ? 1 : k > n ? n : k;
}

/* The value at percentile p (0..100); 0 for an empty histogram. */
static inline uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t want, seen = 0, width, v;

	if (!h->n)
		return 0;
	want = hist_rank(p, h->n);
	for (unsigned i = 0; i < h->ncounts; i++) {
		seen += h->counts[i];
		if (seen >= want) {
			v = hist__value_at(h, i, &width) + width - 1;
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

static inline double hist_mean(const struct hist *h)
{
	return h->n ? (double)h->sum / (double)h->n : 0;
}

/* Square root by Newton's method from above (no libm for one call). */
static inline double hist__sqrt(double x)
{
	double r = x > 1 ? x : 1;

	if (x <= 0)
		return 0;
	for (int i = 0; i < 2100; i++) {
		double next = 0.5 * (r + x / r);

		if (next >= r)
			break;
		r = next;
	}
	return r;
}

/* Standard deviation, from the middle of each slot. */
static inline double hist_stddev(const struct hist *h)
{
	double mean = hist_mean(h), acc = 0;
	uint64_t width;

	if (!h->n)
		return 0;
	for (unsigned i = 0; i < h->ncounts; i++) {
		if (h->counts[i]) {
			double v = (double)hist__value_at(h, i, &width) + (double)(width - 1) / 2;

			acc += (double)h->counts[i] * (v - mean) * (v - mean);
		}
	}
	return hist__sqrt(acc / (double)h->n);
}

/* HdrHistogram's percentile steps, 5 each time the distance to 100%
 * halves: 10% up to 50%, 5% up to 75%, 2.5% up to 87.5%, ... */
static inline double hist__step(double p)
{
	double step = 10, d = 100;

	while (d / 2 >= 100 - p && step > 1e-9) {
		d /= 2;
		step /= 2;
	}
	return step;
}

/* Writes the percentile distribution in HdrHistogram's text format
 * (columns Value, Percentile, TotalCount, 1/(1-Percentile)), values
 * divided by `scale` (1000: nanoseconds shown as microseconds). The
 * percentiles step as HdrHistogram's do with 5 ticks per half distance:
 * 0, 10, ... 50, 55, ... 75, 77.5, ... up to the last sample. Returns 0,
 * or -1 when the write failed. */
static inline int hist_write_distribution(const struct hist *h, FILE *f, double scale)
{
	double p = 0;

	fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
		"1/(1-Percentile)");
	while (h->n) {
		uint64_t v = hist_percentile(h, p);
		uint64_t k = p > 0 ? hist_rank(p, h->n) : 1;
		uint64_t total = 0, width;

		/* TotalCount: the samples at or below v, as HdrHistogram counts. */
		for (unsigned i = 0; i < h->ncounts && hist__value_at(h, i, &width) <= v; i++)
			total += h->counts[i];
		if (k >= h->n || p >= 100) {
			fprintf(f, "%12.3f %14.12f %10llu\n", (double)h->max / scale, 1.0,
				(unsigned long long)h->n);
			break;
		}
		fprintf(f, "%12.3f %14.12f %10llu %14.2f\n", (double)v / scale, p / 100,
			(unsigned long long)total, 1 / (1 - p / 100));
		p += hist__step(p);
	}
	fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", hist_mean(h) / scale,
		hist_stddev(h) / scale);
	fprintf(f, "#[Max     = %12.3f, Total count    = %12llu]\n", (double)h->max / scale,
		(unsigned long long)h->n);
	fprintf(f, "#[Buckets = %12u, SubBuckets     = %12u]\n",
		(h->ncounts >> h->half_mag) - 1, 2u << h->half_mag);
	return ferror(f) ? -1 : 0;
}

#endif
