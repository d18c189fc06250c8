// The one contract between src/ and the worker threads in workers/. Workers import nothing
// from src/, and src/ imports only these types from workers/.

/** Messages to the upload sink: hash and write one upload's bytes into a staging file. */
export type SinkRequest =
  /** `ring` is the session's shared ring buffer; chunks are copied into it once by src/. */
  | { op: 'open'; id: number; path: string; ring: SharedArrayBuffer }
  /** `len` bytes at `off` in the ring are the next chunk; the ack frees them. */
  | { op: 'write'; id: number; off: number; len: number }
  | { op: 'finish'; id: number }
  | { op: 'abort'; id: number; path: string };

export type SinkReply =
  | { op: 'opened'; id: number }
  | { op: 'ack'; id: number; len: number }
  | { op: 'done'; id: number; sha256: string; size: number }
  | { op: 'aborted'; id: number }
  | { op: 'error'; id: number; message: string; code?: string };
