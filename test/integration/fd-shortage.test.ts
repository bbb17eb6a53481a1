/**
 * t6-svscan out of fds, for real: its RLIMIT_NOFILE is lowered (prlimit on its pid) so that
 * only a few of 20 new services can hold their supervise/ lock and control FIFO, then the
 * last free slots are taken by idle runner connections. Every service still runs; a service
 * set up before keeps its status and events right through the spare fd; once the limit is
 * raised, every status is right within 2 s. Waits are on events, status files and /proc,
 * never on fixed sleeps.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { EventLog, Tree, makeService, readStatus, run, tmpdir, until, childrenOf } from '../lib/harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const SERVICES = 20;
/** Free fd slots left to t6-svscan: room for a few services' lock and control FIFO, not 20. */
const SPARE_SLOTS = 10;

/** Sets the soft RLIMIT_NOFILE of `pid`, keeping the hard one. */
function setSoftNofile(pid: number, soft: number): void {
  const r = run('prlimit', ['--pid', String(pid), `--nofile=${soft}:`]);
  assert.equal(r.status, 0, `prlimit: ${r.stderr}`);
}

function softNofile(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!;
  return Number(line.split(/\s+/)[3]);
}

/** The namespace pid of every child of `pid1` (status files hold those). */
function childNsPids(pid1: number): Set<number> {
  const out = new Set<number>();
  for (const pid of childrenOf(pid1)) {
    try {
      const ns = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^NSpid:\s+(.*)$/m)![1]!.trim().split(/\s+/);
      out.add(Number(ns[ns.length - 1]));
    } catch { /* gone */ }
  }
  return out;
}

/** How many of `pid`'s fds are numbered below `limit` (the slots the limit leaves it, in use). */
function slotsInUse(pid: number, limit: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => Number(fd) < limit).length;
}

/** How many sockets `pid` holds (an accepted runner connection is one more; nothing opens one for a moment). */
function socketFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try { return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:'); } catch { return false; }
  }).length;
}

/**
 * Fills every free slot of t6-svscan's fd table with idle connections to its runner socket
 * (each accepted one holds an fd there). A connection closed at once by t6-svscan (libuv
 * accepts and drops it when accept(2) says EMFILE) shows that no slot is left.
 */
async function fillTable(sd: string, pid: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 64; i++) {
    const before = socketFds(pid);
    const sock = net.connect(path.join(sd, '.s6-svscan', 'run'));
    let closed = false;
    sock.on('close', () => { closed = true; });
    sock.on('error', () => { /* dropped: seen as the close */ });
    sockets.push(sock);
    const fate = await until('the connection to be accepted or dropped', () => (closed ? 'dropped' : socketFds(pid) > before ? 'accepted' : undefined));
    if (fate === 'dropped') return sockets;
  }
  throw new Error('t6-svscan took 64 connections without running out of fds');
}

test('out of fds: every service runs, the status and events of those set up stay right, and all are right within 2 s of the limit being raised', { timeout: 120_000 }, async (tc) => {
  const sd = tmpdir();
  const steady = makeService(path.join(sd, 'steady'), { run: '#!/bin/sh\nexec sleep 3600\n' });
  fs.mkdirSync(path.join(steady, 'event'));
  const steadyEvents = new EventLog(steady);
  cleanups.push(() => steadyEvents.close());
  const t = await Tree.start(sd);
  cleanups.push(() => t.stop());
  await steadyEvents.waitFor(/u/);
  const pid1 = t.pid1;
  const limit = softNofile(pid1);

  // Lower the limit to what is open now plus a few slots, then ask for 20 more services.
  const dirs: string[] = [];
  const events: EventLog[] = [];
  for (let i = 0; i < SERVICES; i++) {
    const dir = makeService(path.join(sd, `s${i}`), { run: '#!/bin/sh\nexec sleep 3600\n' });
    fs.mkdirSync(path.join(dir, 'event'));
    const log = new EventLog(dir);
    cleanups.push(() => log.close());
    dirs.push(dir);
    events.push(log);
  }
  const lowered = fs.readdirSync(`/proc/${pid1}/fd`).length + SPARE_SLOTS;
  setSoftNofile(pid1, lowered);
  t.control('a');
  // Every service is started, and says so.
  await Promise.all(events.map((log) => log.waitFor(/u/)));
  await until('t6-svscan to run out of fds', () => t.output.text.includes('Too many open files'));
  const shown = dirs.filter((dir) => (readStatus(dir)?.pid ?? 0) > 0).length;
  assert.ok(shown < SERVICES, `the limit is reached: ${shown} of ${SERVICES} statuses written`);

  // Now not one slot is left: only the spare fd lets a status or an event out.
  const sockets = await fillTable(sd, pid1);
  cleanups.push(() => { for (const sock of sockets) sock.destroy(); });
  assert.equal(slotsInUse(pid1, lowered), lowered, 'every slot below the limit is in use');
  fs.writeFileSync(path.join(steady, 'supervise', 'control'), 'd');
  await steadyEvents.waitFor(/dD/);
  assert.equal(slotsInUse(pid1, lowered), lowered, 'the table was still full');
  assert.equal(readStatus(steady)!.pid, 0, 'steady is shown down while no fd is free');
  assert.equal(readStatus(steady)!.wantUp, false);

  // Raise the limit: within 2 s, every status names the process that runs.
  setSoftNofile(pid1, limit);
  const raised = performance.now();
  await until('every status to be right', () => {
    const running = childNsPids(pid1);
    return dirs.every((dir) => { const st = readStatus(dir); return st !== undefined && st.pid > 0 && running.has(st.pid) && st.wantUp; });
  }, 10_000);
  const tookMs = performance.now() - raised;
  tc.diagnostic(`every status right ${tookMs.toFixed(0)} ms after the limit was raised`);
  assert.ok(tookMs < 2000, `every status right ${tookMs.toFixed(0)} ms after the limit was raised`);
  assert.equal(childNsPids(pid1).size, SERVICES, 'each service runs once (steady is down)');
  for (const dir of dirs) assert.ok(fs.existsSync(path.join(dir, 'supervise', 'control')), 'every service can be controlled again');
});
