// The `webomni` command line. Each subcommand lives in its own module under
// ./commands and registers itself on the program here.
import { Command } from 'commander';
import { registerCommands } from './commands/index.ts';

const program = new Command();
program
  .name('webomni')
  .description('WebGPU-native engine for training omnimodal mixture-of-experts language models')
  .showHelpAfterError();
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as Error;
  console.error(`webomni: ${e.message}`);
  if (process.env.WEBOMNI_DEBUG) console.error(e.stack);
  process.exitCode = 1;
}
