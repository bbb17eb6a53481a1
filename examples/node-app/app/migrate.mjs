// The migrate oneshot: brings DATA/db.json up to date, once per container start, before the
// API and the worker start (their dependencies.d name it). Exit non-zero and neither starts.
import fs from 'node:fs';
import path from 'node:path';

const DATA = process.env.APP_DATA ?? '/var/lib/app';
const DB = path.join(DATA, 'db.json');
const MIGRATIONS = ['001-create-db', '002-create-queue'];

fs.mkdirSync(path.join(DATA, 'queue'), { recursive: true });
const db = fs.existsSync(DB) ? JSON.parse(fs.readFileSync(DB, 'utf8')) : { migrations: [] };
for (const m of MIGRATIONS) {
  if (db.migrations.includes(m)) continue;
  db.migrations.push(m);
  // A oneshot's output is not prefixed by t6 (only longruns get a console sink): say who speaks.
  console.log(`migrate: applied ${m}`);
}
fs.writeFileSync(`${DB}.tmp`, JSON.stringify(db));
fs.renameSync(`${DB}.tmp`, DB);
console.log(`migrate: done, ${db.migrations.length} migrations`);
