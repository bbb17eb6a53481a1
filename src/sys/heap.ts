/**
 * V8's heap limit for t6's long-lived process: t6-svscan, and t6-linux-init, which becomes
 * it as pid 1. scripts/build.mjs reads the constant below from this file and writes it as
 * `--max-old-space-size` into those two commands' bin/ wrappers, so the code and the flag
 * cannot disagree; at run time `v8.getHeapStatistics().heap_size_limit` is the limit V8
 * actually has (a little more: the young generation counts too).
 */

/**
 * V8's old-space limit of t6-svscan and t6-linux-init, in MiB. Without it V8 picks one from
 * the machine's memory (up to 4 GB on a large one), so a leak would end in a kernel OOM
 * long before V8 said anything. t6-svscan's heap is about 7 MB at rest and some tens of MB
 * with thousands of services, and every buffer outside input can fill is bounded (see
 * docs/ARCHITECTURE.md, "Bounds") far below this: 256 MB is ten times what it needs, yet
 * small enough that a heap nearing it is news, not the machine's memory running out.
 */
export const HEAP_LIMIT_MB = 256;

/**
 * The Node options of t6's long-lived process (t6-svscan, and t6-linux-init, which becomes
 * it): a 1 MB young generation (it allocates little), HEAP_LIMIT_MB, and no memory reducer
 * (armed by start-up, it woke an idle process every 8 s forever). scripts/build.mjs
 * writes the same into those commands' bin/ wrappers; t6-linux-init-maker into bin/init,
 * which runs Node itself, without the wrapper's shell.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', `--max-old-space-size=${HEAP_LIMIT_MB}`, '--no-memory-reducer'];
