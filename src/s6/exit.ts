/**
 * Exit codes: one meaning per code across every t6 tool, s6's where s6 has one
 * (s6-spec/tools.md, s6-rc.md §7). Commands and the library name codes from here only.
 */
export const EXIT = {
  ok: 0,
  /**
   * Some transition failed, or `t6-rc diff` found differences (s6-rc); a broken supervise
   * directory (s6-svc ≥ 2.14) or a status that cannot be read (s6-svstat); a failure the
   * user must look at (a sources error for t6-rc-compile).
   */
  failed: 1,
  /** t6-rc: the global timeout (-t) passed. */
  rcTimedOut: 2,
  /** t6-rc: a name the database does not know. */
  unknownName: 3,
  /** t6-rc: the compiled database or the live state is invalid. */
  invalidDb: 4,
  /** t6-rc-update: a name of the wrong type (a bundle where an atomic service is needed). */
  wrongType: 5,
  /** t6-rc-update: a name given twice. */
  duplicate: 6,
  /** t6-rc-update: a transition of the update failed (the database is not switched). */
  updateFailed: 9,
  /** t6-rc-update: a transition of the update timed out (the database is not switched). */
  updateTimedOut: 10,
  /** svwait, svc -w: the timeout passed. */
  timedOut: 99,
  /** A bad command line, or a use that cannot work (another scanner runs there). */
  usage: 100,
  /** The service is not supervised (s6-svc ≥ 2.14). */
  notSupervised: 102,
  /** A system call failed. */
  system: 111,
} as const;

/** One of the exit codes above. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
