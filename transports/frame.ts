// Wire format shared by every stream transport (TCP, WebSocket): a fixed
// 40-byte binary header, optionally followed by `length` payload bytes.
// A fixed header lets the receiver learn where a tensor fragment goes *before*
// its bytes arrive, so the payload is copied once, straight into the buffer the
// receiving collective posted (receiver-posted buffers, as Gloo and RDMA do).
//
//  off size field
//   0  u16  magic 0x574F ("WO")
//   2  u8   version
//   3  u8   type      (FrameType)
//   4  u32  group     process-group id
//   8  u32  seq       collective sequence number (p2p: per-pair counter)
//  12  u32  step      algorithm step / chunk index
//  16  u32  total     bytes of the whole message this fragment belongs to
//  20  u32  offset    offset of this fragment inside the message
//  24  u32  length    payload bytes following this header
//  28  u8   op        collective kind (OpCode), used to detect order mix-ups
//  29  u8   dtype
//  30  u8   redop
//  31  u8   flags
//  32  u32  count     elements per rank (0xFFFFFFFF when ranks legitimately differ)
//  36  u32  aux       root rank / user tag
// All integers little-endian.

export const MAGIC = 0x574f;
export const VERSION = 1;
export const HEADER_BYTES = 40;
export const VARIABLE_COUNT = 0xffffffff;

export enum FrameType {
  /** Handshake: listener's challenge (msgpack). */
  Challenge = 1,
  /** Handshake: connector's answer (msgpack). */
  Auth = 2,
  /** Handshake: listener's proof of the secret (msgpack). */
  AuthOk = 3,
  /** Collective data fragment. */
  Data = 4,
  /** Point-to-point data fragment. */
  P2P = 5,
  /** Control message (msgpack), e.g. an abort notice or a store request. */
  Control = 6,
  /** Liveness ping; no payload. */
  Heartbeat = 7,
  /** Credit return for transports without kernel flow control (in-process). */
  Credit = 8,
  /** Orderly goodbye: the peer is closing on purpose. */
  Bye = 9,
}

const KNOWN_TYPES = new Set<number>(Object.values(FrameType).filter((v) => typeof v === 'number') as number[]);

export interface FrameHeader {
  type: FrameType;
  group: number;
  seq: number;
  step: number;
  total: number;
  offset: number;
  length: number;
  op: number;
  dtype: number;
  redop: number;
  flags: number;
  count: number;
  aux: number;
}

export function emptyHeader(type: FrameType): FrameHeader {
  return { type, group: 0, seq: 0, step: 0, total: 0, offset: 0, length: 0, op: 0, dtype: 0, redop: 0, flags: 0, count: 0, aux: 0 };
}

export function encodeHeader(h: FrameHeader, out: Buffer = Buffer.allocUnsafe(HEADER_BYTES)): Buffer {
  out.writeUInt16LE(MAGIC, 0);
  out.writeUInt8(VERSION, 2);
  out.writeUInt8(h.type, 3);
  out.writeUInt32LE(h.group >>> 0, 4);
  out.writeUInt32LE(h.seq >>> 0, 8);
  out.writeUInt32LE(h.step >>> 0, 12);
  out.writeUInt32LE(h.total >>> 0, 16);
  out.writeUInt32LE(h.offset >>> 0, 20);
  out.writeUInt32LE(h.length >>> 0, 24);
  out.writeUInt8(h.op & 0xff, 28);
  out.writeUInt8(h.dtype & 0xff, 29);
  out.writeUInt8(h.redop & 0xff, 30);
  out.writeUInt8(h.flags & 0xff, 31);
  out.writeUInt32LE(h.count >>> 0, 32);
  out.writeUInt32LE(h.aux >>> 0, 36);
  return out;
}

/** Thrown for anything a well-behaved peer never sends; the link is closed with this reason. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/**
 * Decodes and validates a header. `maxFrame` bounds a single fragment; a
 * header that is malformed, of unknown type or oversize throws ProtocolError
 * (the caller closes the connection, it never crashes the process).
 */
export function decodeHeader(b: Uint8Array, maxFrame: number): FrameHeader {
  if (b.length < HEADER_BYTES) throw new ProtocolError(`malformed header: ${b.length} bytes, expected ${HEADER_BYTES}`);
  const v = new DataView(b.buffer, b.byteOffset, HEADER_BYTES);
  const magic = v.getUint16(0, true);
  if (magic !== MAGIC) throw new ProtocolError(`malformed header: bad magic 0x${magic.toString(16)}`);
  const version = v.getUint8(2);
  if (version !== VERSION) throw new ProtocolError(`malformed header: unsupported version ${version}`);
  const type = v.getUint8(3);
  if (!KNOWN_TYPES.has(type)) throw new ProtocolError(`unknown message type ${type}`);
  const h: FrameHeader = {
    type,
    group: v.getUint32(4, true),
    seq: v.getUint32(8, true),
    step: v.getUint32(12, true),
    total: v.getUint32(16, true),
    offset: v.getUint32(20, true),
    length: v.getUint32(24, true),
    op: v.getUint8(28),
    dtype: v.getUint8(29),
    redop: v.getUint8(30),
    flags: v.getUint8(31),
    count: v.getUint32(32, true),
    aux: v.getUint32(36, true),
  };
  if (h.length > maxFrame) throw new ProtocolError(`oversize frame: ${h.length} bytes > limit ${maxFrame}`);
  if (h.offset + h.length > h.total && (h.type === FrameType.Data || h.type === FrameType.P2P)) {
    throw new ProtocolError(`malformed header: fragment [${h.offset}, ${h.offset + h.length}) beyond message size ${h.total}`);
  }
  if ((h.type === FrameType.Heartbeat || h.type === FrameType.Credit || h.type === FrameType.Bye) && h.length !== 0) {
    throw new ProtocolError(`malformed header: ${FrameType[h.type]} frame with ${h.length} payload bytes`);
  }
  return h;
}
