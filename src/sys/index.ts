/** The system layer: the only part of t6 that calls libc. */
export * from './errors.ts';
export * from './spawn.ts';
export * from './fd.ts';
export * from './system.ts';
export * from './wait.ts';
export * from './signals.ts';
export * from './stat.ts';
export * from './dirfd.ts';
export * from './identity.ts';
export * from './reaper.ts';
export * from './version.ts';
export * from './clock.ts';
export * from './proc.ts';
export * from './pidwatch.ts';
