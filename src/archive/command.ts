import { createReadStream } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { CONFIG_FLAG, type CommandContext, type ParsedFlags, type Subcommand } from '../import/command.js';
import { openCliStores } from './cli-stores.js';
import { exportCount, type ExportEntity } from '../db/archive-export.js';
import { exportItems } from './export-items.js';
import { DirPartSink } from './dir-sink.js';
import { writeExport } from './export-archive.js';
import { importArchive } from './import-archive.js';
import { ManifestError } from './manifest.js';
import { ArchiveReader } from './read-archive.js';
import { ArchiveFormatError } from './tar-reader.js';

// `media-repo export --user ID | --server NAME --out DIR` and `media-repo import archive
// FILES…`: GDPR archives in MMR's v2 format, on the command line. Thin: parse, open the
// stores, call writeExport / importArchive, report.

const DEFAULT_PART_BYTES = 200 * 2 ** 20; // MMR's archiving.targetBytesPerPart default

function fail(cmd: string, msg: string, code: number): number {
  console.error(`media-repo ${cmd}: ${msg}`);
  return code;
}

/** archiving.targetBytesPerPart (validated; MMR's 200 MiB by default). */
function configuredPartSize(ctx: CommandContext): number {
  return ctx.config.global.archiving?.targetBytesPerPart ?? DEFAULT_PART_BYTES;
}

function parseEntity(flags: ParsedFlags): ExportEntity | string {
  const user = flags.values.user as string | undefined;
  const server = flags.values.server as string | undefined;
  if ((user === undefined) === (server === undefined)) return 'give exactly one of --user and --server';
  if (user !== undefined) {
    const m = /^@[^:\s]+:([^\s/]+)$/.exec(user);
    if (!m) return `--user: expected a user ID like @alice:example.org, got ${JSON.stringify(user)}`;
    return { user, origin: m[1]! };
  }
  if (!/^[^\s/@]+$/.test(server!)) return `--server: expected a server name, got ${JSON.stringify(server)}`;
  return { server: server! };
}

const EXPORT_FILE = /^export-(part-\d+|manifest)\.tgz(\.partial)?$/;

export const exportCommand: Subcommand = {
  name: 'export',
  summary: "Writes a user's or a server's media as MMR v2 archive parts (export-part-N.tgz, export-manifest.tgz).",
  flags: {
    user: { kind: 'string', help: 'export the media this local user uploaded (@alice:example.org)' },
    server: { kind: 'string', help: 'export all media of this origin' },
    out: { kind: 'string', help: 'directory for the parts (created; must hold no other export)', required: true },
    'part-size': {
      kind: 'string',
      help: 'start a new part after this many bytes (default archiving.targetBytesPerPart, else 200 MiB)',
    },
    ...CONFIG_FLAG,
  },
  positionals: null,
  async run(flags, ctx) {
    const entity = parseEntity(flags);
    if (typeof entity === 'string') return fail('export', entity, 2);
    let partSize = configuredPartSize(ctx);
    const ps = flags.values['part-size'] as string | undefined;
    if (ps !== undefined) {
      if (!/^[1-9][0-9]*$/.test(ps) || !Number.isSafeInteger(Number(ps)))
        return fail('export', `--part-size: expected a positive number of bytes, got ${JSON.stringify(ps)}`, 2);
      partSize = Number(ps);
    }
    const out = resolve(flags.values.out as string);
    await mkdir(out, { recursive: true });
    const clash = (await readdir(out)).find((n) => EXPORT_FILE.test(n));
    if (clash) return fail('export', `${out} already holds an export (${clash}); give an empty directory`, 1);
    const entityId = 'user' in entity ? entity.user : entity.server;
    const stores = await openCliStores(ctx.config, ctx.log, { migrate: false, tag: 'export' });
    try {
      ctx.progress.phase('export', await exportCount(stores.db, entity));
      const items = exportItems(stores.db, stores.datastores, entity, { s3Urls: true, signal: ctx.signal });
      const result = await writeExport(items, {
        entityId,
        targetBytesPerPart: partSize,
        sink: new DirPartSink(out),
        onEvent: (e) => {
          if (e.kind === 'written') ctx.progress.advance();
          else {
            if (e.kind === 'skipped') ctx.progress.advance();
            ctx.progress.event({ event: e.kind, ...e, kind: undefined });
          }
        },
      });
      ctx.progress.finish({
        entity: entityId,
        out,
        media: result.media,
        skipped: result.skipped,
        bytes: result.bytes,
        parts: result.parts.map((p) => p.fileName),
      });
      return 0;
    } catch (e) {
      if (ctx.signal.aborted)
        return fail('export', 'interrupted; the part in progress was removed (run again with an empty --out)', 1);
      return fail('export', (e as Error).message, 1);
    } finally {
      await stores.close();
    }
  },
};

export const archiveImportCommand: Subcommand = {
  name: 'import archive',
  summary: 'Imports MMR v2 archive parts (any order): skips existing media, checks every hash, ignores quotas.',
  flags: { ...CONFIG_FLAG },
  positionals: 'FILES...',
  async run(flags, ctx) {
    const files = flags.positionals;
    if (files.length === 0) return fail('import archive', 'give the archive part files', 2);
    const stores = await openCliStores(ctx.config, ctx.log, { migrate: true, tag: 'import' });
    try {
      ctx.progress.phase('check parts', files.length);
      const reader = await ArchiveReader.open(
        files.map((f) => ({ name: basename(f), open: () => createReadStream(f) })),
      );
      const localServers = new Set(ctx.config.global.homeservers.map((h) => h.name.toLowerCase()));
      ctx.progress.phase('import', Object.keys(reader.manifest.media).length);
      const counts = await importArchive(reader, stores, {
        localServers,
        signal: ctx.signal,
        onEvent: (e) => {
          if (e.kind === 'done') ctx.progress.advance();
          else {
            ctx.progress.advance();
            ctx.progress.event({ event: e.kind, ...e, kind: undefined });
          }
        },
      });
      ctx.progress.finish({ entity: reader.manifest.entity_id, ...counts, unlisted: reader.unlisted.length });
      return 0;
    } catch (e) {
      if (e instanceof ArchiveFormatError || e instanceof ManifestError) return fail('import archive', e.message, 1);
      return fail('import archive', (e as Error).message, 1);
    } finally {
      await stores.close();
    }
  },
};
