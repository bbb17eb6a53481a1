/**
 * Seeded random test data. Every random input of a test comes from here, so that a failure
 * can be replayed: each run takes a fresh seed, which each test that draws from it prints
 * (a diagnostic line, `random input: seed N …`), and T6_TEST_SEED=N makes a run use N:
 *
 *     T6_TEST_SEED=2718281828 node_modules/.bin/node --test test/unit/log-fuzz.test.ts
 *
 * A test's numbers depend only on the seed and the test's name (and the stream's name, for
 * a test that draws several), never on what ran before it: a failing test replays alone
 * (--test-name-pattern) or in the whole suite alike.
 */
import crypto from 'node:crypto';
import type { TestContext } from 'node:test';

/** The environment variable that replays a run. */
export const SEED_VARIABLE = 'T6_TEST_SEED';

function runSeed(): number {
  const given = process.env[SEED_VARIABLE];
  if (given === undefined || given === '') return crypto.randomInt(1, 2 ** 32);
  const seed = Number(given);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`${SEED_VARIABLE}=${given}: not an integer in [0, 2^32)`);
  return seed;
}

/** This run's seed: T6_TEST_SEED, or a fresh one. */
export const TEST_SEED = runSeed();

/** A stream of pseudo-random numbers, the same for the same seed and name. */
export interface Random {
  readonly seed: number;
  readonly name: string;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** n bytes. */
  bytes(n: number): Buffer;
  /** One element of a non-empty list. */
  pick<T>(list: readonly T[]): T;
}

/** FNV-1a: a name's 32-bit hash, to give each stream its own start. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(name, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

/** A stream named `name` from `seed` (mulberry32: small, fast, and good enough for test data). */
export function randomStream(name: string, seed = TEST_SEED): Random {
  let state = (seed ^ hashName(name)) >>> 0;
  const next32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next = (): number => next32() / 2 ** 32;
  return {
    seed,
    name,
    next,
    int: (n) => Math.floor(next() * n),
    bytes: (n) => {
      const out = Buffer.alloc(n);
      let i = 0;
      for (; i + 4 <= n; i += 4) out.writeUInt32LE(next32(), i);
      for (; i < n; i++) out[i] = next32() & 0xff;
      return out;
    },
    pick: (list) => list[Math.floor(next() * list.length)]!,
  };
}

/**
 * The random stream of a test (and of `stream` within it), its seed printed as a diagnostic
 * of the test, so that any failure shows how to replay it.
 */
export function seededRandom(t: TestContext, stream = ''): Random {
  const name = stream === '' ? t.fullName : `${t.fullName} / ${stream}`;
  const random = randomStream(name);
  t.diagnostic(`random input${stream === '' ? '' : ` (${stream})`}: seed ${random.seed} (replay: ${SEED_VARIABLE}=${random.seed})`);
  return random;
}
