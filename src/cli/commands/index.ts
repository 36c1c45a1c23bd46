// One import and one list entry per subcommand; each module exports `register(program)`.
// Modules must not touch the GPU or the network at import time: only in their actions.
import type { Command } from 'commander';
import * as start from './start.ts';
import * as doctor from './doctor.ts';
import * as train from './train.ts';
import * as generate from './generate.ts';
import * as launch from './launch.ts';

interface CommandModule {
  register(program: Command): void;
}

const commands: CommandModule[] = [start, doctor, train, generate, launch];

export function registerCommands(program: Command): void {
  for (const c of commands) c.register(program);
}
