// htmlparser2's SAX Parser with its work bounded, for pages written to hurt us.
//
// The Parser keeps a stack of open elements in an array it grows with unshift() (a copy of the
// whole stack per open tag) and searches with indexOf() on every close tag. Both go quadratic
// with depth: measured on 2 cores, 50k nested <div>s took 1.3 s and 50k <div>s followed by
// 50k </span>s 3.3 s (Synapse fell over on the same shape: CVE-2022-31052). Three bounds:
//  - depth: past MAX_DEPTH open elements, further elements are "flattened" (opened and closed
//    at once, as void elements are), the way Blink caps its tree at 512 levels. The stack, and
//    so each unshift() and indexOf(), stays within 512 entries; the scan goes on.
//  - close-tag search: each close tag is charged the current depth (the most indexOf() can
//    look at); past the budget the scan stops.
//  - tags: past maxTags open and close tags the scan stops.
// A stop pauses the tokenizer, which returns from write() at once; the caller reads `stopped`.
import { Parser } from 'htmlparser2';

/** Blink's kMaximumHTMLParserDOMTreeDepth. */
export const MAX_DEPTH = 512;
/** Stack entries close tags may search in all: ~20 ms of indexOf(), far above real pages. */
export const MAX_CLOSE_SEARCH = 20_000_000;

export type StopReason = 'tags' | 'close-search' | 'done';

/** The SAX events a scan listens to. */
export interface ScanHandler {
  onopentag(name: string, attribs: Record<string, string>): void;
  onclosetag(name: string): void;
  ontext(text: string): void;
}

export class BoundedParser extends Parser {
  /** Why the scan stopped before the end of the input, if it did. */
  stopped: StopReason | undefined;
  private readonly openElements: { depth: number };
  private tagCount = 0;
  private closeSearch = 0;
  private flattenCurrentTag = false;

  constructor(
    handler: ScanHandler,
    private readonly maxTags: number,
  ) {
    // The Parser tells the handler about every push (onopentag) and every pop (onclosetag, also
    // for implied closes); void and flattened elements get both at once. Counting them here
    // tracks the depth of the Parser's private stack.
    const openElements = { depth: 0 };
    super({
      onopentag(name, attribs) {
        openElements.depth += 1;
        handler.onopentag(name, attribs);
      },
      onclosetag(name) {
        openElements.depth -= 1;
        handler.onclosetag(name);
      },
      ontext: (text) => handler.ontext(text),
    });
    this.openElements = openElements;
  }

  /** Stops the scan for good: nothing more is tokenized. */
  stop(reason: StopReason): void {
    this.stopped ??= reason;
    this.pause();
  }

  override onopentagname(start: number, endIndex: number): void {
    this.countTag();
    this.flattenCurrentTag = this.openElements.depth >= MAX_DEPTH;
    super.onopentagname(start, endIndex);
  }

  override onopentagend(endIndex: number): void {
    super.onopentagend(endIndex);
    this.flattenCurrentTag = false;
  }

  override onselfclosingtag(endIndex: number): void {
    super.onselfclosingtag(endIndex);
    this.flattenCurrentTag = false;
  }

  override onclosetag(start: number, endIndex: number): void {
    this.countTag();
    this.closeSearch += this.openElements.depth;
    if (this.closeSearch > MAX_CLOSE_SEARCH) this.stop('close-search');
    super.onclosetag(start, endIndex);
  }

  // The Parser's documented hook for extra void elements: a flattened element is one, from its
  // name to the end of its open tag, so it is never pushed and its close event fires at once.
  protected override isVoidElement(name: string): boolean {
    return this.flattenCurrentTag || super.isVoidElement(name);
  }

  private countTag(): void {
    this.tagCount += 1;
    if (this.tagCount > this.maxTags) this.stop('tags');
  }
}
