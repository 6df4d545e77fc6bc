// Short texts other people see next to someone's identity (display names),
// as one zod schema: normalised to NFC and trimmed, and refused when they
// could mislead the reader. Bidirectional controls reorder what follows
// them, so "Bob\u202Egnp.exe" renders as "Bobexe.png" and a name can drag
// the text around it; control characters break layouts; and a name of
// nothing but zero-width or blank characters renders as no name at all.
// Failures are ordinary schema failures: REQUEST_INVALID naming the field.
import { z } from 'zod';

/** U+202A–U+202E (embeddings, overrides), U+2066–U+2069 (isolates), U+200E/U+200F (marks), U+061C (Arabic letter mark). */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;
const CONTROLS = /\p{Cc}/u;
/**
 * What draws nothing on its own: white space, format characters (zero-width
 * spaces and joiners, tags), default-ignorable code points (variation
 * selectors, fillers), combining marks without a base, and blank look-alikes
 * (Braille blank, Hangul fillers).
 */
const INVISIBLE = /[\p{White_Space}\p{Cf}\p{Default_Ignorable_Code_Point}\p{M}\u2800\u115F\u1160\u3164\uFFA0]/gu;

/** A display text of 1 to `maxLength` UTF-16 units after NFC and trimming. */
export function displayText(maxLength: number) {
  return (
    z
      // Room for decomposed input that NFC shortens; anything longer is refused before normalising.
      .string()
      .max(maxLength * 4)
      .transform((text) => text.normalize('NFC').trim())
      .pipe(
        z
          .string()
          .min(1)
          .max(maxLength)
          .refine((text) => !BIDI_CONTROLS.test(text), 'must not contain bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C)')
          .refine((text) => !CONTROLS.test(text), 'must not contain control characters')
          .refine((text) => text.replace(INVISIBLE, '').length > 0, 'must contain a visible character'),
      )
      .describe(
        `1 to ${maxLength} characters after NFC normalisation and trimming; no bidirectional controls, no control characters, at least one visible character`,
      )
  );
}

/** A user's display name. */
export const displayName = displayText(50);
