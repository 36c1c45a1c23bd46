// Make sure the bundled shader module is current before any test imports it.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  execFileSync(process.execPath, ['scripts/gen-shaders.mjs'], { stdio: 'inherit' });
}
