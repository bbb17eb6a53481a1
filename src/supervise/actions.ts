/**
 * s6-supervise's behaviour as one table: ACTIONS[state][input] names what the Supervisor
 * does when `input` arrives in `state` (supervise-protocol.md §3.3 for the control bytes,
 * the timer and a child's death; §3.4 for the signals s6-supervise receives, which the
 * scanner sends as requests). The compiler checks that every state has a cell for every
 * input; test/unit/supervise-spec.test.ts checks every cell against the spec's wording.
 * The actions themselves live in the Supervisor: this module is data only.
 */
import { type SuperviseCommand } from '../s6/control.ts';

/** The five states of s6-supervise. */
export type SupervisorState = 'down' | 'up' | 'finish' | 'lastup' | 'lastfinish';

/**
 * Inputs besides control bytes: the timer, a child's death, and the scanner's requests (s6's
 * signals to s6-supervise); and t6's own, `unhealthy` (a missed watchdog, a failing probe: health.ts).
 */
export type SupervisorInput = SuperviseCommand | 'timeout' | 'death' | 'term' | 'hup' | 'quit' | 'unhealthy';

/** The actions, by name, so the table can be read and tested against the spec. */
export type ActionName =
  | 'nop' | 'sig' | 'pause' | 'cont' | 'restart' | 'reload' | 'pgStop' | 'pgCont' | 'pgKill'
  | 'wantdown' | 'wantdownStart' | 'wantup' | 'wantupStart' | 'wantDOWN' | 'wantDOWNstop' | 'wantUP' | 'wantUPstart'
  | 'stop' | 'lastupStop' | 'lastupClose' | 'lastfinishClose' | 'close' | 'bail'
  | 'timeoutDown' | 'timeoutUp' | 'timeoutFinish' | 'deathUp' | 'deathLastup' | 'deathFinish' | 'deathLastfinish'
  | 'unhealthyStop';

type Row = Record<SupervisorInput, ActionName>;

// The bytes that act on a living `run` only: the same in UP and LASTUP, ignored elsewhere.
const signals = { a: 'sig', b: 'sig', q: 'sig', h: 'sig', k: 'sig', t: 'sig', i: 'sig', '1': 'sig', '2': 'sig', y: 'sig' } as const;
const noSignals = { a: 'nop', b: 'nop', q: 'nop', h: 'nop', k: 'nop', t: 'nop', i: 'nop', '1': 'nop', '2': 'nop', y: 'nop' } as const;
const processControl = { p: 'pause', c: 'cont', r: 'restart', l: 'reload', P: 'pgStop', C: 'pgCont', K: 'pgKill' } as const;
const noProcessControl = { p: 'nop', c: 'nop', r: 'nop', l: 'nop', P: 'nop', C: 'nop', K: 'nop' } as const;

/** s6-supervise's table: ACTIONS[state][input] (supervise-protocol.md §3.3 and §3.4). */
export const ACTIONS = {
  down: {
    ...noSignals, ...noProcessControl,
    o: 'wantdownStart', d: 'wantdown', u: 'wantupStart', D: 'wantDOWN', U: 'wantUPstart', x: 'bail', O: 'wantdown', Q: 'wantDOWN',
    timeout: 'timeoutDown', death: 'nop', term: 'bail', hup: 'bail', quit: 'bail', unhealthy: 'nop',
  },
  up: {
    ...signals, ...processControl,
    o: 'wantdown', d: 'stop', u: 'wantup', D: 'wantDOWNstop', U: 'wantUP', x: 'lastupClose', O: 'wantdown', Q: 'wantDOWN',
    timeout: 'timeoutUp', death: 'deathUp', term: 'lastupStop', hup: 'lastupClose', quit: 'bail', unhealthy: 'unhealthyStop',
  },
  finish: {
    ...noSignals, ...noProcessControl,
    o: 'wantdown', d: 'wantdown', u: 'wantup', D: 'wantDOWN', U: 'wantUP', x: 'lastfinishClose', O: 'wantdown', Q: 'wantDOWN',
    timeout: 'timeoutFinish', death: 'deathFinish', term: 'lastfinishClose', hup: 'lastfinishClose', quit: 'bail', unhealthy: 'nop',
  },
  lastup: {
    ...signals, ...processControl,
    o: 'wantdown', d: 'stop', u: 'wantup', D: 'wantDOWNstop', U: 'wantUP', x: 'close', O: 'wantdown', Q: 'wantDOWN',
    timeout: 'timeoutUp', death: 'deathLastup', term: 'stop', hup: 'close', quit: 'bail', unhealthy: 'nop',
  },
  lastfinish: {
    ...noSignals, ...noProcessControl,
    o: 'wantdown', d: 'wantdown', u: 'wantup', D: 'wantDOWN', U: 'wantUP', x: 'close', O: 'wantdown', Q: 'wantDOWN',
    timeout: 'timeoutFinish', death: 'deathLastfinish', term: 'nop', hup: 'close', quit: 'bail', unhealthy: 'nop',
  },
} as const satisfies Record<SupervisorState, Row>;
