// What a file is, decided from its first bytes only: never from its name, its
// extension or the Content-Type a client sent. Anything not recognised here
// (AVI, MPEG-TS, HLS or DASH playlists, text, archives...) is refused before
// any decoder sees it, which keeps ffmpeg's many demuxers (and the nested
// playlists some of them open) out of reach of uploaded files.
import type { Container, MediaKind } from './types.ts';

/** How many leading bytes `sniff` needs (fewer are fine when the file is shorter). */
export const SNIFF_BYTES = 4096;

export interface Sniffed {
  kind: MediaKind;
  container: Container;
}

/** The kind and container of a file from its first bytes, or null when it is not media Flock accepts. */
export function sniff(head: Buffer): Sniffed | null {
  if (startsWith(head, [0xff, 0xd8, 0xff])) return { kind: 'image', container: 'jpeg' };
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'image', container: 'png' };
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 4) === 'WEBP') return { kind: 'image', container: 'webp' };
  const gif = ascii(head, 0, 6);
  if (gif === 'GIF87a' || gif === 'GIF89a') return { kind: 'image', container: 'gif' };
  if (startsWith(head, [0x1a, 0x45, 0xdf, 0xa3])) return { kind: 'video', container: 'matroska' };
  if (ascii(head, 4, 4) === 'ftyp') return isoBmff(head);
  return null;
}

// ---- ISO base media files (MP4, MOV, 3GP, HEIF, AVIF) ----

const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);
/** Audio-only brands: an M4A is not a video even when it lists isom among its brands. */
const AUDIO_BRANDS = new Set(['M4A ', 'M4B ', 'M4P ', 'F4A ', 'F4B ']);
const VIDEO_BRANDS = new Set(['isom', 'mp41', 'mp42', 'avc1', 'qt  ', 'M4V ', 'M4VH', 'M4VP', 'mmp4', 'MSNV', 'dash', 'cmfc', 'f4v ', 'XAVC']);

/** The `ftyp` box: its major brand and compatible brands say what the file holds. */
function isoBmff(head: Buffer): Sniffed | null {
  if (head.length < 12) return null;
  const size = head.readUInt32BE(0);
  const major = ascii(head, 8, 4);
  // size 0 means "to the end of the file" and 1 a 64-bit size: neither is a plausible ftyp, whose brands follow at once.
  if (size < 16 || AUDIO_BRANDS.has(major)) return null;
  const brands = [major];
  for (let at = 16; at + 4 <= Math.min(size, head.length); at += 4) brands.push(ascii(head, at, 4));
  if (brands.some((b) => AVIF_BRANDS.has(b))) return { kind: 'image', container: 'avif' };
  if (brands.some((b) => HEIF_BRANDS.has(b))) return { kind: 'image', container: 'heif' };
  if (brands.some(isVideoBrand)) return { kind: 'video', container: 'mp4' };
  return null;
}

function isVideoBrand(brand: string): boolean {
  return VIDEO_BRANDS.has(brand) || /^iso[2-9]$/.test(brand) || brand.startsWith('3gp') || brand.startsWith('3g2');
}

// ---- bytes ----

function startsWith(head: Buffer, magic: readonly number[]): boolean {
  return head.length >= magic.length && magic.every((byte, i) => head[i] === byte);
}

function ascii(head: Buffer, offset: number, length: number): string {
  return head.length >= offset + length ? head.toString('latin1', offset, offset + length) : '';
}
