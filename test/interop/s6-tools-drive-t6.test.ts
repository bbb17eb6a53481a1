/**
 * The other direction: Debian's real s6 tools (s6-svc, s6-svstat, s6-svwait, s6-svok,
 * s6-svscanctl; s6-svc -w… goes through s6-svlisten1 and s6-ftrigrd, so the event
 * fifodir protocol is exercised too) drive t6-svscan. The same history is then played
 * against real s6-svscan, and every s6-svstat line must be the same under both (pids and
 * seconds aside), as must every tool's exit code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, Tree, WAIT_MS, makeService, readStatus, run, tmpdir, until } from '../lib/harness.ts';

const T = String(WAIT_MS);

interface Step {
  what: string;
  code: number | null;
  lines: string[];
}

/** Normalises the numbers that legitimately differ between two runs. */
function norm(text: string): string {
  return text.replace(/pid \d+/g, 'pid P').replace(/\d+ seconds/g, 'N seconds');
}

/** Plays one fixed history with real s6 tools against a tree; returns what the tools said. */
async function history(command: string[] | undefined): Promise<Step[]> {
  const base = tmpdir('t6-history-');
  const sd = path.join(base, 'scan');
  fs.mkdirSync(sd);
  makeService(path.join(sd, 'plain'), { run: '#!/bin/sh\nexec sleep 1000\n' });
  makeService(path.join(sd, 'ready'), { run: '#!/bin/sh\necho >&3\nexec sleep 1000 3>&-\n', files: { 'notification-fd': '3\n' } });
  makeService(path.join(sd, 'idle'), { run: '#!/bin/sh\nexec sleep 1000\n', down: true });
  makeService(path.join(sd, 'perma'), { run: '#!/bin/sh\nexit 2\n', finish: '#!/bin/sh\nexit 125\n', down: true, files: { 'notification-fd': '3\n' } });
  makeService(path.join(sd, 'logged'), { run: '#!/bin/sh\nexec sleep 1000\n', log: { run: '#!/bin/sh\nexec cat >/dev/null\n' } });
  const names = ['plain', 'ready', 'idle', 'perma', 'logged', 'logged/log'];
  const dir = (n: string): string => path.join(sd, n);
  const tree = await Tree.start(sd, command === undefined ? {} : { command });
  const steps: Step[] = [];
  const svstat = (n: string, extra: string[] = []): string => norm(run('s6-svstat', [...extra, dir(n)]).stdout.trim());
  // A command that does not wait (s6-svc without -w) returns once the byte is in the FIFO:
  // `settled` says when the supervisor has acted on it (its status file changed).
  const step = async (what: string, cmd: string, args: string[], show: string[] = [], settled?: () => boolean): Promise<void> => {
    const r = run(cmd, args);
    if (settled !== undefined) await until(`${what}: the status to show it`, settled);
    steps.push({ what, code: r.status, lines: show.map((n) => `${n}: ${svstat(n)}`) });
  };
  try {
    for (const n of names) await until(`${n} supervised`, () => run('s6-svok', [dir(n)]).status === 0);
    await step('wait ready up+ready, plain up', 's6-svwait', ['-U', '-t', T, dir('ready')]);
    await step('wait plain up', 's6-svwait', ['-u', '-t', T, dir('plain'), dir('logged'), dir('logged/log')], names);
    await step('svstat fields', 's6-svstat', ['-o', 'up,wantedup,normallyup,ready,paused,exitcode,signal,signum', dir('ready')]);
    steps[steps.length - 1]!.lines.push(run('s6-svstat', ['-o', 'up,wantedup,normallyup,ready,paused,exitcode,signal,signum', dir('ready')]).stdout.trim());
    await step('down plain, wait D', 's6-svc', ['-wD', '-T', T, '-d', dir('plain')], ['plain']);
    await step('up idle, wait u', 's6-svc', ['-wu', '-T', T, '-u', dir('idle')], ['idle']);
    await step('pause idle', 's6-svc', ['-p', dir('idle')], ['idle'], () => readStatus(dir('idle'))?.paused === true);
    await step('continue idle', 's6-svc', ['-c', dir('idle')], ['idle'], () => readStatus(dir('idle'))?.paused === false);
    await step('perma up: permanent failure', 's6-svc', ['-wU', '-T', T, '-u', dir('perma')], ['perma']);
    await step('plain up again', 's6-svc', ['-wu', '-T', T, '-u', dir('plain')], ['plain']);
    await step('plain once, then SIGKILL', 's6-svc', ['-O', dir('plain')], ['plain'], () => readStatus(dir('plain'))?.wantUp === false);
    await step('kill plain, wait D', 's6-svc', ['-wD', '-T', T, '-k', dir('plain')], ['plain']);
    await step('D ready', 's6-svc', ['-wD', '-T', T, '-D', dir('ready')], ['ready']);
    await step('U ready', 's6-svc', ['-wU', '-T', T, '-U', dir('ready')], ['ready']);
    await step('svwait -D timeout on an up service', 's6-svwait', ['-D', '-t', '2000', dir('ready')]);
    await step('svok', 's6-svok', [dir('logged/log')]);
    await step('svok on a plain directory', 's6-svok', [base]);
    await step('svscanctl -an', 's6-svscanctl', ['-an', sd]);
    await step('svscanctl -t', 's6-svscanctl', ['-t', sd]);
    await tree.exited;
    steps.push({ what: 'after the tree ended', code: 0, lines: names.map((n) => `${n}: ${run('s6-svok', [dir(n)]).status}`) });
    return steps;
  } finally {
    tree.kill();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

test('real s6 tools drive t6-svscan, and s6-svstat says the same as under real s6-svscan', { timeout: 120_000 }, async () => {
  const underT6 = await history(undefined);
  if (process.env.T6_SHOW_HISTORY) console.log(JSON.stringify(underT6, null, 1));
  const underS6 = await history(['s6-svscan', '-d', '3']);
  for (let i = 0; i < underS6.length; i++) {
    assert.deepEqual(underT6[i], underS6[i], `step ${i}: ${underS6[i]!.what}`);
  }
  // And the history means what it should (so that two identical wrongs cannot pass).
  const byWhat = new Map(underT6.map((s) => [s.what, s]));
  assert.equal(byWhat.get('perma up: permanent failure')!.code, 1);
  assert.match(byWhat.get('down plain, wait D')!.lines[0]!, /^plain: down \(signal SIGTERM\) N seconds, normally up, ready N seconds$/);
  assert.match(byWhat.get('pause idle')!.lines[0]!, /^idle: up \(pid P\) N seconds, normally down, paused$/);
  assert.match(byWhat.get('kill plain, wait D')!.lines[0]!, /^plain: down \(signal SIGKILL\) N seconds, normally up, ready N seconds$/);
  assert.match(byWhat.get('U ready')!.lines[0]!, /^ready: up \(pid P\) N seconds, ready N seconds$/);
  assert.equal(byWhat.get('svwait -D timeout on an up service')!.code, 99);
  assert.deepEqual(byWhat.get('after the tree ended')!.lines, ['plain: 1', 'ready: 1', 'idle: 1', 'perma: 1', 'logged: 1', 'logged/log: 1']);
  void BIN;
});
