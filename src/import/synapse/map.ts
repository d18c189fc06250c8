import type { ImportedMedia } from '../store-imported.js';
import type { SynapseLocalRow, SynapseRemoteRow } from './source.js';
import { badComponent } from './paths.js';

// One Synapse row as what we store (the mapping the README documents), or why it is skipped
// before any file is looked at.
//   local:  origin = --server-name, user_id kept, kind local_media
//   remote: origin = media_origin, no uploader (''), kind remote_media, the file named by
//           filesystem_id rather than media_id
//   both:   upload_name, media_type as the content type, created_ts, quarantined_by non-NULL as
//           quarantined (and who), safe_from_quarantine as pinned, authenticated (MSC3916) as
//           requires-auth; the original media ID is kept.

export interface PlannedItem {
  kind: 'local_media' | 'remote_media';
  media: ImportedMedia;
  /** Where the file is: local_content by media ID, or remote_content/<origin> by filesystem ID. */
  where: 'local' | { origin: string };
  fileId: string;
  /** media_length; null when Synapse did not record it. */
  expectSize: number | null;
  /** Synapse's sha256 column (delta 91), when it has one. */
  sha256: string | null;
}

export type Planned =
  { plan: PlannedItem } | { skip: 'url_cache' | 'pending' | 'unsafe'; mxc: string; detail?: string };

export function planLocal(row: SynapseLocalRow, serverName: string): Planned {
  const mxc = `mxc://${serverName}/${row.mediaId}`;
  // URL preview downloads: media-repo keeps its own preview cache; these may be dropped.
  if (row.urlCache !== null) return { skip: 'url_cache', mxc };
  const bad = badComponent(row.mediaId);
  if (bad) return { skip: 'unsafe', mxc, detail: `media_id ${bad}` };
  return {
    plan: {
      kind: 'local_media',
      media: {
        ...common(row),
        origin: serverName,
        mediaId: row.mediaId,
        userId: row.userId ?? '',
      },
      where: 'local',
      fileId: row.mediaId,
      expectSize: row.mediaLength,
      sha256: row.sha256,
    },
  };
}

export function planRemote(row: SynapseRemoteRow, serverName: string): Planned {
  const mxc = `mxc://${row.origin}/${row.mediaId}`;
  const badOrigin = badComponent(row.origin);
  if (badOrigin) return { skip: 'unsafe', mxc, detail: `media_origin ${badOrigin}` };
  // Our own server's media are local rows; a cache row for them would shadow an upload.
  if (row.origin.toLowerCase() === serverName.toLowerCase())
    return { skip: 'unsafe', mxc, detail: 'a remote cache row for our own server name' };
  const badId = badComponent(row.mediaId);
  if (badId) return { skip: 'unsafe', mxc, detail: `media_id ${badId}` };
  const badFs = badComponent(row.filesystemId);
  if (badFs || row.filesystemId === null) return { skip: 'unsafe', mxc, detail: `filesystem_id ${badFs}` };
  return {
    plan: {
      kind: 'remote_media',
      media: { ...common(row), origin: row.origin, mediaId: row.mediaId, userId: '' },
      where: { origin: row.origin },
      fileId: row.filesystemId,
      expectSize: row.mediaLength,
      sha256: row.sha256,
    },
  };
}

function common(row: SynapseLocalRow | SynapseRemoteRow): Omit<ImportedMedia, 'origin' | 'mediaId' | 'userId'> {
  const localRow = row as Partial<SynapseLocalRow>;
  return {
    uploadName: row.uploadName,
    contentType: row.mediaType,
    creationTs: row.createdTs,
    quarantined: row.quarantinedBy !== null,
    quarantinedBy: row.quarantinedBy,
    requiresAuth: row.authenticated,
    pinned: localRow.safeFromQuarantine === true,
  };
}
