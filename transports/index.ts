// Transport registry: pick a transport by name.
import type { MessagePort } from 'node:worker_threads';
import { InProcTransport } from './inproc.ts';
import { TcpTransport } from './tcp.ts';
import type { Transport, TransportName, TransportOptions } from './types.ts';
import { WsTransport } from './ws.ts';

export * from './types.ts';
export { createInProcFabric } from './inproc.ts';
export { TcpTransport } from './tcp.ts';
export { WsTransport } from './ws.ts';

export function createTransport(name: TransportName, opts: TransportOptions, inprocPorts?: Map<number, MessagePort>): Transport {
  switch (name) {
    case 'tcp':
      return new TcpTransport(opts);
    case 'ws':
      return new WsTransport(opts);
    case 'inproc':
      if (!inprocPorts) throw new Error('the inproc transport needs the rank\'s channel ports (createInProcFabric)');
      return new InProcTransport(opts, inprocPorts);
    default:
      throw new Error(`unknown transport "${name as string}" (expected tcp, ws or inproc)`);
  }
}
