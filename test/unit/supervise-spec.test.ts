/**
 * Every cell of the Supervisor's table (src/supervise/actions.ts) against the spec's words:
 * supervise-protocol.md §3.3 (control bytes, "Timer expiry", "Child death") and §3.4
 * (signals), as copied verbatim into test/fixtures/supervise-protocol-tables.md. The
 * markdown is parsed here; each cell's wording is turned into an action name by the phrase
 * dictionary below, which is the only hand-written part. All 30 inputs × 5 states must be
 * found in the spec exactly once and match ACTIONS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ACTIONS, type ActionName, type SupervisorInput, type SupervisorState } from '../../src/supervise/actions.ts';
import { SUPERVISE_COMMANDS } from '../../src/s6/control.ts';

const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/supervise-protocol-tables.md');

const STATES = ['down', 'up', 'finish', 'lastup', 'lastfinish'] as const satisfies readonly SupervisorState[];
const INPUTS: readonly SupervisorInput[] = [...SUPERVISE_COMMANDS as Iterable<SupervisorInput>, 'timeout', 'death', 'term', 'hup', 'quit'];

/**
 * The spec's wording → the action that does it. A cell that names several bytes with
 * different actions (`P` `C` `K`) maps each byte.
 */
const PHRASES: Record<string, ActionName | Partial<Record<SupervisorInput, ActionName>>> = {
  // §3.3, control bytes
  'ignored': 'nop',
  'kill pid with ALRM, ABRT, QUIT, HUP, KILL, TERM, INT, USR1, USR2, WINCH': 'sig',
  'SIGSTOP pid, paused := 1, write status': 'pause',
  'SIGCONT pid, paused := 0, write status': 'cont',
  'send **down-signal** only (no SIGCONT, no kill timer); service restarts if still wanted up': 'restart',
  'send **reload-signal** (default SIGHUP)': 'reload',
  'killpg(pid, STOP / CONT / KILL); P/C update paused + status': { P: 'pgStop', C: 'pgCont', K: 'pgKill' },
  'wantdown + **start** (run once)': 'wantdownStart',
  'wantdown': 'wantdown',
  '**stop**': 'stop',
  'stop': 'stop',
  'wantup + **start**': 'wantupStart',
  'wantup': 'wantup',
  'wantup (restart after finish)': 'wantup',
  'wantDOWN': 'wantDOWN',
  'wantDOWN (no kill)': 'wantDOWN',
  'create `down` + stop': 'wantDOWNstop',
  'wantUP + start': 'wantUPstart',
  'wantUP': 'wantUP',
  '**bail** (exit now)': 'bail',
  '→ LASTUP + close': 'lastupClose',
  '→ LASTFINISH + close': 'lastfinishClose',
  'close': 'close',
  // §3.3, "Timer expiry"
  'start if want-up (else disarm)': 'timeoutDown',
  'if a stop with `timeout-kill` is pending: SIGKILL the pid (HEAD: SIGKILL+SIGCONT, to the pgid if `flag-timeout-killpg`) and re-arm 5 s; otherwise a "can\'t happen" warning': 'timeoutUp',
  'SIGCONT+SIGKILL the finish process, re-arm 5 s': 'timeoutFinish',
  // §3.3, "Child death"
  'finish phase (→ FINISH)': 'deathUp',
  'finish phase (→ LASTFINISH; if finish can\'t be spawned, bail)': 'deathLastup',
  'down-and-ready (→ DOWN, timer per the 1-second rule)': 'deathFinish',
  'down-and-ready then bail': 'deathLastfinish',
  'any child is just reaped': 'nop',
  // §3.4, signals
  'bail': 'bail',
  'bail (service left running)': 'bail',
  '→ LASTUP + stop (= `s6-svc -xd`)': 'lastupStop',
  '→ LASTUP + close (= `-x`)': 'lastupClose',
};

/** §3.4's signals and the scanner's requests that stand for them. SIGINT is not sent to a Supervisor (t6-svscan handles it). */
const SIGNAL_INPUTS: Record<string, SupervisorInput | undefined> = { SIGTERM: 'term', SIGHUP: 'hup', SIGQUIT: 'quit', SIGINT: undefined };

/** The spec as parsed: state → input → the wording of its cell. */
type SpecCells = Map<SupervisorState, Map<SupervisorInput, string>>;

function section(text: string, heading: string): string {
  const start = text.indexOf(`## ${heading}`);
  assert.ok(start >= 0, `the fixture has a section ${heading}`);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** A markdown table's rows as cells (the header row first, the |---| row left out). */
function tableRows(text: string): string[][] {
  return text.split('\n')
    .filter((line) => line.startsWith('|') && !/^\|[-|\s]+\|$/.test(line))
    .map((line) => line.slice(1, -1).split('|').map((cell) => cell.trim()));
}

/** The header's state columns, DOWN … LASTFINISH, as states. */
function stateColumns(header: string[]): SupervisorState[] {
  return header.slice(1).map((name) => {
    const state = name.toLowerCase() as SupervisorState;
    assert.ok(STATES.includes(state), `unknown state column ${name}`);
    return state;
  });
}

function put(cells: SpecCells, state: SupervisorState, input: SupervisorInput, wording: string): void {
  const row = cells.get(state) ?? new Map<SupervisorInput, string>();
  cells.set(state, row);
  assert.ok(!row.has(input), `${state}/${input} appears twice in the spec`);
  row.set(input, wording);
}

/** A table whose first column names inputs; "as UP" is resolved to the UP cell of the row. */
function readTable(text: string, cells: SpecCells, inputsOf: (label: string) => SupervisorInput[]): void {
  const [header, ...rows] = tableRows(text);
  const columns = stateColumns(header!);
  for (const row of rows) {
    const inputs = inputsOf(row[0]!);
    columns.forEach((state, i) => {
      let wording = row[i + 1]!;
      if (wording === 'as UP') wording = row[columns.indexOf('up') + 1]!;
      for (const input of inputs) put(cells, state, input, wording);
    });
  }
}

/**
 * A paragraph such as "Timer expiry: DOWN ⇒ …. UP/LASTUP ⇒ …" or "… In DOWN any child is
 * just reaped.": each clause starts with its states, after a `.` or `;`.
 */
function readParagraph(text: string, lead: string, input: SupervisorInput, cells: SpecCells): void {
  const start = text.indexOf(`${lead}: `);
  assert.ok(start >= 0, `the fixture has the paragraph "${lead}"`);
  const end = text.indexOf('\n\n', start);
  const body = text.slice(start + lead.length + 2, end < 0 ? undefined : end).replace(/\n/g, ' ');
  const marker = /(?:^|(?<=[.;] ))(?:([A-Z]+(?:\/[A-Z]+)?) ⇒ |In ([A-Z]+) )/g;
  const found = [...body.matchAll(marker)];
  assert.ok(found.length > 0, `no clause found in "${lead}"`);
  found.forEach((m, i) => {
    const wording = body.slice(m.index + m[0].length, found[i + 1]?.index ?? body.length).trim().replace(/[.;]$/, '');
    for (const name of (m[1] ?? m[2]!).split('/')) {
      const state = name.toLowerCase() as SupervisorState;
      assert.ok(STATES.includes(state), `unknown state ${name} in "${lead}"`);
      put(cells, state, input, wording);
    }
  });
}

function readSpec(): SpecCells {
  const text = fs.readFileSync(FIXTURE, 'utf8');
  const cells: SpecCells = new Map();
  const semantics = section(text, '§3.3');
  readTable(semantics, cells, (label) => {
    const bytes = [...label.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    for (const b of bytes) assert.ok(SUPERVISE_COMMANDS.includes(b) && b.length === 1, `${b} is a control byte`);
    return bytes as SupervisorInput[];
  });
  readParagraph(semantics, 'Timer expiry', 'timeout', cells);
  readParagraph(semantics, 'Child death', 'death', cells);
  readTable(section(text, '§3.4'), cells, (label) => {
    assert.ok(label in SIGNAL_INPUTS, `unknown signal row ${label}`);
    const input = SIGNAL_INPUTS[label];
    return input === undefined ? [] : [input];
  });
  return cells;
}

/** The action a cell's wording stands for, for this input. */
function actionOf(wording: string, input: SupervisorInput): ActionName {
  const entry = PHRASES[wording];
  assert.ok(entry !== undefined, `no phrase for the spec's wording ${JSON.stringify(wording)}`);
  if (typeof entry === 'string') return entry;
  const action = entry[input];
  assert.ok(action !== undefined, `the phrase ${JSON.stringify(wording)} says nothing of ${input}`);
  return action;
}

test('the spec names all 30 inputs in each of the 5 states, once each', () => {
  const cells = readSpec();
  assert.equal(INPUTS.length, 30);
  for (const state of STATES) {
    const row = cells.get(state);
    assert.ok(row !== undefined, `no cells for ${state}`);
    assert.deepEqual([...row.keys()].sort(), [...INPUTS].sort(), `the inputs of ${state}`);
  }
});

test('every cell of ACTIONS is what supervise-protocol.md §3.3 and §3.4 say', () => {
  const cells = readSpec();
  const wrong: string[] = [];
  const used = new Set<string>();
  for (const state of STATES) {
    for (const input of INPUTS) {
      const wording = cells.get(state)!.get(input)!;
      used.add(wording);
      const expected = actionOf(wording, input);
      const actual = ACTIONS[state][input];
      if (actual !== expected) wrong.push(`${state}/${input}: ACTIONS has ${actual}, the spec says ${JSON.stringify(wording)} (${expected})`);
    }
  }
  assert.deepEqual(wrong, []);
  // A phrase no cell uses is a sign the fixture or the dictionary drifted.
  assert.deepEqual(Object.keys(PHRASES).filter((p) => !used.has(p)), []);
});
