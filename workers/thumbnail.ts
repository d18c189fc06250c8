import sharp from 'sharp';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { openSource, ImageError } from './image/source.js';
import { renderTarget } from './image/render.js';
import { allowSvgLoader, restrictLoaders } from './image/harden.js';
import { renderIdenticon } from './image/identicon.js';
import { encodeBlurhash } from './image/blurhash.js';
import { audioFacts } from './image/audio-info.js';
import { prlimitAvailable, sandboxKind, toolAvailable, TOOLS } from './image/external.js';
import type {
  AudioInfoReply,
  AudioInfoTask,
  DecoderReport,
  BlurhashReply,
  BlurhashTask,
  IdenticonReply,
  IdenticonTask,
  IdentifyReply,
  IdentifyTask,
  ImageFailure,
  LoaderSwitches,
  ThumbnailOutput,
  ThumbnailReply,
  ThumbnailTask,
} from './protocol.js';

// Piscina worker for the static, animated and blurhash pools (one module, three pools sized
// apart so a burst of GIFs cannot starve still thumbnails). Imports nothing from src/.

// Each thumbnail uses one libvips thread: throughput comes from running many thumbnails at
// once across the pool, and libuv's thread pool (where sharp runs) is sized to match.
sharp.concurrency(1);
// libvips' operation cache keeps decoded images around for reuse we never make.
sharp.cache(false);
// Decoders we never want stay blocked whatever libvips detects in the bytes (see harden.ts).
restrictLoaders(sharp);

export interface ProbeTask {
  op: 'probe';
}

type Task = (ThumbnailTask | IdenticonTask | BlurhashTask | IdentifyTask | AudioInfoTask | ProbeTask) & LoaderSwitches;

function failure(e: unknown): ImageFailure {
  if (e instanceof ImageError) return { ok: false, code: e.code, message: e.message };
  return { ok: false, code: 'corrupt', message: `Could not process the image: ${(e as Error).message}` };
}

/** Sends the reply with every output buffer transferred, not copied. */
function transfer<T extends object>(value: T, buffers: ArrayBufferLike[]): T {
  return move({ [transferableSymbol]: buffers, [valueSymbol]: value } as never) as unknown as T;
}

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

async function thumbnail(task: ThumbnailTask): Promise<ThumbnailReply> {
  try {
    const src = await openSource(asBuffer(task.source), task.limits);
    const outputs: ThumbnailOutput[] = [];
    for (const target of task.targets) outputs.push(await renderTarget(src, target, task.limits));
    const buffers = outputs.flatMap((o) => (o.kind === 'thumbnail' ? [o.bytes.buffer] : []));
    return transfer({ ok: true, sourceType: src.type, outputs }, buffers);
  } catch (e) {
    return failure(e);
  }
}

async function identicon(task: IdenticonTask): Promise<IdenticonReply> {
  try {
    const img = renderIdenticon(task.seed, task.width, task.height);
    const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 4 } })
      .png()
      .toBuffer();
    const bytes = new Uint8Array(new ArrayBuffer(png.length));
    bytes.set(png);
    return transfer({ ok: true, bytes }, [bytes.buffer]);
  } catch (e) {
    return failure(e);
  }
}

/** BlurHash from a small downscale of the (oriented) first frame. */
async function blurhash(task: BlurhashTask): Promise<BlurhashReply> {
  try {
    const src = await openSource(asBuffer(task.source), task.limits);
    const image = (await src.still(0)).autoOrient().resize(32, 32, { fit: 'inside' }).ensureAlpha().raw();
    const { data, info } = await image.timeout({ seconds: 30 }).toBuffer({ resolveWithObject: true });
    return { ok: true, blurhash: encodeBlurhash(data, info.width, info.height, 4, task.xComponents, task.yComponents) };
  } catch (e) {
    return failure(e);
  }
}

/** Type and size from the header, through the same sniffing and limits as thumbnails. */
async function identify(task: IdentifyTask): Promise<IdentifyReply> {
  try {
    const src = await openSource(asBuffer(task.source), task.limits);
    const turned = src.orientation >= 5; // EXIF 5-8 turn the picture a quarter
    return {
      ok: true,
      type: src.type,
      width: turned ? src.height : src.width,
      height: turned ? src.width : src.height,
    };
  } catch (e) {
    return failure(e);
  }
}

async function audioInfo(task: AudioInfoTask): Promise<AudioInfoReply> {
  try {
    return { ok: true, ...(await audioFacts(asBuffer(task.source), task.limits)) };
  } catch (e) {
    return failure(e);
  }
}

/** The start-up probe: proves sharp loaded in a worker thread and can encode, and reports the
 * external decoders this machine has and the fence they run in. */
async function probe(): Promise<{ ok: true; vips: string; decoders: DecoderReport }> {
  await sharp({ create: { width: 2, height: 2, channels: 3, background: '#000' } })
    .png()
    .toBuffer();
  const tools = Object.fromEntries(TOOLS.map((t) => [t, toolAvailable(t)])) as DecoderReport['tools'];
  return {
    ok: true,
    vips: sharp.versions.vips,
    decoders: { sandbox: sandboxKind(), limits: prlimitAvailable(), tools },
  };
}

export default function run(task: Task): Promise<unknown> {
  if (task.svgLoader !== undefined) allowSvgLoader(sharp, task.svgLoader);
  switch (task.op) {
    case 'thumbnail':
      return thumbnail(task);
    case 'identicon':
      return identicon(task);
    case 'blurhash':
      return blurhash(task);
    case 'identify':
      return identify(task);
    case 'audio-info':
      return audioInfo(task);
    case 'probe':
      return probe();
  }
}
