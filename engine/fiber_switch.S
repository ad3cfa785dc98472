/* SPDX-License-Identifier: MIT */
/* engine/fiber_switch.S: the task context switch.
 *
 * void rill__fiber_switch(void **from_sp, void *to_sp);
 *
 * Saves the callee-saved registers on the current stack, stores the stack
 * pointer in *from_sp, loads to_sp and restores the registers saved there.
 * Caller-saved registers need no saving: the switch is a function call.
 * Floating-point control state (MXCSR, x87 control word, FPCR) is not
 * switched: tasks share the thread's rounding mode, which costs nothing
 * and is what every task expects.
 *
 * A new stack is laid out by rill__fiber_init() (fiber.c) so that the
 * first switch to it "returns" into rill__fiber_start, which calls
 * entry(arg) from two callee-saved registers.
 */

#if defined(__x86_64__)

	.text
	.globl	rill__fiber_switch
	.hidden	rill__fiber_switch
	.type	rill__fiber_switch, @function
rill__fiber_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	rill__fiber_switch, .-rill__fiber_switch

	/* First code run on a new stack: r12 = arg, r13 = entry. */
	.globl	rill__fiber_start
	.hidden	rill__fiber_start
	.type	rill__fiber_start, @function
rill__fiber_start:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r12, %rdi
	callq	*%r13
	ud2
	.cfi_endproc
	.size	rill__fiber_start, .-rill__fiber_start

#elif defined(__aarch64__)

	.text
	.globl	rill__fiber_switch
	.hidden	rill__fiber_switch
	.type	rill__fiber_switch, %function
rill__fiber_switch:
	sub	sp, sp, #160
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mov	x2, sp
	str	x2, [x0]
	mov	sp, x1
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #160
	ret
	.size	rill__fiber_switch, .-rill__fiber_switch

	/* First code run on a new stack: x19 = arg, x20 = entry. */
	.globl	rill__fiber_start
	.hidden	rill__fiber_start
	.type	rill__fiber_start, %function
rill__fiber_start:
	mov	x0, x19
	blr	x20
	brk	#0
	.size	rill__fiber_start, .-rill__fiber_start

#else
#error "rill: no fiber switch for this architecture (x86-64 and aarch64 only)"
#endif

	.section .note.GNU-stack,"",%progbits
