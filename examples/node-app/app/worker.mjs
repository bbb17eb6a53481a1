// The worker: consumes a file-based queue (DATA/queue/*.json), one job at a time. A job is
// claimed by renaming it into DATA/work/ first, so a job that crashes the worker is found
// there on the next start (t6 restarts it) and set aside in DATA/failed/ instead of
// crashing it again. Stops between two jobs on SIGTERM.
import fs from 'node:fs';
import path from 'node:path';

const DATA = process.env.APP_DATA ?? '/var/lib/app';
const dir = (name) => path.join(DATA, name);
const TICK_MS = Number(process.env.WORKER_TICK_MS ?? 200);

for (const name of ['queue', 'work', 'done', 'failed']) fs.mkdirSync(dir(name), { recursive: true });
console.log(`started, pid ${process.pid}`);

for (const leftover of fs.readdirSync(dir('work'))) {
  fs.renameSync(path.join(dir('work'), leftover), path.join(dir('failed'), leftover));
  console.log(`job ${leftover} was being worked on when the worker died: moved to failed/`);
}

let stopping = false;
process.on('SIGTERM', () => { stopping = true; });

function handle(job, file) {
  if (job.crash === true) {
    console.error(`job ${file} asks for a crash: crashing`);
    process.exit(70);
  }
  console.log(`done job ${file}: ${JSON.stringify(job)}`);
}

function tick() {
  if (stopping) {
    console.log('SIGTERM: stopped');
    process.exit(0);
  }
  const next = fs.readdirSync(dir('queue')).filter((f) => f.endsWith('.json')).sort()[0];
  if (next !== undefined) {
    const claimed = path.join(dir('work'), next);
    fs.renameSync(path.join(dir('queue'), next), claimed);
    let job;
    try { job = JSON.parse(fs.readFileSync(claimed, 'utf8')); } catch { job = { invalid: true }; }
    handle(job, next);
    fs.renameSync(claimed, path.join(dir('done'), next));
  }
  setTimeout(tick, next === undefined ? TICK_MS : 0);
}
tick();
