import { Errors } from '../../errors.js';
import { newMediaId } from '../../matrix/ids.js';

/** Draws in a row that all collide mean something else is wrong (a broken random source). */
const ATTEMPTS = 5;

/**
 * Draws media IDs until `claim` takes one (an insert that answers false on a taken or reserved
 * ID): the one allocation loop behind uploads and async-upload reservations.
 */
export async function withNewMediaId(claim: (mediaId: string) => Promise<boolean>): Promise<string> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const mediaId = newMediaId();
    if (await claim(mediaId)) return mediaId;
  }
  throw Errors.mediaIdExhausted();
}
