// Gathers text with whitespace collapsed, and stops taking more once it holds enough for the
// preview's limits: a page's text (or one attribute) may be megabytes, and the summary only ever
// keeps the first few words.

// Text is collapsed a slice at a time, so a 5 MB text node costs only the slices read before
// the collector is full, never a 5 MB regular-expression pass or copy.
const SLICE = 4096;

// Kept: a few times what the summary uses, so whitespace collapsing and word cutting in
// text-limits.ts give the same result as on the whole text.
const KEEP_FACTOR = 4;

export class TextCollector {
  private readonly parts: string[] = [];
  private length = 0;
  private words = 0;
  private spacePending = false;
  private isFull = false;
  private readonly maxWords: number;
  private readonly maxChars: number;

  /** For a summary of `summaryWords` words and `summaryLength` characters. */
  constructor(summaryWords: number, summaryLength: number) {
    this.maxWords = summaryWords * KEEP_FACTOR;
    this.maxChars = summaryLength * KEEP_FACTOR;
  }

  get full(): boolean {
    return this.isFull;
  }

  get empty(): boolean {
    return this.length === 0;
  }

  add(text: string): void {
    for (let at = 0; at < text.length && !this.isFull; at += SLICE) this.addSlice(text.slice(at, at + SLICE));
  }

  /** A boundary between blocks (a <p>, a <br>, a table cell): words on each side stay apart. */
  separate(): void {
    this.spacePending = true;
  }

  text(): string {
    return this.parts.join('');
  }

  private addSlice(slice: string): void {
    // split() leaves '' where the slice starts or ends with whitespace; every piece after the
    // first one was preceded by a whitespace run. A piece that starts without one continues the
    // word before it (text split across chunks or inline tags, like `foo<b>bar</b>`).
    const pieces = slice.split(/\s+/);
    for (let i = 0; i < pieces.length && !this.isFull; i++) {
      if (i > 0) this.spacePending = true;
      const piece = pieces[i]!;
      if (piece === '') continue;
      if (this.length === 0) {
        this.words = 1;
      } else if (this.spacePending) {
        this.parts.push(' ');
        this.length += 1;
        this.words += 1;
      }
      this.spacePending = false;
      this.parts.push(piece);
      this.length += piece.length;
      this.isFull = this.words > this.maxWords || this.length > this.maxChars;
    }
  }
}

/** `text` collapsed, keeping at most what a summary with these limits can use. */
export function collectText(text: string, summaryWords: number, summaryLength: number): string {
  const collector = new TextCollector(summaryWords, summaryLength);
  collector.add(text);
  return collector.text();
}
