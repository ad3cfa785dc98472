/* SPDX-License-Identifier: MIT */
/* The aarch64 fiber switch (engine/fiber_switch.S) under qemu-user: two fibers
 * ping-pong with main 1000 times each, with callee-saved integer and floating
 * point values live across every switch. The stack layout mirrors
 * rill__fiber_init() in engine/fiber.c. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/mman.h>
void rill__fiber_switch(void **from_sp, void *to_sp);
extern void rill__fiber_start(void);
static void *main_sp, *f_sp[2];
static volatile int count[2];
static void *init(void *top, void (*entry)(void *), void *arg) {
	uintptr_t t = (uintptr_t)top & ~(uintptr_t)15; void **sp = (void **)(t - 160);
	for (int i = 0; i < 20; i++) sp[i] = 0;
	sp[0] = arg; sp[1] = (void *)entry; sp[11] = (void *)rill__fiber_start; return sp;
}
static void body(void *arg) {
	int id = (int)(intptr_t)arg; double acc = 1.5 * (id + 1); long k = 7 + id;
	for (;;) { acc = acc * 1.0000001 + 0.5; k = k * 3 + 1; count[id]++;
		if (count[id] == 1000) { printf("fiber %d acc=%.3f k=%ld\n", id, acc, k & 0xffff); }
		rill__fiber_switch(&f_sp[id], main_sp); }
}
int main(void) {
	for (int i = 0; i < 2; i++) { char *s = mmap(NULL, 65536, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0); f_sp[i] = init(s + 65536, body, (void *)(intptr_t)i); }
	double m = 2.25; long q = 11;
	for (int r = 0; r < 1000; r++) for (int i = 0; i < 2; i++) { rill__fiber_switch(&main_sp, f_sp[i]); m += 0.25; q ^= r; }
	printf("main m=%.2f q=%ld counts %d %d\n", m, q, count[0], count[1]);
	return !(count[0] == 1000 && count[1] == 1000 && m == 2.25 + 500.0);
}
