// Removes EXIF from a decoder's JPEG or PNG output. HEIF's irot/imir and JPEG XL's header
// orientation are applied by their decoders, which still copy the file's EXIF (orientation
// included) into what they write: left there, the renderer's auto-orientation would turn the
// picture a second time. EXIF in HEIF is informative only (ISO/IEC 23008-12 §6.5.10 makes the
// transform properties authoritative), so nothing of it is wanted.

/** JPEG without its APP1 "Exif" segments; other segments and the scan are kept byte for byte. */
export function stripJpegExif(jpeg: Buffer): Buffer {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return jpeg;
  const keep: Buffer[] = [jpeg.subarray(0, 2)];
  let i = 2;
  let changed = false;
  while (i + 4 <= jpeg.length && jpeg[i] === 0xff) {
    const marker = jpeg[i + 1]!;
    // Start of scan: the entropy-coded data follows, with no more segments to look at.
    if (marker === 0xda) break;
    const len = jpeg.readUInt16BE(i + 2);
    if (len < 2 || i + 2 + len > jpeg.length) break;
    const isExif = marker === 0xe1 && jpeg.subarray(i + 4, i + 10).toString('latin1') === 'Exif\0\0';
    if (isExif) changed = true;
    else keep.push(jpeg.subarray(i, i + 2 + len));
    i += 2 + len;
  }
  if (!changed) return jpeg;
  keep.push(jpeg.subarray(i));
  return Buffer.concat(keep);
}

/** PNG without its eXIf chunk (PNG 1.5 extension; libvips reads orientation from it). */
export function stripPngExif(png: Buffer): Buffer {
  if (png.length < 8 || png.readUInt32BE(0) !== 0x89504e47) return png;
  const keep: Buffer[] = [png.subarray(0, 8)];
  let i = 8;
  let changed = false;
  while (i + 12 <= png.length) {
    const len = png.readUInt32BE(i);
    const end = i + 12 + len;
    if (end > png.length) break;
    const type = png.subarray(i + 4, i + 8).toString('latin1');
    if (type === 'eXIf') changed = true;
    else keep.push(png.subarray(i, end));
    i = end;
    if (type === 'IEND') break;
  }
  if (!changed) return png;
  return Buffer.concat(keep);
}

export function stripExif(image: Buffer): Buffer {
  return image[0] === 0xff ? stripJpegExif(image) : stripPngExif(image);
}
