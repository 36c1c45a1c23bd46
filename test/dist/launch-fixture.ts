// Launcher test fixture: every rank reports its pid (to stdout and to a file in
// LAUNCH_FIXTURE_DIR); in "fail" mode rank 1 exits with code 7 once every rank
// has reported, while the others would run for a minute.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const rank = Number(process.env.RANK);
const world = Number(process.env.WORLD_SIZE);
const dir = process.env.LAUNCH_FIXTURE_DIR;
console.log(`PID ${rank} ${process.pid} world=${world} local=${process.env.LOCAL_RANK} secret=${(process.env.WEBOMNI_JOB_SECRET ?? '').length}`);
if (dir && existsSync(dir)) writeFileSync(join(dir, `${rank}.pid`), String(process.pid));
if (process.argv[2] === 'fail' && rank === 1) {
  const poll = setInterval(() => {
    if (!dir || readdirSync(dir).length >= world) {
      clearInterval(poll);
      process.exit(7);
    }
  }, 50);
} else setTimeout(() => process.exit(0), process.argv[2] === 'fail' ? 60_000 : 100);
