// Scenario dispatch shared by process ranks (worker.ts) and thread ranks (threads.ts).
import type { World } from '../../src/dist/init.ts';
import { allReduceAlgos, asyncInFlight, collectives, deviceFake, deviceTensor, mesh, type Report } from './scenarios.ts';
import { faultScenario, badInput } from './fault-scenarios.ts';

export async function runScenario(name: string, world: World): Promise<Report> {
  switch (name) {
    case 'collectives':
      return collectives(world);
    case 'collectives-small':
      return collectives(world, [0, 1, 7, 1001, 65537]);
    case 'allreduce-algos':
      return allReduceAlgos(world);
    case 'async':
      return asyncInFlight(world);
    case 'mesh':
      return mesh(world);
    case 'device-fake':
      return deviceFake(world);
    case 'device-tensor':
      return deviceTensor(world);
    case 'badinput':
      return badInput(world);
    default:
      if (name.startsWith('fault')) return faultScenario(world);
      throw new Error(`unknown scenario ${name}`);
  }
}
