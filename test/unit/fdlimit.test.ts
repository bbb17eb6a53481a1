/** raiseFdLimit: RLIMIT_NOFILE raised to what -c needs when allowed, one warning naming the limit and the services it allows when not. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fdsNeeded, raiseFdLimit, servicesWithin, type FdLimitCalls } from '../../src/supervise/fdlimit.ts';
import { SysError } from '../../src/sys/errors.ts';

/** A process's limits in memory; raising the hard limit fails unless `privileged`. */
function fakeLimits(soft: number, hard: number, privileged: boolean, nrOpen: number | undefined = 1_048_576): FdLimitCalls & { now: { soft: bigint; hard: bigint }; sets: number } {
  const state = { now: { soft: BigInt(soft), hard: BigInt(hard) }, sets: 0 };
  return Object.assign(state, {
    get: () => ({ ...state.now }),
    set: (s: bigint, h: bigint) => {
      if ((h > state.now.hard && !privileged) || s > h) throw new SysError('setrlimit', 1 /* EPERM */, '7');
      state.sets++;
      state.now = { soft: s, hard: h };
    },
    nrOpen: () => nrOpen,
  });
}

test('pid 1 at boot (hard 4,096) is raised to what -c 10,000 needs, soft and hard', () => {
  const l = fakeLimits(1024, 4096, true);
  assert.equal(raiseFdLimit(10_000, true, l), undefined);
  assert.deepEqual(l.now, { soft: BigInt(fdsNeeded(10_000)), hard: BigInt(fdsNeeded(10_000)) });
});

test('never above nr_open', () => {
  const l = fakeLimits(1024, 4096, true, 20_000);
  assert.equal(raiseFdLimit(10_000, true, l), undefined);
  assert.deepEqual(l.now, { soft: 20_000n, hard: 20_000n });
});

test('a hard limit that is enough already is left alone; a low soft one is raised to what is needed', () => {
  const enough = fakeLimits(1_048_576, 1_048_576, false);
  assert.equal(raiseFdLimit(1000, true, enough), undefined);
  assert.equal(enough.sets, 0);
  const lowSoft = fakeLimits(1024, 65_536, false);
  assert.equal(raiseFdLimit(1000, true, lowSoft), undefined);
  assert.deepEqual(lowSoft.now, { soft: BigInt(fdsNeeded(1000)), hard: 65_536n });
});

test('without the right to raise it: one warning naming the limit and how many services it holds; the soft limit goes up to the hard one', () => {
  const l = fakeLimits(1024, 20_000, false);
  const warning = raiseFdLimit(10_100, true, l);
  assert.ok(warning !== undefined);
  assert.match(warning, /RLIMIT_NOFILE\) is 20000 and could not be raised to the 30556 that -c 10100 needs: Operation not permitted/);
  assert.match(warning, new RegExp(`about ${servicesWithin(20_000, false)} services can be supervised \\(about ${servicesWithin(20_000, true)} once their locks are parked\\)`));
  assert.deepEqual(l.now, { soft: 20_000n, hard: 20_000n });
  assert.doesNotMatch(raiseFdLimit(10_100, false, fakeLimits(20_000, 20_000, false))!, /parked/);
});

test('the count of services a limit holds', () => {
  assert.equal(servicesWithin(20_000, false), 6581);
  assert.equal(servicesWithin(20_000, true), 9872);
  assert.equal(servicesWithin(100, true), 0);
});
