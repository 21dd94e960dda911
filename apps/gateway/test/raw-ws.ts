import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** One frame the server sent: text (parsed when JSON) or a close with its code. */
export type ServerMessage = { kind: 'text'; text: string } | { kind: 'close'; code: number };

/**
 * A WebSocket client written on a bare TCP socket, for the fuzz suite: it can
 * send what no WebSocket library would (invalid UTF-8 in a text frame, a frame
 * split at any byte, fragments of another opcode) and see every server frame.
 */
export class RawWebSocket {
  readonly messages: ServerMessage[] = [];
  readonly closed: Promise<number>;
  #socket: Socket;
  #buffer = Buffer.alloc(0);
  #onClose: (code: number) => void = () => {};
  #closeCode: number | undefined;
  #writing: Promise<void> = Promise.resolve();

  private constructor(socket: Socket) {
    this.#socket = socket;
    this.closed = new Promise((resolve) => {
      this.#onClose = resolve;
    });
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.#onClose(this.#closeCode ?? 1006));
  }

  /**
   * Opens `ws://host:port/path` with the HTTP upgrade. `headers`: more request header lines;
   * `pipelined`: bytes written right behind the request (frames pipelined before the 101 arrives).
   */
  static open(
    port: number,
    path = '/ws',
    more: { headers?: string[]; pipelined?: Buffer } = {},
  ): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const key = randomBytes(16).toString('base64');
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
            (more.headers ?? []).map((line) => `${line}\r\n`).join('') +
            '\r\n',
        );
        if (more.pipelined) socket.write(more.pipelined);
      });
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        if (!head.subarray(0, end).toString().startsWith('HTTP/1.1 101')) {
          reject(new Error(`upgrade refused: ${head.subarray(0, end).toString().split('\r\n')[0]}`));
          socket.destroy();
          return;
        }
        const ws = new RawWebSocket(socket);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) ws.#read(rest);
        resolve(ws);
      };
      socket.on('data', onData);
    });
  }

  get isOpen(): boolean {
    return this.#closeCode === undefined && !this.#socket.destroyed;
  }

  /** Encodes one masked frame. */
  static frame(opcode: number, payload: Buffer, fin = true): Buffer {
    const mask = randomBytes(4);
    const len = payload.length;
    const header = len < 126 ? Buffer.from([0, 0x80 | len]) : len < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
    header[0] = (fin ? 0x80 : 0) | opcode;
    if (len >= 126 && len < 65_536) {
      header[1] = 0x80 | 126;
      header.writeUInt16BE(len, 2);
    } else if (len >= 65_536) {
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(len), 2);
    }
    const body = Buffer.from(payload);
    for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (mask[i % 4] as number);
    return Buffer.concat([header, mask, body]);
  }

  /** Writes bytes, split at the given offsets with a turn of the event loop between pieces. */
  write(bytes: Buffer, splits: readonly number[] = []): Promise<void> {
    // One write at a time: a pong sent while a split frame is half written would land inside it.
    const done = this.#writing.then(() => this.#writePieces(bytes, splits));
    this.#writing = done;
    return done;
  }

  async #writePieces(bytes: Buffer, splits: readonly number[]): Promise<void> {
    const cuts = [...new Set(splits.map((s) => Math.min(Math.max(0, s), bytes.length)))].sort((a, b) => a - b);
    let at = 0;
    for (const cut of [...cuts, bytes.length]) {
      if (cut <= at) continue;
      if (!this.isOpen) return;
      this.#socket.write(bytes.subarray(at, cut));
      at = cut;
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Sends a text frame of a string. */
  text(data: string): Promise<void> {
    return this.write(RawWebSocket.frame(1, Buffer.from(data)));
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #read(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) return;
      const opcode = (b[0] as number) & 0x0f;
      let len = (b[1] as number) & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b.length < offset + len) return;
      const payload = b.subarray(offset, offset + len);
      this.#buffer = b.subarray(offset + len);
      if (opcode === 1) this.messages.push({ kind: 'text', text: payload.toString() });
      else if (opcode === 8) {
        this.#closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.messages.push({ kind: 'close', code: this.#closeCode });
        this.#onClose(this.#closeCode);
        this.#socket.end();
      } else if (opcode === 9) {
        // Answer protocol-level pings so the server keeps us.
        void this.write(RawWebSocket.frame(10, Buffer.from(payload)));
      }
    }
  }
}
