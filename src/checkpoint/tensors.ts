// Named engine tensors ⇄ safetensors bytes.
import { Tensor, fmtShape } from '../tensor/tensor.ts';
import type { DType } from '../tensor/dtype.ts';
import { getDevice, type Device } from '../device/index.ts';
import { parseSafeTensors, serializeSafeTensors, SafeTensorsError, type SafeDType } from './safetensors.ts';

const TO_SAFE: Record<DType, SafeDType> = { f32: 'F32', f16: 'F16', i32: 'I32', u32: 'U32' };
const FROM_SAFE: Partial<Record<SafeDType, DType>> = { F32: 'f32', F16: 'f16', I32: 'i32', U32: 'u32' };

/** Read named tensors back from the GPU and encode them as safetensors. */
export async function encodeTensors(named: Iterable<[string, Tensor]>, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const list = [...named];
  const datas = await Promise.all(list.map(([, t]) => rawBytes(t)));
  return serializeSafeTensors(
    list.map(([name, t], i) => [name, { dtype: TO_SAFE[t.dtype], shape: t.shape, data: datas[i] }] as const),
    metadata,
  );
}

async function rawBytes(t: Tensor): Promise<Uint8Array> {
  const a = await t.toArray();
  if (t.dtype === 'f16') {
    // toArray widened f16 to f32; store the f16 bits.
    const { f32ToF16Bits } = await import('../tensor/dtype.ts');
    const h = new Uint16Array(a.length);
    for (let i = 0; i < a.length; i++) h[i] = f32ToF16Bits(a[i]);
    return new Uint8Array(h.buffer);
  }
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Decode safetensors bytes and upload every tensor (F64 is narrowed to f32). */
export function decodeTensors(bytes: Uint8Array, source?: string, device: Device = getDevice()): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const file = parseSafeTensors(bytes, source);
  const tensors = new Map<string, Tensor>();
  for (const [name, e] of file.tensors) {
    let dtype = FROM_SAFE[e.dtype];
    let data: ArrayLike<number>;
    const copy = new Uint8Array(e.data); // an aligned copy (Buffer.slice would be a view)
    if (e.dtype === 'F64') {
      dtype = 'f32';
      data = new Float64Array(copy.buffer);
    } else if (!dtype) {
      throw new SafeTensorsError(`${source ?? 'safetensors data'}: tensor '${name}' has dtype ${e.dtype}, which webomni cannot load`);
    } else if (dtype === 'f16') {
      const t = Tensor.empty(e.shape, 'f16', device);
      if (t.size) device.write(t.storage.buffer, 0, copy);
      tensors.set(name, t);
      continue;
    } else {
      data = dtype === 'f32' ? new Float32Array(copy.buffer) : dtype === 'i32' ? new Int32Array(copy.buffer) : new Uint32Array(copy.buffer);
    }
    tensors.set(name, Tensor.fromArray(data, e.shape, dtype, device));
  }
  return { tensors, metadata: file.metadata };
}

/** Copy loaded tensors into a module's parameters by name, checking names and shapes. */
export function assignParameters(
  params: Array<[string, Tensor]>,
  loaded: Map<string, Tensor>,
  setParam: (name: string, t: Tensor) => void,
  opts: { strict?: boolean; source?: string } = {},
): void {
  const src = opts.source ?? 'checkpoint';
  const missing = params.filter(([n]) => !loaded.has(n)).map(([n]) => n);
  const names = new Set(params.map(([n]) => n));
  const unexpected = [...loaded.keys()].filter((n) => !names.has(n));
  if ((opts.strict ?? true) && (missing.length || unexpected.length)) {
    throw new SafeTensorsError(
      `${src}: parameters do not match the model` +
        (missing.length ? `; missing: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}` : '') +
        (unexpected.length ? `; unexpected: ${unexpected.slice(0, 8).join(', ')}${unexpected.length > 8 ? ', …' : ''}` : ''),
    );
  }
  for (const [name, p] of params) {
    const t = loaded.get(name);
    if (!t) continue;
    if (t.rank !== p.rank || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new SafeTensorsError(`${src}: '${name}' has shape ${fmtShape(t.shape)} but the model expects ${fmtShape(p.shape)}`);
    }
    if (t.dtype !== p.dtype) throw new SafeTensorsError(`${src}: '${name}' is ${t.dtype} but the model expects ${p.dtype}`);
    setParam(name, t);
    loaded.delete(name);
  }
}
