// The one contract between src/ and the worker threads in workers/. Workers import nothing
// from src/, and src/ imports only this file from workers/: these types, and the pure byte
// sniffing below (no native code, no I/O), which the upload path shares with the workers.
export { sniffType, typeAllowed, type SniffedType } from './image/sniff.js';
export { contentAddress } from './content-address.js';

/** Messages to the upload sink: hash and write one upload's bytes into a staging file. */
export type SinkRequest =
  | { op: 'open'; id: number; path: string }
  /** `buf` (transferred) holds the next chunk in its first `len` bytes; the ack hands it back. */
  | { op: 'write'; id: number; buf: ArrayBuffer; len: number }
  /** `durable: false` skips the fsync: the caller flushes a whole batch at once (imports). */
  /** linkRoot: also link the file at its content address under that datastore root (prestage). */
  | { op: 'finish'; id: number; durable?: boolean; linkRoot?: string }
  | { op: 'abort'; id: number; path: string }
  /** Appends a whole local file (imports; opened O_NOFOLLOW): no bytes cross the threads. */
  | { op: 'append'; id: number; source: string };

/** To a sink worker's own port: answer another thread's sessions on `port` too. */
export interface SinkAttach {
  op: 'attach';
  port: import('node:worker_threads').MessagePort;
}

export type SinkReply =
  | { op: 'opened'; id: number }
  /** `buf` is the write's buffer, transferred back for reuse. */
  | { op: 'ack'; id: number; len: number; buf: ArrayBuffer }
  /** linked: where linkRoot's link went, and whether that address was empty before. */
  | { op: 'done'; id: number; sha256: string; size: number; linked?: { location: string; created: boolean } }
  | { op: 'aborted'; id: number }
  | { op: 'appended'; id: number; len: number }
  | { op: 'error'; id: number; message: string; code?: string };

/** One thumbnail wanted from a source: a bucket size, a method and whether to animate. */
export interface ThumbnailTarget {
  width: number;
  height: number;
  method: 'crop' | 'scale';
  animated: boolean;
}

export interface ThumbnailLimits {
  maxPixels: number;
  maxFrames: number;
  maxAnimateSizeBytes: number;
  stillFrame: number;
  /** thumbnails.types: sniffed types that may be decoded. */
  types: string[];
}

/** To the thumbnail pools. `source` is transferred (its buffer is detached in the sender). */
export interface ThumbnailTask {
  op: 'thumbnail';
  source: Uint8Array;
  targets: ThumbnailTarget[];
  limits: ThumbnailLimits;
}

export interface IdenticonTask {
  op: 'identicon';
  seed: string;
  width: number;
  height: number;
}

export interface BlurhashTask {
  op: 'blurhash';
  source: Uint8Array;
  xComponents: number;
  yComponents: number;
  limits: ThumbnailLimits;
}

/** A produced thumbnail, or "serve the original" when the output would equal it. */
export type ThumbnailOutput =
  | {
      kind: 'thumbnail';
      bytes: Uint8Array;
      sha256: string;
      contentType: string;
      width: number;
      height: number;
      animated: boolean;
      frames: number;
    }
  | { kind: 'original'; contentType: string; width: number; height: number };

/** Why a source could not be thumbnailed; src maps these to Matrix errors. */
export type ImageFailure = { ok: false; code: 'too_large' | 'unsupported' | 'corrupt'; message: string };

export type ThumbnailReply = { ok: true; sourceType: string; outputs: ThumbnailOutput[] } | ImageFailure;
export type IdenticonReply = { ok: true; bytes: Uint8Array } | ImageFailure;
export type BlurhashReply = { ok: true; blurhash: string } | ImageFailure;

/** Type and displayed size of an image, read from its header (URL-preview images). `source` is
 * copied, not transferred: the caller stores the same bytes afterwards. */
export interface IdentifyTask {
  op: 'identify';
  source: Uint8Array;
  limits: ThumbnailLimits;
}

/** Sent with every task that decodes a source: whether libvips' SVG loader is open in this
 * process (some configured thumbnails.types lists image/svg+xml; see image/harden.ts). */
export interface LoaderSwitches {
  svgLoader?: boolean;
}

/** An audio file's facts for media info (MMR's audio fields); `source` is transferred. */
export interface AudioInfoTask {
  op: 'audio-info';
  source: Uint8Array;
  limits: ThumbnailLimits;
}

/** `durationMs` is the decoded length (a header may lie); `keySamples` has 768 peaks in 0..1. */
export type AudioInfoReply =
  | {
      ok: true;
      type: string;
      durationMs: number;
      channels: number;
      sampleRate: number;
      totalSamples: number;
      keySamples: number[];
    }
  | ImageFailure;

/** What the start-up probe found: the external decoders present and the fence they run in. */
export interface DecoderReport {
  sandbox: 'bwrap' | 'unshare' | 'none';
  /** prlimit (util-linux) works: without it no external decoder is run (no memory limit). */
  limits: boolean;
  tools: Record<'ffmpeg' | 'ffprobe' | 'heif-convert' | 'djxl', boolean>;
}

/** `width`/`height` as a viewer shows them (EXIF quarter turns applied). */
export type IdentifyReply = { ok: true; type: string; width: number; height: number } | ImageFailure;

/** Word and character limits for preview text (MMR's numWords / maxLength and the title pair). */
export interface PreviewTextLimits {
  numWords: number;
  maxLength: number;
  numTitleWords: number;
  maxTitleLength: number;
}

/** To the preview pool: one fetched page to read OpenGraph fields from. `bytes` may be transferred. */
export interface PreviewParseTask {
  op: 'preview-html';
  /** The page body, already capped by the fetcher. */
  bytes: Uint8Array;
  /** The HTTP Content-Type header, e.g. 'text/html; charset=Shift_JIS'. */
  contentType: string | null;
  /** The final URL after redirects: the base for relative URLs. */
  pageUrl: string;
  limits: PreviewTextLimits;
  /** Stop scanning after this many tags (bounded work on hostile HTML); default 200_000. */
  maxTags?: number;
}

export interface PreviewParseResult {
  /** The encoding actually used to decode (a WHATWG name, e.g. 'windows-1252' for ISO-8859-1). */
  charset: string;
  title?: string;
  description?: string;
  siteName?: string;
  type?: string;
  /** og:url (absolute http(s)) if present. */
  url?: string;
  /** Absolute http(s) URL. */
  image?: { url: string; width?: number; height?: number; type?: string };
  /** <link rel="alternate" type="application/json+oembed" href> (absolute http(s)). */
  oembedUrl?: string;
  /** True if maxTags (or another work bound) stopped the scan early. */
  truncated: boolean;
}

/** An oEmbed endpoint's JSON answer (untrusted, any shape), to be turned into preview fields. */
export interface PreviewOEmbedTask {
  op: 'preview-oembed';
  json: unknown;
  /** The previewed page's URL: the base for relative URLs in the answer. */
  pageUrl: string;
  limits: PreviewTextLimits;
}
