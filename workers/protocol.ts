// The one contract between src/ and the worker threads in workers/. Workers import nothing
// from src/, and src/ imports only these types from workers/.

/** Messages to the upload sink: hash and write one upload's bytes into a staging file. */
export type SinkRequest =
  | { op: 'open'; id: number; path: string }
  /** `buf` (transferred) holds the next chunk in its first `len` bytes; the ack hands it back. */
  | { op: 'write'; id: number; buf: ArrayBuffer; len: number }
  | { op: 'finish'; id: number }
  | { op: 'abort'; id: number; path: string };

export type SinkReply =
  | { op: 'opened'; id: number }
  /** `buf` is the write's buffer, transferred back for reuse. */
  | { op: 'ack'; id: number; len: number; buf: ArrayBuffer }
  | { op: 'done'; id: number; sha256: string; size: number }
  | { op: 'aborted'; id: number }
  | { op: 'error'; id: number; message: string; code?: string };
