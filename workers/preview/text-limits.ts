// MMR's summary rule for titles and descriptions: collapse whitespace, keep the first N words,
// then if that is still longer than the character limit, cut at the last word boundary that fits
// and end with "…". Lengths count code points, so an emoji is one character and never split.

const ELLIPSIS = '…';

// Control characters (other than whitespace) show as nothing or as boxes: dropped.
const CONTROLS = /[\u0000-\u0008\u000e-\u001f\u007f]/g;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** The summary of `text`, or undefined when nothing but whitespace is left. */
export function summarize(text: string, maxWords: number, maxLength: number): string | undefined {
  const collapsed = text.replace(CONTROLS, '').replace(/\s+/g, ' ').trim();
  if (collapsed === '') return undefined;
  const words = collapsed.split(' ');
  const kept = words.length > maxWords ? words.slice(0, maxWords).join(' ') : collapsed;
  const chars = Array.from(kept); // code points
  if (chars.length <= maxLength) return kept;
  // Unlike MMR, the ellipsis counts towards the limit, so the result never exceeds maxLength.
  const room = maxLength - ELLIPSIS.length;
  const boundary = chars.lastIndexOf(' ', room);
  const cut = boundary > 0 ? chars.slice(0, boundary).join('') : wholeGraphemes(chars, room);
  return cut + ELLIPSIS;
}

/**
 * The longest run of whole grapheme clusters within `room` code points: a hard cut must not
 * leave half a flag or a family emoji with its members split off.
 */
function wholeGraphemes(chars: string[], room: number): string {
  // Clusters are only needed over the text that can fit, plus one to see where the last ends.
  const candidate = chars.slice(0, room + 1).join('');
  let out = '';
  let used = 0;
  for (const { segment } of graphemes.segment(candidate)) {
    const size = Array.from(segment).length;
    if (used + size > room) break;
    out += segment;
    used += size;
  }
  return out;
}
