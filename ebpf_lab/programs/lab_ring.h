/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lab_ring.h — when a lesson program wakes the collector up.
 *
 * Events travel through a ring buffer (BPF_RINGBUF_OUTPUT). Waking user space
 * for every event costs more than the tracing itself, so events are submitted
 * without a wake-up, and the collector (ebpf_lab/_ringbuf.py) drains the ring
 * in bulk when it wakes: every 50 ms, or at once when the program tells it
 * that WAKE_BYTES are waiting:
 *
 *     events.ringbuf_submit(e, wake_flags(sizeof(*e)));
 *
 * or, where events come by the hundred thousand a second,
 * wake_flags_every(sizeof(*e), n) with a per-CPU count n (below).
 *
 * Before including this file the program defines
 *   RING_PAGES           the ring's size in 4 KiB pages, as given to BPF_RINGBUF_OUTPUT
 *   EVENTS_MAP_POSITION  where `events` is among the program's maps (1 = the first declared)
 * and may define WAKE_BYTES (default: an eighth of the ring).
 */
#ifndef LAB_RING_H
#define LAB_RING_H

#ifndef WAKE_BYTES
#define WAKE_BYTES (RING_PAGES * 4096 / 8)
#endif

/* bcc (0.26) has no events.ringbuf_query(); it refers to a map in the
 * compiled code as bpf_pseudo_fd(1, -N), N = the map's position in the file
 * (1 = the first). The verifier refuses the program if this is not a ring. */
#define EVENTS_RING ((void *)bpf_pseudo_fd(1, -(EVENTS_MAP_POSITION)))

/* An event takes its size plus an 8-byte header in the ring, rounded up to 8. */
#define RING_EVENT_BYTES(size) (((u64)(size) + 8 + 7) & ~7ULL)

/* BPF_RB_FORCE_WAKEUP while the unread data is in [WAKE_BYTES, WAKE_BYTES +
 * window): the crossing of the high-water mark, seen by whichever submit
 * lands in the window. */
static __always_inline u64 wake_in_window(u64 window_bytes)
{
	u64 avail = bpf_ringbuf_query(EVENTS_RING, BPF_RB_AVAIL_DATA);

	if (avail >= WAKE_BYTES && avail < WAKE_BYTES + window_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* No wake-up, except once when the unread data crosses WAKE_BYTES: the
 * collector then drains while the ring still has 7/8 free. The window of 8
 * events catches the crossing even when several CPUs submit at once; one
 * wake-up per crossing is enough, because the collector consumes everything
 * that is committed when it wakes, so the next crossing starts from empty. */
static __always_inline u64 wake_flags(u64 event_size)
{
	return wake_in_window(8 * RING_EVENT_BYTES(event_size));
}

/* The same for a program with a high event rate (lesson 02's storm): it asks
 * the ring at one event in WAKE_EVERY of each CPU's, and the window is
 * WAKE_EVERY times wider. `n` is a count of this CPU's events that the
 * program keeps anyway (a per-CPU counter, so consecutive values on a CPU).
 * bpf_ringbuf_query() is a helper call (`ebpf-lab bench helpers` prints what
 * it costs per event on your kernel; ~20 ns where the lab was built); asking
 * once in 16 saves nearly all of it. A ring too small for the wider window (the mark fewer than
 * 8 * WAKE_EVERY events away) is asked at every event, as by wake_flags(). */
#define WAKE_EVERY 16
static __always_inline u64 wake_flags_every(u64 event_size, u64 n)
{
	if (WAKE_BYTES < 8 * WAKE_EVERY * RING_EVENT_BYTES(event_size))
		return wake_flags(event_size);
	if (n & (WAKE_EVERY - 1))
		return BPF_RB_NO_WAKEUP;
	return wake_in_window(8 * WAKE_EVERY * RING_EVENT_BYTES(event_size));
}

#endif /* LAB_RING_H */
