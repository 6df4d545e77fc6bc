// tus's Upload-Metadata header (media/tus-metadata.ts), case by case: what is
// kept, what is ignored, and what is refused.
import test from 'ava';
import { FlockError } from '../kernel/errors.ts';
import { formatUploadMetadata, parseUploadMetadata } from '../media/tus-metadata.ts';
import type { UploadMetadata } from '../media/upload-records.ts';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

const accepted: [string, string, UploadMetadata][] = [
  ['no header', '', {}],
  [
    'the three kept keys',
    `filename ${b64('clip.mp4')},filetype ${b64('video/mp4')},kind ${b64('video')}`,
    { filename: 'clip.mp4', filetype: 'video/mp4', kind: 'video' },
  ],
  ['spaces around pairs', ` filename ${b64('a.jpg')} , kind ${b64('image')} `, { filename: 'a.jpg', kind: 'image' }],
  ['other keys, with or without a value, ignored', `relativePath ${b64('x/y')},is_confidential,filename ${b64('é.png')}`, { filename: 'é.png' }],
];
for (const [name, header, expected] of accepted) {
  test(`kept: ${name}`, (t) => {
    t.deepEqual(parseUploadMetadata(header), expected);
  });
}

const refused: [string, string][] = [
  ['a key twice', `filename ${b64('a')},filename ${b64('b')}`],
  ['a value that is not base64', 'filename not-base64!'],
  ['base64 of the wrong length', 'filename YWJj='],
  ['a kind that is not one', `kind ${b64('audio')}`],
  ['a kept key without a value', 'filename'],
  ['a value that is not UTF-8', `filename ${Buffer.from([0xff, 0xfe]).toString('base64')}`],
  ['control characters', `filename ${b64('a\nb')}`],
  ['a file name over 255 characters', `filename ${b64('x'.repeat(256))}`],
  ['a header over 4 KiB', `relativePath ${b64('x'.repeat(3100))}`],
  ['a key with a space-separated extra', `filename ${b64('a')} ${b64('b')}`],
];
for (const [name, header] of refused) {
  test(`refused: ${name}`, (t) => {
    const err = t.throws(() => parseUploadMetadata(header));
    t.true(err instanceof FlockError && err.code === 'MEDIA_UPLOAD_INVALID', String(err));
  });
}

test('formatting what was kept reads back the same', (t) => {
  const metadata: UploadMetadata = { filename: 'été.mov', filetype: 'video/quicktime', kind: 'video' };
  t.deepEqual(parseUploadMetadata(formatUploadMetadata(metadata)), metadata);
});
