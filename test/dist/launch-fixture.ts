// Launcher test fixture: every rank reports its pid; rank 1 fails with exit
// code 7 after a moment while the others would run for a minute.
const rank = Number(process.env.RANK);
console.log(`PID ${rank} ${process.pid} world=${process.env.WORLD_SIZE} local=${process.env.LOCAL_RANK} secret=${(process.env.WEBOMNI_JOB_SECRET ?? '').length}`);
if (process.argv[2] === 'fail' && rank === 1) setTimeout(() => process.exit(7), 500);
else setTimeout(() => process.exit(0), process.argv[2] === 'fail' ? 60_000 : 100);
