import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_KILL_GRACETIME_MS, profileDirs, readContainerSettings } from '../../src/init/container-settings.ts';

test('an empty environment gives s6-overlay v3 defaults', () => {
  const { settings, warnings } = readContainerSettings({});
  assert.deepEqual([...warnings].sort(), []);
  assert.deepEqual(settings, {
    keepEnv: false, logging: 0, loggingScript: undefined, catchallUser: undefined, behaviourIfStage2Fails: 0,
    verbosity: 2, stage2Hook: undefined, runtimeProfile: undefined, runtimeBundleDir: undefined, cmdArg0: [],
    cmdUseTerminal: false, cmdReceiveSignals: false, cmdWaitForServices: false, cmdWaitForServicesMaxTimeMs: 0,
    servicesReadyTimeMs: 50, servicesGraceTimeMs: 3000, killFinishMaxTimeMs: 0, killGraceTimeMs: 3000,
    syncDisks: false, fixAttrsHidden: false, readOnlyRoot: false, worldWritableRun: false, waitForClosingFd: undefined,
    logPrefix: false,
  });
  assert.equal(readContainerSettings({ T6_LOG_PREFIX: '1' }).settings.logPrefix, true, 'T6_LOG_PREFIX=1: the console sink');
  const withLogger = readContainerSettings({ T6_LOG_PREFIX: '1', S6_LOGGING: '1' });
  assert.equal(withLogger.settings.logPrefix, false, 'not with a catch-all logger: each line would come twice');
  assert.match(withLogger.warnings.join('\n'), /T6_LOG_PREFIX is for S6_LOGGING=0/);
});

test('numbers must be all digits; a switch is on for a number other than 0; what was not taken is said', () => {
  const { settings, warnings } = readContainerSettings({
    S6_LOGGING: 'yes', S6_KEEP_ENV: '0', S6_CMD_RECEIVE_SIGNALS: '1', S6_READ_ONLY_ROOT: 'true',
    S6_BEHAVIOUR_IF_STAGE2_FAILS: '2', S6_CMD_WAIT_FOR_SERVICES_MAXTIME: '5000ms', S6_VERBOSITY: '',
    S6_KILL_GRACETIME: '999999', S6_WAIT_FOR_CLOSING_FD: '2',
  });
  assert.equal(settings.logging, 0, 'S6_LOGGING=yes is no number: off, as under s6-overlay');
  assert.equal(settings.keepEnv, false);
  assert.equal(settings.cmdReceiveSignals, true);
  assert.equal(settings.readOnlyRoot, false, '"true" is no number');
  assert.equal(settings.behaviourIfStage2Fails, 2);
  assert.equal(settings.cmdWaitForServicesMaxTimeMs, 0);
  assert.equal(settings.verbosity, 2, 'empty is unset');
  assert.equal(settings.killGraceTimeMs, MAX_KILL_GRACETIME_MS);
  assert.equal(settings.waitForClosingFd, undefined);
  assert.deepEqual([...warnings].sort(), [
    'S6_KILL_GRACETIME=999999 is over 300000: using 300000',
    'S6_WAIT_FOR_CLOSING_FD=2 is not an fd above 2: ignored',
    'S6_LOGGING="yes" is not a number of digits: using 0',
    'S6_READ_ONLY_ROOT="true" is not a number of digits: using 0',
    'S6_CMD_WAIT_FOR_SERVICES_MAXTIME="5000ms" is not a number of digits: using 0',
  ].sort());
});

test('S6_LOGGING above 2 is 2; word lists split on blanks, never through a shell', () => {
  const { settings } = readContainerSettings({
    S6_LOGGING: '7', S6_STAGE2_HOOK: ' /docker-mods  --flag\t"quoted" $HOME ', S6_CMD_ARG0: 'with-contenv  node', S6_LOGGING_SCRIPT: 'n20 s1000000 T',
  });
  assert.equal(settings.logging, 2);
  assert.deepEqual(settings.stage2Hook, ['/docker-mods', '--flag', '"quoted"', '$HOME']);
  assert.deepEqual(settings.cmdArg0, ['with-contenv', 'node']);
  assert.deepEqual(settings.loggingScript, ['n20', 's1000000', 'T']);
});

test('profile directories: /etc by default, /etc/cont-profile.d/NAME with a profile, the bundle dir overridable', () => {
  assert.deepEqual(profileDirs({ runtimeProfile: undefined, runtimeBundleDir: undefined }),
    { overlay: '/etc/s6-overlay', bundles: '/etc/s6-overlay/user-bundles.d', legacy: '/etc' });
  assert.deepEqual(profileDirs({ runtimeProfile: 'dev', runtimeBundleDir: undefined }),
    { overlay: '/etc/cont-profile.d/dev/s6-overlay', bundles: '/etc/cont-profile.d/dev/s6-overlay/user-bundles.d', legacy: '/etc/cont-profile.d/dev' });
  assert.deepEqual(profileDirs({ runtimeProfile: undefined, runtimeBundleDir: '/srv/bundles' }).bundles, '/srv/bundles');
});
