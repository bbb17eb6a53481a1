// `npm run demo`: a small supervision tree under t6-svscan, with its status live.
// The demo itself is TypeScript (demo.ts, type-checked with the rest of t6); Node 24 runs
// it directly, stripping the types. This file keeps the name package.json's script uses.
import './demo.ts';
